"""The fidelity gate: run each exported artifact the way ``styleforge stylize`` does, compare with PyTorch.

The reference is the PyTorch fp32 model itself, run here. Every artifact is run by
``styleforge.runtime`` — its backend, its tensor conversion, its ``Stylizer`` — in a **child
process** (``python -m styleforge.export.gate_worker``), so

- the gate measures exactly the pixels a user's ``stylize`` gets from that file (a test holds
  the two to the same uint8 pixels), and
- an interpreter that dies in native code (LiteRT aborts on a degenerate int8 model) becomes a
  :class:`GateError` naming the artifact and the backend, instead of killing ``export``.

Metrics (``styleforge.runtime.metrics``) are computed on float pixel values in ``[0, 255]``,
clipped, *not* rounded: rounding to uint8 would hide differences below one level and turn tiny
ones into whole levels (``Stylizer.stylize_unrounded`` gives the values before its rounding).

The gate's PSNR is the mean over the held-out crops of each crop's PSNR (``psnr``; also
``psnr_min``), the definition its bounds were measured with. Default bounds (dB vs PyTorch
fp32), from the nano/small MobileGenerator and a CycleGAN ResNet generator (``export/README.md``):

- ``fp32`` 60 dB: the same maths in another kernel library lands at 80-100 dB; below 60 means a
  wrong conversion (a flipped layout, a mis-converted pad), not float rounding.
- ``fp16`` 40 dB: half-precision weights/activations cost ~45-60 dB on these generators;
  40 dB is about 2.5 levels RMS, invisible on photos.
- ``dynamic_int8`` 32 dB: int8 weights with float activations.
- ``int8`` 30 dB: weights *and* activations in int8; 30 dB (about 8 levels RMS) is where
  banding starts to show in smooth skin and sky.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.runtime.contract import Artifact
from styleforge.runtime.metrics import max_abs_error, psnr, ssim
from styleforge.runtime.tensors import range_to_pixels
from styleforge.subproc import run_module
from styleforge.train.tensors import image_to_tensor

DEFAULT_BOUNDS_DB = {"fp32": 60.0, "fp16": 40.0, "dynamic_int8": 32.0, "int8": 30.0}
NOT_VERIFIED_COREML = "not verified on this OS (Core ML prediction needs macOS)"
# The runtime backend that runs each artifact format in the gate (as ``stylize`` would).
GATE_BACKENDS = {"onnx": "onnxruntime", "tflite": "litert", "torchscript": "torch", "coreml": "coreml"}
GATE_THREADS = 2
GATE_TIMEOUT_S = 1800.0  # a ResNet-9 teacher at 1024 px in fp32 on one slow core stays well below


class FidelityError(StyleforgeError, RuntimeError):
    """An artifact fell below its PSNR bound."""


class GateError(StyleforgeError, RuntimeError):
    """An artifact could not be run at all (its interpreter failed or crashed); names it and why."""


def reference_pixels(model, crops: np.ndarray) -> np.ndarray:
    """PyTorch fp32 ``model`` on uint8 ``[N, H, W, 3]`` crops -> float32 ``[N, H, W, 3]`` in [0, 255].

    Not rounded. Raises :class:`GateError` when the model itself outputs NaN or inf (diverged
    weights): there is nothing to compare an artifact with.
    """
    import torch


    outs = []
    with torch.no_grad():
        for crop in crops:
            y = model(image_to_tensor(crop)[None])[0].permute(1, 2, 0).numpy()  # [H, W, 3] in [-1, 1]
            outs.append(y)
    raw = np.stack(outs)
    if not np.isfinite(raw).all():
        raise GateError("the PyTorch model outputs NaN or inf on the held-out photos "
                        "(diverged training?); refusing to export it")
    return range_to_pixels(raw)


def fidelity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Mean PSNR/SSIM and worst max-abs error of ``[N, H, W, 3]`` float pixels in [0, 255]."""
    psnrs = [psnr(a, b, 255.0) for a, b in zip(reference, candidate)]
    ssims = [ssim(a, b, 255.0) for a, b in zip(reference, candidate)]
    return {
        "psnr": round(float(np.mean(psnrs)), 2),
        "psnr_min": round(float(np.min(psnrs)), 2),
        "ssim": round(float(np.mean(ssims)), 5),
        "max_abs": round(max(max_abs_error(a, b) for a, b in zip(reference, candidate)), 3),
        "images": len(psnrs),
    }


def artifact_pixels(
    model_path: Path,
    artifact: Artifact,
    crops: np.ndarray,
    *,
    stride: int = 1,
    backend: Optional[str] = None,
    derive_specs: bool = False,
    list_ops: bool = False,
    threads: int = GATE_THREADS,
    timeout_s: float = GATE_TIMEOUT_S,
) -> tuple[np.ndarray, Artifact]:
    """Stylize uint8 ``[N, H, W, 3]`` crops with ``artifact`` in a child process, as ``stylize`` would.

    Returns float32 ``[N, H, W, 3]`` pixel values in [0, 255] (not rounded) and the artifact,
    with the input/output specs its interpreter reports when ``derive_specs`` (TFLite) and its
    op counts (``ops``; int8: ``extra["float_leftovers"]``) when ``list_ops`` (TFLite).
    ``backend`` defaults to :data:`GATE_BACKENDS` of the artifact's format. Raises
    :class:`GateError` naming the artifact, the backend and what happened if the child fails,
    crashes (e.g. SIGABRT) or times out.
    """
    backend = backend or GATE_BACKENDS[artifact.format]
    what = f"{artifact.key} ({Path(model_path).name}) on {backend}"
    with tempfile.TemporaryDirectory(prefix="styleforge-gate-") as tmp:
        inputs, output = Path(tmp) / "crops.npy", Path(tmp) / "pixels.npy"
        np.save(inputs, np.ascontiguousarray(crops, dtype=np.uint8))
        spec = {
            "model": str(model_path), "artifact": {**artifact.to_dict(), "key": artifact.key},
            "backend": backend, "stride": int(stride), "threads": threads,
            "inputs": str(inputs), "output": str(output), "derive_specs": derive_specs, "list_ops": list_ops,
        }
        child = run_module("styleforge.export.gate_worker", ["--spec", json.dumps(spec)], timeout_s=timeout_s)
        said = [ln for ln in child.stdout.splitlines() if ln.strip().startswith("{")]
        answer = json.loads(said[-1]) if said else None
        if child.crashed or answer is None:
            tail = child.last_lines(1)
            raise GateError(
                f"{what}: the export gate's child process running it died ({child.reason()}"
                + (f"; last output: {tail[0]}" if tail else "")
                + "). The runtime cannot run this artifact; nothing was written. Degenerate weights "
                "(diverged training: huge, NaN or zero quantisation scales) make LiteRT abort like this."
            )
        if answer.get("status") != "ok":
            raise GateError(f"{what}: cannot be run by the runtime: {answer.get('error', child.reason())}")
        pixels = np.load(output)
    if derive_specs:
        from styleforge.runtime.contract import TensorSpec

        artifact = dataclasses.replace(artifact, input=TensorSpec.from_dict(answer["input"]),
                                       output=TensorSpec.from_dict(answer["output"]))
    if "ops" in answer:
        artifact = dataclasses.replace(artifact, ops=answer["ops"])
    if "float_leftovers" in answer:
        artifact = dataclasses.replace(artifact, extra={**artifact.extra, "float_leftovers": answer["float_leftovers"]})
    return pixels, artifact


def check_bound(key: str, precision: str, figures: dict[str, float], bounds: dict[str, float]) -> float:
    """Return the bound for this artifact (by key, else precision); raise FidelityError if below."""
    bound = bounds.get(key, bounds.get(precision, DEFAULT_BOUNDS_DB.get(precision, 0.0)))
    if not (figures["psnr"] >= bound) or not math.isfinite(figures["psnr"]):  # NaN outputs fail too
        raise FidelityError(
            f"{key}: PSNR {figures['psnr']:.2f} dB vs PyTorch fp32 is below its bound of {bound:g} dB "
            f"(SSIM {figures['ssim']:.4f}, max abs {figures['max_abs']:.1f}/255); nothing was written. "
            f"Override with --bound {key}=N if this is acceptable."
        )
    return bound

