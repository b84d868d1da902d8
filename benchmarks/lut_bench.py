"""One LUT benchmark cell: a bundle's ``look.cube`` through the runtime's LUT path at full size.

Run inside the bench worker (``backend == "lut"``), one fresh process per cell, so the peak RSS
is this cell's own. Per cell (a photo of ``size`` = (H, W), default 1080p and 24 MP):

- ``latency_ms``: ``LutStylizer.stylize_rgb`` on the decoded uint8 array, decode and encode
  excluded; ``decode_ms`` / ``encode_ms``: JPEG (quality 95) decode and encode of the same
  photo, timed apart;
- ``pillow_1t_ms``: one bare single-thread ``Image.filter(ImageFilter.Color3DLUT)`` pass on the
  same pixels in the same process (the reference the issue's 0.6x target is set against), and
  ``ratio_vs_pillow`` = LUT p50 / Pillow p50;
- ``inputs``: the same pass on three kinds of pixels of that size, side by side, because the
  8-bit path is one gather from a 64 MiB table and its speed depends on how the pixels walk it:
  ``smooth`` (the photo), ``noisy`` (the photo plus sensor-like Gaussian noise, sigma
  :data:`NOISE_SIGMA` levels) and ``uniform`` (uniform random pixels: every gather a cache miss,
  the worst case). Each has its LUT p50, its own Pillow 1-thread pass and ratio, the largest
  difference from Pillow, and ``peak_rss_mb``: the peak over its LUT runs, from when its pixels
  are ready (the pixels, one output, the table, the process and the decoded photo the pixels
  derive from; Linux resets the peak first, elsewhere it is the process peak so far), and
  ``pil_vs_array``: ``stylize`` handed and returning a PIL image against the same call on the
  array, interleaved call by call (``array_ms`` / ``pil_ms``: their p50s), so the conversions a
  PIL caller pays are measured beside the pass they wrap;
- ``fidelity``: PSNR against the bundle's reference outputs (as for every backend);
  ``vs_student``: PSNR of the LUT path against the bundle's tiled conv student on the same
  photo (at most 1080p, measured after the RSS peak is read), when the bundle has one.

The photo is the bundle's first reference input (else a sample photo) resized to ``size``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from styleforge.benchmarks.cell_stats import (
    cell_record,
    current_rss_mb,
    peak_rss_mb,
    reset_peak_rss,
)

DEFAULT_SIZES = ((1080, 1920), (4000, 6000))  # a 1080p frame, a 24 MP photo
INPUT_KINDS = ("smooth", "noisy", "uniform")
NOISE_SIGMA = 4.0  # levels: sensor-like noise of a high-ISO phone photo
STUDENT_MAX_PIXELS = 1920 * 1080


def _median_ms(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times)), times


def bench_photo(spec: dict[str, Any], h: int, w: int):
    from PIL import Image

    refs = spec.get("references") or []
    if refs:
        source = refs[0][0]
    else:
        from styleforge.export.calibration import default_photos

        source = default_photos()[0]
    from styleforge.runtime.imageio import open_image

    return open_image(source).rgb.resize((w, h), Image.BICUBIC)


def measure_lut(spec: dict[str, Any]) -> dict[str, Any]:
    """Time and score one LUT cell (see the module doc); returns the bench cell's metrics."""
    rss_before = current_rss_mb()
    start = time.perf_counter()
    from styleforge.runtime import lut as rlut
    from styleforge.runtime.contract import Artifact
    from styleforge.runtime.imageio import open_image
    from styleforge.runtime.lut_stylizer import LutStylizer
    from styleforge.runtime.manifest import load_manifest
    from styleforge.runtime.writer import save_image

    import_ms = (time.perf_counter() - start) * 1000.0
    rss_after_import = current_rss_mb()
    bundle = Path(spec["bundle"])
    key = (spec.get("artifact") or {}).get("key", "lut_cube")
    artifact = Artifact.from_dict(key, spec["artifact"]) if spec.get("artifact") else None
    manifest = load_manifest(bundle)
    start = time.perf_counter()
    stylizer = LutStylizer.from_manifest(bundle, manifest, artifact.key if artifact else key, threads=spec.get("threads"))
    stylizer.applier.table_u8(1.0)  # the 256^3 table is part of loading, not of the first image
    load_ms = (time.perf_counter() - start) * 1000.0
    rss_after_load = current_rss_mb()

    h, w = (int(v) for v in (spec.get("size") or DEFAULT_SIZES[0]))
    runs = int(spec.get("runs") or 5)
    with tempfile.TemporaryDirectory(prefix="styleforge-lutbench-") as tmp:
        photo_path = Path(tmp) / "photo.jpg"
        bench_photo(spec, h, w).save(photo_path, quality=95)
        decode_ms, _ = _median_ms(lambda: open_image(photo_path), min(runs, 5))
        rgb = np.asarray(open_image(photo_path).rgb, dtype=np.uint8)

        start = time.perf_counter()
        styled = stylizer.stylize_rgb(rgb)
        first_ms = (time.perf_counter() - start) * 1000.0
        for _ in range(int(spec.get("warmup", 1))):
            stylizer.stylize_rgb(rgb)
        _, times = _median_ms(lambda: stylizer.stylize_rgb(rgb), runs)
        out_path = Path(tmp) / "styled.jpg"
        encode_ms, _ = _median_ms(lambda: save_image(styled, out_path, quality=95), min(runs, 5))
        peak = peak_rss_mb()  # decode + LUT + encode; the Pillow reference below has its own copies

        from PIL import Image

        pil_image, pil_filter = Image.fromarray(rgb), rlut.pillow_filter(stylizer.lut)
        pillow_ms, _ = _median_ms(lambda: pil_image.filter(pil_filter), min(runs, 5))
        pillow_max_diff = int(np.abs(np.asarray(pil_image.filter(pil_filter), dtype=np.int16) - styled).max())
        fidelity = reference_fidelity(spec, stylizer)
        vs_student = _vs_student(bundle, manifest, rgb, styled)
        pil_image = styled = None  # free them: the input kinds below measure their own peaks
        inputs = {kind: _measure_input(stylizer, rgb, kind, runs, int(spec.get("warmup", 1)))
                  for kind in spec.get("inputs") or INPUT_KINDS}
    stylizer.close()
    record = cell_record((h, w), (import_ms, load_ms, first_ms), times,
                         (rss_before, rss_after_import, rss_after_load, peak), fidelity)
    return {
        **record,
        "lut": {
            "decode_ms": decode_ms,
            "encode_ms": encode_ms,
            "pillow_1t_ms": pillow_ms,
            "ratio_vs_pillow": record["latency_ms"]["p50"] / pillow_ms if pillow_ms else None,
            "pillow_max_abs": pillow_max_diff,
            "vs_student": vs_student,
            "lut_size": stylizer.lut.size,
            "inputs": inputs,
        },
        "backend_info": stylizer.info(),
        "input": {"shape": [h, w, 3], "dtype": "uint8", "layout": "HWC"},
    }


def input_pixels(photo: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """uint8 ``[H, W, 3]`` pixels of ``kind`` (see :data:`INPUT_KINDS`) at the photo's size."""
    rng = np.random.default_rng(seed)
    if kind == "smooth":
        return photo
    if kind == "noisy":
        out = np.empty_like(photo)
        for y in range(0, photo.shape[0], 256):  # in bands: no full-size float copy
            band = photo[y:y + 256].astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, photo[y:y + 256].shape)
            out[y:y + 256] = np.clip(np.rint(band), 0, 255)
        return out
    if kind == "uniform":
        return rng.integers(0, 256, photo.shape, dtype=np.uint8)
    raise ValueError(f"unknown input kind {kind!r}: expected one of {', '.join(INPUT_KINDS)}")


def _measure_input(stylizer, photo: np.ndarray, kind: str, runs: int, warmup: int) -> dict[str, Any]:
    """One input kind through the LUT path and through a bare 1-thread Pillow pass (same process)."""
    from PIL import Image

    from styleforge.runtime import lut as rlut

    pixels = input_pixels(photo, kind)
    reset = reset_peak_rss()  # the LUT path's own peak on these pixels, not the making of them
    for _ in range(max(0, warmup)):
        stylizer.stylize_rgb(pixels)
    p50, _ = _median_ms(lambda: stylizer.stylize_rgb(pixels), runs)
    styled = stylizer.stylize_rgb(pixels)
    peak = peak_rss_mb()
    pil_image, pil_filter = Image.fromarray(pixels), rlut.pillow_filter(stylizer.lut)
    pillow_ms, _ = _median_ms(lambda: pil_image.filter(pil_filter), min(runs, 5))
    max_abs = int(np.abs(np.asarray(pil_image.filter(pil_filter), dtype=np.int16) - styled).max())
    array_ms, pil_ms = interleaved_ms(lambda: stylizer.stylize(pixels), lambda: stylizer.stylize(pil_image), runs)
    return {"p50_ms": p50, "pillow_1t_ms": pillow_ms, "ratio_vs_pillow": p50 / pillow_ms if pillow_ms else None,
            "pillow_max_abs": max_abs, "peak_rss_mb": peak, "peak_reset": reset,
            "array_ms": array_ms, "pil_ms": pil_ms, "pil_vs_array": pil_ms / array_ms if array_ms else None}


def interleaved_ms(first, second, runs: int) -> tuple[float, float]:
    """p50s of two calls timed alternately (after one warm-up each), so load on a shared machine
    falls on both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(1, runs)):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times[0])), float(np.median(times[1]))


def reference_fidelity(spec: dict[str, Any], stylizer) -> Optional[dict[str, Any]]:
    """PSNR (uint8) of the LUT path against the bundle's reference outputs (worst and mean)."""
    from styleforge.runtime.imageio import open_image, to_uint8_array
    from styleforge.runtime.metrics import max_abs_error, psnr

    scores, worst = [], 0.0
    for input_path, output_path in spec.get("references") or []:
        source = to_uint8_array(open_image(input_path).rgb)
        target = to_uint8_array(open_image(output_path).rgb)
        out = stylizer.stylize_rgb(source)
        scores.append(psnr(out, target))
        worst = max(worst, max_abs_error(out, target))
    if not scores:
        return None
    return {"psnr": float(min(scores)), "psnr_mean": float(np.mean(scores)), "max_abs": worst, "references": len(scores)}


def _vs_student(bundle: Path, manifest, rgb: np.ndarray, styled: np.ndarray) -> Optional[dict[str, Any]]:
    """The LUT path against the bundle's tiled conv student on the same photo (<= 1080p)."""
    from styleforge.runtime.backends import BackendError
    from styleforge.runtime.contract import BundleError
    from styleforge.runtime.metrics import max_abs_error, psnr
    from styleforge.runtime.stylizer import open_bundle

    if not any(a.format in ("tflite", "onnx") for a in manifest.artifacts.values()):
        return None
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / STUDENT_MAX_PIXELS))))
    small, small_lut = np.ascontiguousarray(rgb[::step, ::step]), styled[::step, ::step]
    # the int8 student is the one a phone or Pi runs today (the 4.3 s / 24 MP baseline)
    key = "tflite_int8" if "tflite_int8" in manifest.artifacts else "auto"
    try:
        student = open_bundle(bundle, artifact=key, backend="auto")
    except (BundleError, BackendError) as err:
        return {"error": str(err)}
    try:
        theirs = student.stylize_rgb(small)
    finally:
        student.close()
    return {"artifact": student.artifact.key, "psnr": psnr(small_lut, theirs), "max_abs": max_abs_error(small_lut, theirs),
            "size": list(small.shape[:2])}


def format_lut_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    """Rows for the LUT section of the report (header: :data:`LUT_HEADERS`): one per input kind
    (smooth photo, noisy photo, uniform random pixels) of each cell, side by side."""
    rows = []
    for c in cells:
        if c.get("backend") != "lut" or c.get("status") != "ok" or c.get("recipe"):
            continue
        lut = c.get("lut") or {}
        student = lut.get("vs_student") or {}
        inputs = lut.get("inputs") or {"smooth": {"p50_ms": c["latency_ms"]["p50"], "pillow_1t_ms": lut["pillow_1t_ms"],
                                                  "ratio_vs_pillow": lut["ratio_vs_pillow"],
                                                  "peak_rss_mb": c.get("rss_peak_mb")}}
        for kind, m in inputs.items():
            smooth = kind == "smooth"
            rows.append([
                str(c.get("model")), f"{c['size'][0]}x{c['size'][1]}", str(c.get("threads") or "default"), kind,
                f"{m['p50_ms']:.1f}", f"{m['pillow_1t_ms']:.1f}", f"{m['ratio_vs_pillow']:.2f}x",
                f"{m['pil_vs_array']:.2f}x" if m.get("pil_vs_array") is not None else "n/a",
                f"{lut['decode_ms']:.1f}" if smooth else "", f"{lut['encode_ms']:.1f}" if smooth else "",
                f"{c.get('load_ms', 0):.0f}" if smooth else "",
                f"{m['peak_rss_mb']:.0f}" if m.get("peak_rss_mb") is not None else "n/a",
                (f"{student['psnr']:.1f} ({student['artifact']})" if "psnr" in student else "n/a") if smooth else "",
            ])
    return rows


LUT_HEADERS = ["model", "size", "threads", "input", "LUT p50 ms", "Pillow 1-thread ms", "LUT / Pillow",
               "PIL in/out / array", "decode ms",
               "encode ms", "load ms (+256^3 table)", "peak RSS MB", "PSNR vs tiled student dB"]
