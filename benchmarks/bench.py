"""Benchmark matrix: artifacts x backends x threads x sizes, one fresh worker process per cell.

``run_matrix`` is what ``styleforge bench`` calls. It resolves the models (bundle folders or raw
``.tflite``/``.onnx``/``.pt`` files), plans the cells a backend can actually run, measures each
in ``python -m styleforge.benchmarks.worker`` (or on a phone over adb), and returns one result
dict (schema :data:`SCHEMA`) with the environment block and a list of cells.

Cell keys: ``model`` (bundle or file name), ``path``, ``artifact``, ``format``, ``precision``,
``backend``, ``threads`` (``None`` = runtime default), ``device``, ``delegate``, ``size``
(``[H, W]`` actually run), ``status`` (``ok``/``skipped``/``error``), ``error``, ``import_ms``
(the runtime library), ``load_ms`` (model load + interpreter init), ``first_ms``, ``latency_ms``
(min/p10/p50/p90/p99/max/mean/std), ``runs``, ``ips`` (1000 / mean), ``rss_before_mb`` (before
the library import), ``rss_after_import_mb``, ``rss_after_load_mb``, ``rss_peak_mb``,
``rss_increase_mb`` (peak - before), ``artifact_bytes``,
``macs``, ``gmacs_per_s``, ``fidelity`` (``None`` = n/a, else ``psnr`` (worst reference),
``psnr_mean``, ``max_abs``, ``references``) and ``backend_info``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from styleforge.errors import StyleforgeError
from styleforge.subproc import run_module

SCHEMA = "styleforge-bench/1"
ADB = "adb"
LUT = "lut"  # a bundle's look.cube or recipe.json through the runtime (benchmarks/lut_bench.py, recipe_bench.py)
RAW_FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".pt": "torchscript", ".ptl": "torchscript",
               ".mlpackage": "coreml", ".mlmodel": "coreml"}
DEFAULT_SIZE = (256, 256)


class BenchError(StyleforgeError, ValueError):
    """A benchmark request that cannot be planned (bad path, unknown backend/artifact)."""


@dataclass(frozen=True)
class Target:
    """One model to benchmark: a bundle folder (with its manifest) or a raw model file."""

    path: Path
    name: str
    manifest: Any = None  # styleforge.runtime.contract.Manifest, or None for a raw file
    raw_format: Optional[str] = None

    @property
    def references(self) -> list[list[str]]:
        if self.manifest is None:
            return []
        return [[str(self.path / r["input"]), str(self.path / r["output"])] for r in self.manifest.references]


@dataclass(frozen=True)
class CellPlan:
    target: Target
    artifact: Optional[str]  # manifest key; None for a raw file
    fmt: str
    precision: str
    model_file: Path
    backend: str
    threads: Optional[int]
    size: Optional[tuple[int, int]]  # None: the artifact's own (static) size
    device: str = "cpu"
    delegate: Optional[str] = None
    xnnpack: Optional[bool] = None  # LiteRT's default XNNPACK delegate on/off; None: not a TFLite cell

    def label(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "static"
        return f"{self.target.name}/{self.artifact or self.model_file.name} {self.backend} t={self.threads or 'default'} {size}"


@dataclass
class BenchSettings:
    warmup: int = 3
    runs: int = 20
    duration_s: Optional[float] = None
    timeout_s: float = 600.0
    adb_serial: Optional[str] = None
    adb_binary: str = "/data/local/tmp/benchmark_model"
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_target(path: str | Path) -> Target:
    """A bundle folder (``manifest.json`` inside) or a raw model file."""
    from styleforge.runtime.contract import BundleError
    from styleforge.runtime.manifest import load_manifest

    p = Path(path)
    if p.is_dir() and not p.suffix == ".mlpackage":
        try:
            manifest = load_manifest(p)
        except BundleError as err:
            raise BenchError(str(err)) from None
        return Target(path=p, name=manifest.name or p.name, manifest=manifest)
    if not p.exists():
        raise BenchError(f"not found: {p}")
    fmt = RAW_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise BenchError(f"{p}: not a bundle folder or a model file ({', '.join(RAW_FORMATS)})")
    return Target(path=p, name=p.name, raw_format=fmt)


def backend_formats(backend: str) -> tuple[str, ...]:
    if backend == ADB:
        return ("tflite",)
    if backend == LUT:
        return ("cube", "recipe")
    from styleforge.runtime.backends import BackendError
    from styleforge.runtime.backends import backend_formats as formats

    try:
        return formats(backend)
    except BackendError as err:
        raise BenchError(str(err)) from None


def resolve_backends(names: Sequence[str]) -> list[str]:
    """Expand ``all`` to the backends installed here (adb only when named)."""
    from styleforge.runtime.backends import available_backends

    out: list[str] = []
    for name in names:
        for backend in [*available_backends(), LUT] if name == "all" else [name]:
            backend_formats(backend)  # validates the name
            if backend not in out:
                out.append(backend)
    return out


def _static_size(artifact) -> Optional[tuple[int, int]]:
    h, w = artifact.input.height, artifact.input.width
    return (int(h), int(w)) if h and w else None


def plan_cells(
    targets: Sequence[Target],
    backends: Sequence[str],
    artifacts: Sequence[str] = ("all",),
    threads: Sequence[Optional[int]] = (None,),
    sizes: Sequence[tuple[int, int]] = (),
    device: str = "cpu",
    delegate: Optional[str] = None,
    compute_units: Optional[str] = None,
    xnnpack: Sequence[bool] = (True,),
) -> tuple[list[CellPlan], list[str]]:
    """Every (artifact, backend, threads, size) a backend can run; returns (cells, notes).

    Static artifacts run at their own size (listed ``sizes`` then filter them); dynamic ones
    run once per requested size (default: the reference size, else 256x256). LiteRT cells run
    once per ``xnnpack`` setting (``False``: ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``).
    """
    cells, notes = [], []
    for target in targets:
        if target.manifest is None:
            entries = [(None, target.raw_format, "n/a", target.path, None)]
        else:
            keys = list(target.manifest.artifacts) if "all" in artifacts else list(artifacts)
            unknown = [k for k in keys if k not in target.manifest.artifacts]
            if unknown:
                notes.append(f"{target.name}: no artifact {', '.join(unknown)} "
                             f"(has {', '.join(target.manifest.artifacts)})")
            if "all" in artifacts and any(a.format == "torchscript" for a in target.manifest.artifacts.values()):
                # torch.jit.load runs the file's code: a bundle's model.pt only when named
                keys = [k for k in keys if target.manifest.artifacts[k].format != "torchscript"]
                notes.append(f"{target.name}: TorchScript not benchmarked (it runs only trusted files; "
                             f"--artifact torchscript includes it)")
            elif any(target.manifest.artifacts[k].format == "torchscript" for k in keys if k in target.manifest.artifacts):
                notes.append(f"{target.name}: TorchScript runs whatever code the file holds: benchmark "
                             f"only bundles you trust")
            entries = [
                (k, a.format, a.precision, target.path / a.file, _static_size(a))
                for k, a in target.manifest.artifacts.items() if k in keys
            ]
        for key, fmt, precision, model_file, static in entries:
            runners = [b for b in backends if fmt in backend_formats(b)]
            if not runners and "all" not in artifacts:
                notes.append(f"{target.name}/{key or model_file.name}: no selected backend runs {fmt}")
            if static is not None and sizes and static not in sizes:
                notes.append(f"{target.name}/{key}: static {static[0]}x{static[1]} not in --size; skipped")
                continue
            run_sizes: list[Optional[tuple[int, int]]] = [static] if static else list(sizes) or [None]
            if fmt in ("cube", "recipe"):  # any size, full resolution: a 1080p frame and a 24 MP photo by default
                from styleforge.benchmarks.lut_bench import DEFAULT_SIZES

                run_sizes = list(sizes) or list(DEFAULT_SIZES)
            for backend in runners:
                # Core ML's "device" is its compute units (ALL, CPU_AND_NE, ...); CPU_ONLY by default
                where = (compute_units or ("CPU_ONLY" if device == "cpu" else device)) if backend == "coreml" else device
                xnn_settings = list(xnnpack) if backend in ("litert", "tflite-runtime") else [None]
                for size in run_sizes:
                    for xnn in xnn_settings:
                        for n in threads:
                            cells.append(CellPlan(target, key, fmt, precision, model_file, backend, n, size,
                                                  where, delegate, xnn))
    return cells, notes


def _worker_spec(cell: CellPlan, settings: BenchSettings) -> dict[str, Any]:
    artifact = None
    if cell.artifact is not None:
        artifact = dict(cell.target.manifest.artifacts[cell.artifact].to_dict(), key=cell.artifact)
    return {
        "model": str(cell.model_file),
        "artifact": artifact,
        "backend": cell.backend,
        "threads": cell.threads,
        "delegate": cell.delegate,
        "device": cell.device,
        "use_xnnpack": cell.xnnpack is not False,
        "size": list(cell.size) if cell.size else None,
        "warmup": settings.warmup,
        "runs": settings.runs,
        "duration_s": settings.duration_s,
        "references": cell.target.references,
        "bundle": str(cell.target.path) if cell.target.manifest is not None else None,
    }


def run_worker(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run one cell in a fresh ``python -m styleforge.benchmarks.worker``; returns its JSON."""
    with tempfile.TemporaryDirectory(prefix="styleforge-bench-") as tmp:
        log = Path(tmp) / "worker.log"
        proc = run_module("styleforge.benchmarks.worker", ["--spec", json.dumps(spec), "--log", str(log)], timeout_s)
        if proc.timed_out:
            return {"status": "error", "error": proc.reason()}
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
        if lines:
            return json.loads(lines[-1])
        # the worker died before answering: a crash in native code, or killed for memory
        said = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        said = said or proc.last_lines()
        reason = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        return {"status": "error", "error": f"worker died ({reason})" + (f": {said[-1].strip()}" if said else ""),
                "log_tail": said[-8:]}


def _run_adb(cell: CellPlan, settings: BenchSettings, pushed: dict[Path, str]) -> dict[str, Any]:
    from styleforge.benchmarks.adb import (
        AdbDevice,
        AdbError,
        parse_benchmark_model,
        to_cell_metrics,
    )

    device = AdbDevice(serial=settings.adb_serial, binary=settings.adb_binary, timeout_s=settings.timeout_s)
    try:
        if cell.model_file not in pushed:
            pushed[cell.model_file] = device.push(cell.model_file)
        text = device.benchmark(pushed[cell.model_file], threads=cell.threads, warmup=settings.warmup,
                                runs=settings.runs, duration_s=settings.duration_s, delegate=cell.delegate)
        result = to_cell_metrics(parse_benchmark_model(text))
    except AdbError as err:
        return {"status": "error", "error": str(err)}
    result["status"] = "ok"
    result["size"] = list(cell.size) if cell.size else None
    return result


def _macs(cell: CellPlan, size: Optional[Sequence[int]]) -> Optional[int]:
    """The manifest's MAC count, scaled by pixel count when the cell ran at another size."""
    if cell.target.manifest is None or cell.fmt in ("cube", "recipe") or str(cell.artifact or "").startswith("lut_"):
        return None  # the model's MACs say nothing about a LUT or its gather graphs
    model = cell.target.manifest.model
    macs = model.get("macs")
    if not macs or not size:
        return int(macs) if macs else None
    # MACs are counted at the export size: the manifest's, else any static artifact's.
    counted_at = model.get("macs_size") or model.get("size")
    statics = [_static_size(a) for a in cell.target.manifest.artifacts.values()]
    counted_at = counted_at or next((s for s in statics if s), None)
    if counted_at:
        macs = macs * (size[0] * size[1]) / (counted_at[0] * counted_at[1])
    return int(macs)


def finish_cell(cell: CellPlan, metrics: dict[str, Any]) -> dict[str, Any]:
    """Plan fields + measured metrics + derived numbers (artifact bytes, MACs, GMAC/s)."""
    size = metrics.get("size") or (list(cell.size) if cell.size else None)
    out: dict[str, Any] = {
        "model": cell.target.name,
        "path": str(cell.target.path),
        "artifact": cell.artifact or cell.model_file.name,
        "format": cell.fmt,
        "precision": cell.precision,
        "backend": cell.backend,
        "threads": cell.threads,
        "device": cell.device,
        "delegate": cell.delegate,
        "xnnpack": cell.xnnpack,
        "size": size,
        "status": metrics.get("status", "error"),
        "error": metrics.get("error"),
    }
    out.update({k: v for k, v in metrics.items() if k not in out})
    out["artifact_bytes"] = _file_bytes(cell.model_file)
    out["macs"] = _macs(cell, size)
    p50 = (metrics.get("latency_ms") or {}).get("p50") or (metrics.get("latency_ms") or {}).get("mean")
    out["gmacs_per_s"] = out["macs"] / (p50 / 1000.0) / 1e9 if out["macs"] and p50 else None
    return out


def _file_bytes(path: Path) -> int:
    if path.is_dir():  # .mlpackage
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def verify_artifacts(cells: Sequence[CellPlan]) -> None:
    """Hash (and sniff) every bundle artifact the matrix will run, once, before any worker starts:
    a tampered bundle is refused with one line instead of failing cell by cell. (resolve_target's
    load_manifest has already checked the manifest, and every file's place and size.)"""
    from styleforge.runtime import bundle_files
    from styleforge.runtime.contract import BundleError

    seen: set[tuple[Path, str]] = set()
    for cell in cells:
        if cell.target.manifest is None or cell.artifact is None or (cell.target.path, cell.artifact) in seen:
            continue
        seen.add((cell.target.path, cell.artifact))
        art = cell.target.manifest.artifacts[cell.artifact]
        try:
            if art.format in bundle_files.DIRECTORY_FORMATS:
                bundle_files.verified_package(cell.target.path, art)
            else:
                bundle_files.read_artifact(cell.target.path, art)
        except BundleError as err:
            raise BenchError(str(err)) from None


def run_matrix(
    cells: Sequence[CellPlan],
    settings: BenchSettings,
    on_cell: Optional[Callable[[int, int, dict[str, Any]], None]] = None,
) -> list[dict[str, Any]]:
    """Measure every planned cell in order; ``on_cell(i, n, cell)`` reports progress."""
    results = []
    pushed: dict[Path, str] = {}
    for i, cell in enumerate(cells, 1):
        if cell.backend == ADB:
            metrics = _run_adb(cell, settings, pushed)
        else:
            metrics = run_worker(_worker_spec(cell, settings), settings.timeout_s)
        if metrics.get("refused"):  # the bundle contradicts its own model: refuse it, as the runtime does
            raise BenchError(f"{cell.label()}: {metrics.get('error')}")
        result = finish_cell(cell, metrics)
        results.append(result)
        if on_cell:
            on_cell(i, len(cells), result)
    return results


def benchmark(
    paths: Sequence[str | Path],
    backends: Sequence[str] = ("all",),
    artifacts: Sequence[str] = ("all",),
    threads: Sequence[Optional[int]] = (None,),
    sizes: Sequence[tuple[int, int]] = (),
    device: str = "cpu",
    delegate: Optional[str] = None,
    compute_units: Optional[str] = None,
    xnnpack: Sequence[bool] = (True,),
    settings: Optional[BenchSettings] = None,
    on_cell: Optional[Callable[[int, int, dict[str, Any]], None]] = None,
    probe_environment: bool = True,
) -> dict[str, Any]:
    """Plan and run the whole matrix; returns the report dict (schema :data:`SCHEMA`)."""
    from styleforge.benchmarks import environment

    settings = settings or BenchSettings()
    targets = [resolve_target(p) for p in paths]
    cells, notes = plan_cells(targets, resolve_backends(backends), artifacts, threads, sizes, device, delegate,
                               compute_units, xnnpack)
    if not cells:
        raise BenchError("nothing to run: " + ("; ".join(notes) or "no artifact matches a selected backend"))
    verify_artifacts(cells)
    # probe (import) only the runtimes this matrix uses: torch alone costs seconds and ~200 MB
    env = environment.collect(probe_runtimes=tuple({c.backend for c in cells}) if probe_environment else False)
    if any(c.backend == ADB for c in cells):
        env["adb_devices"] = _adb_device_info(settings)
    started = time.time()
    results = run_matrix(cells, settings, on_cell)
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 3),
        "settings": {
            "warmup": settings.warmup, "runs": settings.runs, "duration_s": settings.duration_s,
            "backends": sorted({c.backend for c in cells}), "threads": list(threads),
            "sizes": [list(s) for s in sizes], "device": device, "delegate": delegate,
            "compute_units": compute_units,
            "xnnpack": list(xnnpack),
        },
        "notes": notes,
        "environment": env,
        "cells": results,
    }


def _adb_device_info(settings: BenchSettings) -> list[dict[str, str]]:
    from styleforge.benchmarks.adb import AdbDevice, AdbError

    try:
        return [AdbDevice(serial=settings.adb_serial).device_info()]
    except AdbError as err:
        return [{"error": str(err)}]
