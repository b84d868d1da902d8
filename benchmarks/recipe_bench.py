"""One look-recipe benchmark cell: a bundle's ``recipe.json`` through the runtime at full size,
beside the same operators done with Pillow's filters in the same process.

Run inside the bench worker (``backend == "lut"``, an artifact of format ``recipe``), one fresh
process per cell, so the peak RSS is this cell's own. Per cell (a photo of ``size`` = (H, W),
default 1080p and 24 MP):

- ``latency_ms``: ``LutStylizer.stylize_rgb`` on the decoded uint8 array (strips over
  ``threads``, :mod:`styleforge.runtime.look_strips`), decode and encode excluded; ``cpu_ms``:
  the process's CPU time per run (user + system, all threads), the figure a busy shared machine
  does not inflate; ``load_ms`` includes the 256^3 LUT tables;
- ``peak_rss_mb``: the peak over the timed runs, from when the pixels are ready (the photo, one
  output, the tables, the kept LUT results and the strips; Linux resets the peak first);
- ``pillow_ms``: the recipe's operators done at full resolution with Pillow's filters
  (:func:`pillow_recipe`: ``Color3DLUT``, ``GaussianBlur``, ``ImageMath``, ``ImageChops``,
  ``point``, single-threaded as Pillow's filters are), timed in the same process, and
  ``ratio_vs_pillow`` = runtime p50 / Pillow p50; ``pillow_psnr``: how close that approximation
  gets to the runtime's output (its blurs are box-filter Gaussians, its luma Rec.601, its vignette
  a resized radial gradient). All three are None for a recipe with detail, smooth_skin or grain,
  which Pillow has no filter for;
- ``pil_vs_array``: ``stylize`` handed and returning a PIL image against the same call on the
  array, interleaved call by call;
- ``fidelity``: PSNR against the bundle's reference outputs (PyTorch's, as for every backend).

The photo is the bundle's first reference input (else a sample photo) resized to ``size``.
"""

from __future__ import annotations

import os
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
from styleforge.benchmarks.lut_bench import bench_photo, interleaved_ms, reference_fidelity

# the recipe the target names (colour + clarity + bloom + vignette), in the order the
# paired fit writes its operators (train/recipe_fit.ORDER): what write_example_bundle exports
EXAMPLE_STEPS = (
    ("clarity", {"amount": 0.6, "radius": 0.02}),
    ("colour_lut", {}),
    ("bloom", {"strength": 0.5, "threshold": 0.7, "radius": 0.04}),
    ("vignette", {"amount": -0.4, "midpoint": 0.5, "roundness": 0.0, "feather": 0.5, "center_x": 0.5, "center_y": 0.5}),
)


def measure_recipe(spec: dict[str, Any]) -> dict[str, Any]:
    """Time and score one recipe cell (see the module doc); returns the bench cell's metrics."""
    rss_before = current_rss_mb()
    start = time.perf_counter()
    from PIL import Image

    from styleforge.runtime.contract import Artifact
    from styleforge.runtime.lut_stylizer import LutStylizer
    from styleforge.runtime.manifest import load_manifest
    from styleforge.runtime.metrics import psnr

    import_ms = (time.perf_counter() - start) * 1000.0
    rss_after_import = current_rss_mb()
    bundle = Path(spec["bundle"])
    artifact = Artifact.from_dict(spec["artifact"]["key"], spec["artifact"])
    manifest = load_manifest(bundle)
    start = time.perf_counter()
    stylizer = LutStylizer.from_manifest(bundle, manifest, artifact.key, threads=spec.get("threads"))
    stylizer.renderer.packed_tables()  # the 256^3 tables are part of loading, not of the first photo
    load_ms = (time.perf_counter() - start) * 1000.0
    rss_after_load = current_rss_mb()

    h, w = (int(v) for v in (spec.get("size") or (1080, 1920)))
    runs = int(spec.get("runs") or 5)
    rgb = np.asarray(bench_photo(spec, h, w), dtype=np.uint8)
    reset = reset_peak_rss()
    start = time.perf_counter()
    styled = stylizer.stylize_rgb(rgb)
    first_ms = (time.perf_counter() - start) * 1000.0
    for _ in range(int(spec.get("warmup", 1))):
        stylizer.stylize_rgb(rgb)
    times, cpu = [], []
    for _ in range(max(1, runs)):
        c0, t0 = time.process_time(), time.perf_counter()  # process CPU, every thread, ns resolution
        stylizer.stylize_rgb(rgb)
        t1, c1 = time.perf_counter(), time.process_time()
        times.append((t1 - t0) * 1000.0)
        cpu.append((c1 - c0) * 1000.0)  # os.times() ticks in 10 ms: a small photo read 0
    peak = peak_rss_mb()

    image = Image.fromarray(rgb)
    pillow_ms = pillow_psnr = None
    if pillow_can_run(stylizer.recipe):  # detail, smooth_skin and grain have no Pillow filter
        pillow_times = []
        for _ in range(max(1, min(runs, 3))):
            t0 = time.perf_counter()
            pillow_out = pillow_recipe(image, stylizer.recipe)
            pillow_times.append((time.perf_counter() - t0) * 1000.0)
        pillow_ms = float(np.median(pillow_times))
        pillow_psnr = psnr(np.asarray(pillow_out), styled)
        pillow_out = None
    image = None
    array_ms, pil_ms = interleaved_ms(lambda: stylizer.stylize(rgb), lambda: stylizer.stylize(Image.fromarray(rgb)),
                                       max(1, min(runs, 5)))
    fidelity = reference_fidelity(spec, stylizer)
    info = stylizer.info()
    stylizer.close()
    record = cell_record((h, w), (import_ms, load_ms, first_ms), times,
                         (rss_before, rss_after_import, rss_after_load, peak), fidelity)
    p50 = record["latency_ms"]["p50"]
    return {
        **record,
        "recipe": {
            "steps": [step.op for step in stylizer.recipe.steps],
            "cpu_ms": float(np.median(cpu)),
            "peak_rss_mb": peak,
            "peak_reset": reset,
            "pillow_ms": pillow_ms,
            "ratio_vs_pillow": p50 / pillow_ms if pillow_ms else None,
            "pillow_psnr": pillow_psnr,
            "array_ms": array_ms,
            "pil_ms": pil_ms,
            "pil_vs_array": pil_ms / array_ms if array_ms else None,
        },
        "backend_info": info,
        "input": {"shape": [h, w, 3], "dtype": "uint8", "layout": "HWC"},
    }


# ------------------------------------------------------------------------------ the Pillow baseline


def pillow_can_run(recipe) -> bool:
    """Whether :func:`pillow_recipe` has a filter for every step of ``recipe``."""
    return all(step.op == "colour_lut" or step.op in _PILLOW_OPS for step in recipe.steps)


def pillow_recipe(image, recipe):
    """The recipe's operators done at full resolution with Pillow's own filters (8-bit RGB ``image``
    -> the same): the baseline a photographer's script would write. Colour: ``Color3DLUT``;
    clarity / sharpen: Rec.601 ``L``, ``GaussianBlur`` of it, the change computed with ``ImageMath``
    in float and added to each band; bloom: a ``point`` gate on ``L``, ``ImageChops.multiply``,
    ``GaussianBlur``, ``ImageChops.screen``; vignette: ``Image.radial_gradient`` resized to the
    frame, a ``point`` curve and ``ImageChops.multiply``; fade: ``point``. Other operators (detail,
    smooth_skin, grain) raise ValueError: Pillow has no filter for them."""
    from styleforge.runtime import lut as rlut

    out = image.convert("RGB")
    short = min(out.size)
    for step in recipe.steps:
        if step.op == "colour_lut":
            out = out.filter(rlut.pillow_filter(rlut.Lut3D(recipe.tables[step.lut])))
        elif step.op in _PILLOW_OPS:
            out = _PILLOW_OPS[step.op](out, short, **step.params)
        else:
            raise ValueError(f"Pillow has no filter for the look operator {step.op!r}")
    return out


def _pillow_local_contrast(out, short: float, amount: float, radius: float, midtones: bool):
    from PIL import Image, ImageFilter, ImageMath

    lum = out.convert("L")
    base = lum.filter(ImageFilter.GaussianBlur(radius * short))
    if midtones:  # clarity: amount * 4 B (1 - B) * (L - B), in 8-bit levels
        delta = ImageMath.lambda_eval(lambda a: a["float"](a["B"]) * (255.0 - a["float"](a["B"]))
                                      * (4.0 * amount / 65025.0) * (a["float"](a["L"]) - a["float"](a["B"])), L=lum, B=base)
    else:  # sharpen: amount * (L - B)
        delta = ImageMath.lambda_eval(lambda a: (a["float"](a["L"]) - a["float"](a["B"])) * amount, L=lum, B=base)
    bands = [ImageMath.lambda_eval(lambda a: a["convert"](a["float"](a["c"]) + a["d"], "L"), c=band, d=delta)
             for band in out.split()]
    return Image.merge("RGB", bands)


def _pillow_bloom(out, short: float, strength: float, threshold: float, radius: float, r: float = 1.0,
                  g: float = 1.0, b: float = 1.0):
    from PIL import Image, ImageChops, ImageFilter

    from styleforge.runtime.look_ops import BLOOM_KNEE

    gate = out.convert("L").point(lambda v: 255.0 / (1.0 + np.exp(-(v / 255.0 - threshold) / BLOOM_KNEE)))
    glow = ImageChops.multiply(out, Image.merge("RGB", [gate] * 3)).filter(ImageFilter.GaussianBlur(radius * short))
    glow = Image.merge("RGB", [band.point(lambda v, k=abs(strength) * tint: v * k)  # the tint, a gain per channel
                               for band, tint in zip(glow.split(), (r, g, b))])
    return ImageChops.screen(out, glow) if strength >= 0 else ImageChops.subtract(out, ImageChops.multiply(out, glow))


def _pillow_vignette(out, short: float, amount: float, midpoint: float, roundness: float, feather: float,
                     center_x: float, center_y: float):
    """Centred, roundness 0: ``radial_gradient`` is 0 in the centre, 181 at the edges' middles and
    255 in the corners, so stretched to the frame it is the vignette's distance times 255."""
    from PIL import Image, ImageChops

    edge = 0.02 + 0.98 * feather

    def curve(v: float) -> float:
        s = min(max((v / 255.0 - midpoint) / edge + 0.5, 0.0), 1.0)
        return 255.0 * (1.0 + min(amount, 0.0) * s * s * (3.0 - 2.0 * s))

    mask = Image.radial_gradient("L").resize(out.size, Image.Resampling.BILINEAR).point(curve)
    return ImageChops.multiply(out, Image.merge("RGB", [mask] * 3))


def _pillow_fade(out, short: float, amount: float, r: float, g: float, b: float):
    from PIL import Image

    lifts = (amount * r, amount * g, amount * b)
    return Image.merge("RGB", [band.point(lambda v, k=k: v + k * (255.0 - v)) for band, k in zip(out.split(), lifts)])


_PILLOW_OPS = {
    "clarity": lambda out, short, amount, radius: _pillow_local_contrast(out, short, amount, radius, True),
    "sharpen": lambda out, short, amount, radius: _pillow_local_contrast(out, short, amount, radius, False),
    "bloom": _pillow_bloom, "vignette": _pillow_vignette, "fade": _pillow_fade,
}


# ------------------------------------------------------------------------------ report rows and the example


def format_recipe_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    """Rows for the recipe section of the report (header: :data:`RECIPE_HEADERS`)."""
    rows = []
    for c in cells:
        r = c.get("recipe") if c.get("status") == "ok" else None
        if not r:
            continue
        rows.append([
            str(c.get("model")), f"{c['size'][0]}x{c['size'][1]}", str(c.get("threads") or "default"),
            " + ".join(r["steps"]), f"{c['latency_ms']['p50']:.0f}", f"{r['cpu_ms']:.0f}",
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "n/a",
            *((f"{r['pillow_ms']:.0f}", f"{r['ratio_vs_pillow']:.2f}x", f"{r['pillow_psnr']:.1f}")
              if r.get("pillow_ms") else ("n/a (no Pillow filter)", "n/a", "n/a")),
            f"{r['pil_vs_array']:.2f}x" if r.get("pil_vs_array") is not None else "n/a",
            f"{c.get('load_ms', 0):.0f}",
        ])
    return rows


RECIPE_HEADERS = ["model", "size", "threads", "recipe", "p50 ms", "CPU ms / run", "peak RSS MB",
                  "Pillow filters ms", "runtime / Pillow", "Pillow vs runtime dB", "PIL in/out / array",
                  "load ms (+256^3 tables)"]


def write_example_bundle(out_dir: str | os.PathLike, heldout: Optional[list[Path]] = None) -> Path:
    """Export :data:`EXAMPLE_STEPS` (a warm 33^3 colour table) as a gated recipe bundle in
    ``out_dir``: the bundle the figures in docs/results.md were measured on. Needs the export
    extra (PyTorch, for the gate)."""
    from styleforge.export.recipe_export import export_recipe_bundle
    from styleforge.runtime.lut import identity_table
    from styleforge.train.models.recipe import RecipeGenerator

    grid = identity_table(33)
    warm = np.clip(grid ** np.float32([0.9, 0.95, 1.1]) * np.float32([1.06, 1.0, 0.92]) + 0.02, 0.0, 1.0)
    steps = [(name, {"table": warm} if name == "colour_lut" else params) for name, params in EXAMPLE_STEPS]
    model = RecipeGenerator.from_steps(steps, lut_size=33)
    export_recipe_bundle(model, out_dir, heldout_images=heldout, style="example-recipe", progress=False)
    return Path(out_dir)
