"""Measure one benchmark cell (one model file x backend x threads x size) in this process.

Run as ``python -m styleforge.benchmarks.worker --spec JSON``; prints one JSON object on stdout.
Each cell gets a fresh process so that its peak RSS (``getrusage``) belongs to that cell alone and
no interpreter state (thread pools, XNNPACK caches, torch's allocator) leaks between cells.

Everything the libraries print while loading and running goes to a log file instead of stdout
(so it cannot corrupt the JSON); the log is scanned for delegate messages (XNNPACK) and its tail is
returned with errors.

Spec keys: ``model`` (path), ``artifact`` (an :class:`Artifact` dict with ``key``, or ``None``
for a raw model file), ``backend``, ``threads``, ``delegate``, ``device`` (``cpu``/``cuda``; for
coreml the compute units), ``use_xnnpack``, ``size`` (``[H, W]`` for dynamic inputs), ``warmup``,
``runs``, ``duration_s``, ``references`` (``[[input.png, output.png], ...]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Optional

import numpy as np

from styleforge.benchmarks.cell_stats import (  # noqa: F401  (re-exported for the cells)
    cell_record,
    current_rss_mb,
    latency_stats,
    peak_rss_mb,
)
from styleforge.benchmarks.lut_bench import measure_lut
from styleforge.benchmarks.recipe_bench import measure_recipe

SKIPPED_EXIT = 3  # the cell cannot run here (no CUDA, no macOS, ...): not a failure


class CellSkipped(Exception):
    """The cell cannot run on this machine; the message says why (e.g. "CUDA not available")."""


def import_backend_library(backend: str) -> Optional[str]:
    """Import the first available library of ``backend``; returns its module name (None if none).

    Imported first so that the import's time and memory are reported apart from the model's.
    """
    import importlib

    from styleforge.runtime.backends import BACKENDS

    for module in BACKENDS[backend].modules if backend in BACKENDS else ():
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return module
    return None  # load_backend will raise with install advice


def _check_device(spec: dict[str, Any]) -> Optional[tuple[str, ...]]:
    """Raise CellSkipped when the requested device is absent; returns ONNX Runtime providers."""
    backend, device = spec["backend"], spec.get("device") or "cpu"
    if backend == "coreml" and sys.platform != "darwin":
        raise CellSkipped("Core ML runs on macOS only")
    if device != "cuda":
        return None
    if backend == "torch":
        try:
            import torch
        except ImportError:
            raise CellSkipped("CUDA not available (torch is not installed)") from None
        if not torch.cuda.is_available():
            raise CellSkipped("CUDA not available")
        return None
    if backend == "onnxruntime":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise CellSkipped("CUDA not available (onnxruntime has no CUDAExecutionProvider; pip install onnxruntime-gpu)")
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    raise CellSkipped(f"backend {backend} has no CUDA path (use --delegate for TFLite GPU/NPU delegates)")


def _input_spec(spec: dict[str, Any], backend, artifact):
    """The input TensorSpec: the manifest's (checked against the interpreter) or, for a raw model
    file, one built from what the interpreter reports."""
    from styleforge.runtime.contract import TensorSpec
    from styleforge.runtime.tensors import effective_spec

    reported = backend.input_details()
    if artifact is not None:
        return effective_spec(artifact.input, reported, "input"), effective_spec(
            artifact.output, backend.output_details(), "output"
        )
    layout = "NHWC" if spec["model"].endswith(".tflite") else "NCHW"
    shape = reported.get("shape") or ((1, None, None, 3) if layout == "NHWC" else (1, 3, None, None))
    shape = tuple(None if (d is None or d < 0) else int(d) for d in shape)
    dtype = reported.get("dtype") or "float32"
    if len(shape) != 4 or dtype not in ("float32", "float16", "int8", "uint8"):
        raise ValueError(f"{spec['model']}: input {dtype} {shape} is not a 4-D image tensor")
    tensor = TensorSpec(
        name=reported.get("name", "input"), shape=shape, dtype=dtype, layout=layout,
        scale=reported.get("scale"), zero_point=reported.get("zero_point"),
    )
    return tensor, None


def _resolve_shape(tensor, size: Optional[list[int]]) -> tuple[int, int]:
    """(H, W) to run at: the static size, else the requested size, else 256x256."""
    h, w = tensor.height, tensor.width
    if h and w:
        return int(h), int(w)
    if size:
        return int(size[0]), int(size[1])
    return 256, 256


def _pixels(spec: dict[str, Any], h: int, w: int) -> np.ndarray:
    """uint8 [1, H, W, 3] input: the first reference photo (resized), else fixed-seed noise."""
    refs = spec.get("references") or []
    if refs:
        from PIL import Image

        from styleforge.runtime.imageio import open_image, to_uint8_array

        rgb = open_image(refs[0][0]).rgb
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), Image.BICUBIC)
        return to_uint8_array(rgb)[None]
    return np.random.default_rng(0).integers(0, 256, size=(1, h, w, 3), dtype=np.uint8)


def _fidelity(spec, backend, in_spec, out_spec) -> Optional[dict[str, Any]]:
    """PSNR (uint8) of this backend's outputs against the bundle's PyTorch fp32 reference outputs."""
    from styleforge.runtime.imageio import open_image, to_uint8_array
    from styleforge.runtime.metrics import max_abs_error, psnr
    from styleforge.runtime.tensors import from_output, to_input, to_uint8

    refs = spec.get("references") or []
    if out_spec is None or not refs:
        return None
    scores, worst = [], 0.0
    for input_path, output_path in refs:
        source = to_uint8_array(open_image(input_path).rgb)
        target = to_uint8_array(open_image(output_path).rgb)
        h, w = in_spec.height, in_spec.width
        if (h and h != source.shape[0]) or (w and w != source.shape[1]):
            continue  # a reference at another size than this static artifact
        out = to_uint8(from_output(backend.run(to_input(source[None], in_spec)), out_spec))[0]
        if out.shape != target.shape:
            continue
        scores.append(psnr(out, target))
        worst = max(worst, max_abs_error(out, target))
    if not scores:
        return None
    return {"psnr": float(min(scores)), "psnr_mean": float(np.mean(scores)), "max_abs": worst, "references": len(scores)}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Load, time and score one cell; returns the cell's metrics (see ``styleforge.benchmarks.bench``)."""
    if spec["backend"] == "lut":  # a look.cube, or a recipe.json (benchmarks/recipe_bench.py)
        return measure_recipe(spec) if (spec.get("artifact") or {}).get("format") == "recipe" else measure_lut(spec)
    from styleforge.runtime.backends import BackendOptions, load_backend
    from styleforge.runtime.contract import Artifact
    from styleforge.runtime.tensors import to_input

    rss_before = current_rss_mb()
    start = time.perf_counter()
    library = import_backend_library(spec["backend"])
    import_ms = (time.perf_counter() - start) * 1000.0
    rss_after_import = current_rss_mb()
    providers = _check_device(spec)
    artifact = Artifact.from_dict(spec["artifact"]["key"], spec["artifact"]) if spec.get("artifact") else None
    options = BackendOptions(
        threads=spec.get("threads"),
        delegate=spec.get("delegate"),
        providers=providers,
        device=spec.get("device") or "cpu",
        use_xnnpack=spec.get("use_xnnpack", True),
    )

    content = None
    if artifact is not None and spec.get("bundle"):  # the verified bytes, as open_bundle loads them
        from styleforge.runtime.bundle_files import open_artifact

        _, content = open_artifact(spec["bundle"], artifact)
    start = time.perf_counter()
    backend = load_backend(spec["backend"], spec["model"], artifact, options, content=content)
    load_ms = (time.perf_counter() - start) * 1000.0
    rss_after_load = current_rss_mb()

    in_spec, out_spec = _input_spec(spec, backend, artifact)
    h, w = _resolve_shape(in_spec, spec.get("size"))
    x = to_input(_pixels(spec, h, w), in_spec)

    start = time.perf_counter()
    backend.run(x)
    first_ms = (time.perf_counter() - start) * 1000.0
    for _ in range(int(spec.get("warmup", 3))):
        backend.run(x)

    times: list[float] = []
    runs, duration = int(spec.get("runs") or 0), spec.get("duration_s")
    deadline = time.perf_counter() + float(duration) if duration else None
    while True:
        start = time.perf_counter()
        backend.run(x)
        times.append((time.perf_counter() - start) * 1000.0)
        if deadline is not None:
            if time.perf_counter() >= deadline and len(times) >= 3:
                break
        elif len(times) >= max(runs, 1):
            break

    fidelity = _fidelity(spec, backend, in_spec, out_spec)
    return {
        **cell_record((h, w), (import_ms, load_ms, first_ms), times,
                      (rss_before, rss_after_import, rss_after_load, peak_rss_mb()), fidelity),
        "backend_info": dict(backend.info(), imported=library),
        "input": {"shape": list(x.shape), "dtype": str(x.dtype), "layout": in_spec.layout},
    }


def _delegate_notes(log_text: str) -> dict[str, Any]:
    """What the interpreter logged about delegates: LiteRT prints one line per applied delegate."""
    lines = [ln.strip() for ln in log_text.splitlines() if "delegate" in ln.lower()]
    return {"xnnpack_applied": any("XNNPACK" in ln for ln in lines), "delegate_log": lines[-5:]}


def main(argv: Optional[list[str]] = None) -> int:
    from styleforge.subproc import die_with_parent

    die_with_parent()  # started by bench's run_module: never outlive an interrupted benchmark
    parser = argparse.ArgumentParser(prog="python -m styleforge.benchmarks.worker")
    parser.add_argument("--spec", required=True, help="cell spec as a JSON object")
    parser.add_argument("--log", default=None, help="file for the libraries' output (default: a temp file)")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)

    # Route the libraries' own prints (fd 1 and 2) into a log file; keep the real stdout for JSON.
    sys.stdout.flush()
    sys.stderr.flush()
    json_out = os.fdopen(os.dup(1), "w")
    saved_err = os.dup(2)
    # a named log survives a crash in native code (delegates do segfault), so the parent can say why
    log = open(args.log, "w+b") if args.log else tempfile.TemporaryFile(mode="w+b")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    status, code = "ok", 0
    try:
        result = measure(spec)
    except CellSkipped as err:
        status, code, result = "skipped", SKIPPED_EXIT, {"error": str(err)}
    except Exception as err:  # report any failure as this cell's error, not a crash of the matrix
        from styleforge.runtime.contract import BundleError

        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        status, code, result = "error", 1, {"error": f"{type(err).__name__}: {first}"}
        if isinstance(err, BundleError):  # the bundle is refused (bench stops), not this cell's bad luck
            result["refused"] = True
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_err, 2)
        log.seek(0)
        log_text = log.read().decode("utf-8", errors="replace")
    result["status"] = status
    if spec["backend"] in ("litert", "tflite-runtime") and status == "ok":
        result.setdefault("backend_info", {}).update(_delegate_notes(log_text))
    if status == "error":
        result["log_tail"] = log_text.strip().splitlines()[-8:]
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
