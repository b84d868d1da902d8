"""``styleforge preview``: one self-contained web page to look at a bundle's look on photos.

Per photo the page shows a before/after split, a strength slider (0-100 %) and the output of
each of the bundle's artifacts side by side (LUT, int8, fp16, fp32, ...) with its PSNR against
a reference and its latency from the bundle's bench figures. Everything is inside the one HTML
file (images as data URIs, the script and style inline): no server, no network, no CDN; it
works from ``file://`` and from any static host.

For a LUT look the page applies ``look.cube`` itself with WebGL2 (the table as a float 3D
texture, trilinear interpolation written out in the shader in float32, as the runtime does), so
strength changes are live at the embedded photo's full resolution. For a look recipe
(``recipe.json``) it runs the recipe pass by pass on float32 textures (``preview_recipe.js``: the
runtime's operators and its pyramid blur, constants written from the Python modules), with one
slider per step for its main parameter (:data:`~styleforge.runtime.look_ops.STRENGTH`) and a
"save recipe" button that downloads the edited ``recipe.json`` (``styleforge export --recipe``
makes a bundle of it). Grain's noise comes from numpy's generator, which a browser does not have:
the page embeds each grain step's normalised field, computed by the runtime for the embedded
photo, in 8 bits (:data:`GRAIN_SCALE`), so only its amount is live. Model artifacts show their
outputs rendered here by :class:`~styleforge.runtime.model_stylizer.ModelStylizer`; their strength is the
same linear blend with the original (``out = in + s * (styled - in)``), done by the browser.

The "before" photo is embedded as PNG (lossless) so the browser's LUT sees exactly the pixels
the runtime was given; pre-rendered outputs are JPEG unless ``lossless``. Photos are made
upright (EXIF) and RGB; their ICC profile is not embedded (pixels are shown as sRGB, the LUT
path's convention). numpy + Pillow and the bundle's interpreters only; no torch.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
from PIL import Image

from styleforge.atomic import write_text
from styleforge.errors import StyleforgeError
from styleforge.runtime import look_blur, look_ops
from styleforge.runtime import lut as rlut
from styleforge.runtime.backends import BackendError
from styleforge.runtime.contract import BundleError, Manifest
from styleforge.runtime.imageio import ImageError, list_images, open_image
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.metrics import psnr
from styleforge.runtime.recipe import Recipe
from styleforge.runtime.stylizer import ARTIFACT_ALIASES, open_bundle

PAGE_NAME = "index.html"
DEFAULT_MAX_EDGE = 2048  # long edge of the embedded photos (the page holds every image, base64)
# What the page shows, in this order, and how it names them; other runnable keys follow.
SHOWN_ORDER = ("recipe", "lut_cube", "lut_adaptive", "tflite_int8", "tflite_dynamic_int8", "tflite_fp16",
               "tflite_fp32", "onnx", "coreml_fp16", "coreml_fp32", "torchscript")
LABELS = {
    "recipe": "look recipe (recipe.json)",
    "lut_cube": "LUT (look.cube)",
    "lut_adaptive": "LUT per photo",
    "tflite_int8": "int8 (TFLite)",
    "tflite_dynamic_int8": "dynamic int8 (TFLite)",
    "tflite_fp16": "fp16 (TFLite)",
    "tflite_fp32": "fp32 (TFLite)",
    "onnx": "fp32 (ONNX)",
    "coreml_fp16": "fp16 (Core ML)",
    "coreml_fp32": "fp32 (Core ML)",
    "torchscript": "fp32 (TorchScript)",
}
COLOUR_PART_LABEL = "its colour part alone (look.cube)"  # a recipe bundle's lut_cube
RUNNABLE_FORMATS = ("recipe", "cube", "adaptive-lut", "tflite", "onnx", "coreml", "torchscript")
# The reference PSNR is measured against when no reference images are given: full precision.
REFERENCE_ORDER = ("torchscript", "onnx", "tflite_fp32", "coreml_fp32")
# The page's 8-bit grain field: byte = 128 + 24 * field (field: zero mean, unit deviation; -5.3..+5.3
# kept). Rounding moves it by at most 1/48 of a deviation: at grain's largest amount (0.2), 0.004.
GRAIN_SCALE, GRAIN_OFFSET = 24.0, 128.0
_ASSETS = Path(__file__).resolve().parent


class PreviewError(StyleforgeError, ValueError):
    """The preview page cannot be made; the message says why."""


@dataclass
class Output:
    """One artifact's (or the reference images') output for one photo."""

    key: str
    label: str
    pixels: np.ndarray  # uint8 [H, W, 3]
    psnr: Optional[float] = None  # dB against the reference; None when there is none (or it is it)
    is_reference: bool = False
    origin: str = "by the styleforge runtime"  # where the pixels came from, as the page says it


@dataclass
class PhotoPreview:
    name: str
    before: np.ndarray  # uint8 [H, W, 3], as embedded (upright, at most max_edge)
    original_size: tuple[int, int]  # (width, height) of the file
    outputs: list[Output] = field(default_factory=list)
    grain: dict[str, dict[str, Any]] = field(default_factory=dict)  # the recipe's grain fields (grain_fields)


# ------------------------------------------------------------------------------ choosing


def shown_keys(manifest: Manifest, artifacts: Optional[Sequence[str]] = None) -> list[str]:
    """The artifact keys to show: ``artifacts`` (manifest keys or aliases) or every runnable one
    (the LUT's mobile graphs ``lut_onnx``... are left out: they compute the same ``look.cube``; so
    are a recipe's whole-photo graphs, which run at one size only)."""

    if artifacts:
        keys = [ARTIFACT_ALIASES.get(a, a) for a in artifacts]
        missing = [k for k in keys if k not in manifest.artifacts]
        if missing:
            raise PreviewError(f"bundle has no {', '.join(missing)} artifact; it has {', '.join(manifest.artifacts)}")
        fixed = [k for k in keys if manifest.artifacts[k].extra.get("whole_photo")]
        if fixed:
            raise PreviewError(f"{', '.join(fixed)}: a whole-photo graph runs only on photos of its own size, and the "
                               "page shows photos at theirs; preview the recipe (the default) instead")
        return list(dict.fromkeys(keys))
    # left out: the LUT's mobile graphs (lut_onnx...: they compute the same look.cube) and a recipe's
    # whole-photo graphs (one stated size; recipe.json is the same look at any size)
    runnable = [k for k, a in manifest.artifacts.items() if a.format in RUNNABLE_FORMATS
                and (not k.startswith("lut_") or k in ("lut_cube", "lut_adaptive"))
                and not a.extra.get("whole_photo")]
    return sorted(runnable, key=lambda k: (SHOWN_ORDER.index(k) if k in SHOWN_ORDER else len(SHOWN_ORDER), k))


def load_stylizers(bundle: Path, keys: Sequence[str], strict: bool, threads: Optional[int] = None):
    """``({key: Stylizer}, {key: why not})``; ``strict``: a key that does not load is an error."""

    loaded, skipped = {}, {}
    for key in keys:
        try:
            loaded[key] = open_bundle(bundle, artifact=key, threads=threads,
                                      adaptive=True if key == "lut_adaptive" else None)
        except (BundleError, BackendError, ImportError) as err:
            if strict:
                raise PreviewError(f"artifact {key!r}: {err}") from None
            skipped[key] = " ".join(str(err).split())
    if not loaded:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise PreviewError(f"no artifact of {bundle} can run here ({why or 'it has none'})")
    return loaded, skipped


def bench_latency(bench: Optional[dict[str, Any]], key: str) -> Optional[dict[str, Any]]:
    """The p50 latency of artifact ``key`` in a ``styleforge bench --json`` result (its fewest
    threads), as ``{"ms", "backend", "threads", "size"}``; ``None`` when it was not measured."""
    if not bench:
        return None
    cells = [c for c in bench.get("cells", []) if c.get("artifact") == key and c.get("status") == "ok"
             and (c.get("latency_ms") or {}).get("p50") is not None]
    if not cells:
        return None
    cell = min(cells, key=lambda c: (c.get("threads") or 0, c["latency_ms"]["p50"]))
    return {"ms": round(float(cell["latency_ms"]["p50"]), 2), "backend": cell.get("backend"),
            "threads": cell.get("threads"), "size": cell.get("size")}


# ------------------------------------------------------------------------------ pixels


def photo_paths(inputs: Sequence[Union[str, os.PathLike]]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        paths += list_images(path) if path.is_dir() else [path]
    if not paths:
        raise PreviewError(f"no photos found in {', '.join(map(str, inputs))}")
    return paths


def load_photo(path: Path, max_edge: Optional[int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Upright uint8 RGB ``[H, W, 3]``, its long edge cut to ``max_edge`` (Lanczos), and the file's size."""
    loaded = open_image(path)
    img = loaded.rgb
    size = img.size
    if max_edge and max(size) > max_edge:
        scale = max_edge / max(size)
        img = img.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8), size


def reference_image(folder: Path, photo: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The image in ``folder`` with ``photo``'s stem, as uint8 RGB of ``shape`` (resized when its
    aspect matches); PreviewError when there is none or its shape does not fit."""
    matches = [p for p in sorted(folder.iterdir()) if p.stem == photo.stem and p.is_file()]
    if not matches:
        raise PreviewError(f"no reference image for {photo.name} in {folder} (expected {photo.stem}.*)")
    img = open_image(matches[0]).rgb
    height, width = shape[:2]
    if img.size != (width, height):
        if abs(img.size[0] / img.size[1] - width / height) > 0.01:
            raise PreviewError(f"{matches[0]} is {img.size[0]}x{img.size[1]}; {photo.name} is {width}x{height}")
        img = img.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def data_uri(pixels: np.ndarray, fmt: str = "png", quality: int = 92) -> str:
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    if fmt == "png":
        img.save(buf, "PNG", optimize=False, compress_level=9)
    else:
        img.save(buf, "JPEG", quality=quality, subsampling=0)
    kind = "png" if fmt == "png" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def decode_data_uri(uri: str) -> np.ndarray:
    """The uint8 RGB pixels of a ``data:image/...;base64,`` URI (tests read the page back with it)."""
    payload = uri.split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def grain_fields(recipe: Recipe, height: int, width: int) -> dict[str, dict[str, Any]]:
    """Each grain step's noise field at ``height x width``, as the page embeds it: ``{"step index":
    {"width", "height", "field_u8"}}``, base64 of uint8 ``[H, W]`` rows (top first),
    ``GRAIN_OFFSET + GRAIN_SCALE * field``. The field is the runtime's own: ``look_ops.grain`` of a
    black photo at amount 1 with no luma dependence adds exactly its normalised field."""
    fields = {}
    for index, step in enumerate(recipe.steps):
        if step.op != "grain":
            continue
        black = np.zeros((height, width, 3), np.float32)
        noise = look_ops.grain(black, 1.0, step.params["size"], 0.0, int(step.seed or 0))[..., 0]
        quantised = np.clip(np.rint(noise * GRAIN_SCALE + GRAIN_OFFSET), 0, 255).astype(np.uint8)
        fields[str(index)] = {"width": width, "height": height,
                              "field_u8": base64.b64encode(quantised.tobytes()).decode("ascii")}
    return fields


def recipe_block(recipe: Recipe) -> dict[str, Any]:
    """What the page's recipe renderer reads: the recipe's JSON, its tables (float32 rows, red
    fastest, base64), each operator's strength key and range, and the runtime's constants."""
    tables = {}
    for name, table in recipe.tables.items():
        rows = np.ascontiguousarray(rlut.Lut3D(np.asarray(table, np.float32)).cube_order(), dtype="<f4")
        tables[name] = {"size": int(table.shape[0]), "rgb_f32": base64.b64encode(rows.tobytes()).decode("ascii")}
    constants = {
        "luma": list(look_blur.LUMA), "truncate": look_blur.TRUNCATE, "level_sigma": look_blur.LEVEL_SIGMA,
        "level_variance": look_blur.LEVEL_VARIANCE, "min_sigma_px": look_blur.MIN_SIGMA_PX,
        "match_variance_below": look_blur.MATCH_VARIANCE_BELOW, "min_level_side": look_blur.MIN_LEVEL_SIDE,
        "detail_bands": list(look_ops.DETAIL_BANDS), "bloom_knee": look_ops.BLOOM_KNEE,
        "grain_scale": GRAIN_SCALE, "grain_offset": GRAIN_OFFSET,
    }
    return {"recipe": recipe.to_json(), "tables": tables, "constants": constants,
            "strength": {op: key for op, key in look_ops.STRENGTH.items() if key is not None}}


def script_json(text: str) -> str:
    """JSON text made safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` as ``\\u`` escapes
    (a .cube title or file name is untrusted text; ``</script>`` or ``<!--`` in it must not end or
    bend the element). ``JSON.parse`` reads the escapes back as the characters."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def slider_step(low: float, high: float) -> float:
    """A slider's step for a parameter in [low, high]: a power of ten, 100 to 1000 steps across."""
    return 10.0 ** math.floor(math.log10((high - low) / 100.0))


# ------------------------------------------------------------------------------ the page


def build_preview(
    bundle: Union[str, os.PathLike],
    photos: Sequence[Union[str, os.PathLike]],
    out_dir: Union[str, os.PathLike],
    *,
    artifacts: Optional[Sequence[str]] = None,
    max_edge: Optional[int] = DEFAULT_MAX_EDGE,
    reference_images: Optional[Union[str, os.PathLike]] = None,
    reference_label: str = "reference",
    bench: Optional[Union[str, os.PathLike]] = None,
    lossless: bool = False,
    threads: Optional[int] = None,
    title: Optional[str] = None,
) -> Path:
    """Write ``out_dir/index.html`` for ``bundle`` on ``photos`` (files and/or folders); returns its path.

    ``artifacts``: keys or aliases to show (default: every one that runs here; those that do not
    are named on the page). ``reference_images``: a folder of images named like the photos
    (teacher outputs, the look's ground truth) that PSNR is measured against, shown as
    ``reference_label``; without it the reference is the bundle's fp32 artifact when it has one.
    ``bench``: a ``styleforge bench --json`` file (default ``BUNDLE/bench.json`` when present).
    """

    bundle = Path(bundle)
    manifest = load_manifest(bundle)
    keys = shown_keys(manifest, artifacts)
    stylizers, skipped = load_stylizers(bundle, keys, strict=bool(artifacts), threads=threads)
    bench_path = Path(bench) if bench else bundle / "bench.json"
    bench_data = None
    if bench or bench_path.is_file():
        try:
            bench_data = json.loads(bench_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise PreviewError(f"{bench_path}: cannot read bench figures ({err})") from None
    ref_key = None if reference_images else next((k for k in REFERENCE_ORDER if k in stylizers), None)
    ref_dir = Path(reference_images) if reference_images else None
    if ref_dir is not None and not ref_dir.is_dir():
        raise PreviewError(f"--reference {ref_dir} is not a folder")
    previews = []
    try:
        for path in photo_paths(photos):
            try:
                before, size = load_photo(path, max_edge)
            except (ImageError, OSError) as err:
                raise PreviewError(str(err)) from None
            photo = PhotoPreview(path.stem, before, size)
            if "recipe" in stylizers:
                photo.grain = grain_fields(stylizers["recipe"].recipe, before.shape[0], before.shape[1])
            for key, stylizer in stylizers.items():
                label = COLOUR_PART_LABEL if key == "lut_cube" and "recipe" in stylizers else LABELS.get(key, key)
                photo.outputs.append(Output(key, label, stylizer.stylize_rgb(before),
                                            is_reference=key == ref_key))
            if ref_dir is not None:
                photo.outputs.append(Output("reference", reference_label, reference_image(ref_dir, path, before.shape),
                                            is_reference=True))
            reference = next((o.pixels for o in photo.outputs if o.is_reference), None)
            for out in photo.outputs:
                if reference is not None and not out.is_reference:
                    out.psnr = round(psnr(reference.astype(np.float32), out.pixels.astype(np.float32), 255.0), 2)
            previews.append(photo)
        lut = stylizers["lut_cube"].lut if "lut_cube" in stylizers else None
        recipe = stylizers["recipe"].recipe if "recipe" in stylizers else None
    finally:
        for stylizer in stylizers.values():
            stylizer.close()
    facts = {key: {"latency": bench_latency(bench_data, key), "fidelity": manifest.artifacts[key].fidelity}
             for key in stylizers}
    ref_label = reference_label if ref_dir is not None else (LABELS.get(ref_key, ref_key) if ref_key else None)
    page = render_page(manifest, previews, facts, skipped, lut, ref_label, lossless,
                       title or f"styleforge preview: {manifest.name or bundle.name}", max_edge, recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / PAGE_NAME, page)


def _caption(out: Output, facts: dict[str, Any], ref_label: Optional[str]) -> str:
    lines = [f"<strong>{html.escape(out.label)}</strong>"]
    if out.is_reference:
        lines.append("the reference")
    elif out.psnr is not None:
        lines.append(f"<span class=\"psnr\">{out.psnr:.2f} dB</span> PSNR vs {html.escape(ref_label or '')}")
    else:
        lines.append("PSNR: no reference")
    latency = facts.get("latency")
    if latency:
        size = "×".join(map(str, latency["size"] or [])) or "?"
        threads = latency["threads"]
        lines.append(f"<span class=\"latency\">{latency['ms']:.1f} ms</span> p50 · {html.escape(str(latency['backend']))}, "
                     f"{threads} thread{'s' if threads != 1 else ''}, {size}")
    elif out.key != "reference":
        lines.append("latency: not benchmarked")
    gate = facts.get("fidelity") or {}
    if isinstance(gate.get("psnr"), (int, float)) and gate.get("verified") is True:
        lines.append(f"export gate {gate['psnr']:.2f} dB (bound {gate.get('bound_psnr', '-')})")
    return "<br>".join(lines)


def _recipe_controls(index: int, recipe: Recipe) -> str:
    """Photo ``index``'s sliders for the recipe: one per step, its main parameter (every photo has
    them; the page keeps them in step), and the save / reset buttons."""
    rows = []
    for i, step in enumerate(recipe.steps):
        key = look_ops.STRENGTH.get(step.op)
        if key is None:  # colour_lut: its table is data, not a parameter
            rows.append(f'<p class="step-fixed">{i + 1}. {html.escape(step.describe())}</p>')
            continue
        low, high, identity = look_ops.PARAMS[step.op][key]
        step_size = slider_step(low, high)
        decimals = max(0, -math.floor(math.log10(step_size)))
        value = float(step.params[key])
        rows.append(
            f'<label class="slider step" title="{html.escape(step.describe())}"><span>{i + 1}. {html.escape(step.op)} '
            f'{html.escape(key)} <small>(identity {identity:g})</small></span>'
            f'<input type="range" class="step-strength" id="p{index}-step-{i}" data-step="{i}" data-decimals="{decimals}" '
            f'min="{low!r}" max="{high!r}" step="{step_size!r}" value="{value!r}" aria-valuetext="{value:.{decimals}f}">'
            f'<output>{value:.{decimals}f}</output></label>')
    return (f'<fieldset class="recipe"><legend>Recipe: each step\'s main parameter</legend>{"".join(rows)}'
            '<p class="recipe-buttons"><button type="button" class="save-recipe">Save recipe</button> '
            '<button type="button" class="reset-recipe">Reset</button></p></fieldset>')


def _photo_section(index: int, photo: PhotoPreview, facts: dict[str, dict[str, Any]], live: bool,
                   ref_label: Optional[str], lossless: bool, recipe: Optional[Recipe] = None) -> str:
    h, w = photo.before.shape[:2]
    name = html.escape(photo.name)
    fmt = "png" if lossless else "jpeg"
    radios, figures = [], []
    for j, out in enumerate(photo.outputs):
        checked = " checked" if j == 0 else ""
        radio_id = f"p{index}-show-{j}"
        program = {"lut_cube": "lut" if live else None, "recipe": "recipe" if recipe is not None else None}.get(out.key)
        is_live = program is not None
        radios.append(f'<label for="{radio_id}"><input type="radio" id="{radio_id}" name="p{index}-show" value="{j}"'
                      f' data-live="{int(is_live)}" data-program="{program or ""}" data-origin="{"the reference images" if out.key == "reference" else html.escape(out.origin)}"{checked}> {html.escape(out.label)}'
                      f'{", live (WebGL2)" if is_live else ""}</label>')
        figures.append(
            f'<figure class="output" data-key="{html.escape(out.key)}"><img src="{data_uri(out.pixels, fmt)}" '
            f'width="{w}" height="{h}" alt="{name} styled by {html.escape(out.label)}" loading="lazy">'
            f'<figcaption>{_caption(out, facts.get(out.key, {}), ref_label)}</figcaption></figure>')
    resized = f", shown at {w}×{h}" if (w, h) != photo.original_size else ""
    controls = _recipe_controls(index, recipe) if recipe is not None else ""
    grain = (f'<script type="application/json" class="grain-fields">{script_json(json.dumps(photo.grain))}</script>'
             if photo.grain else "")
    styled_by = "the look" if recipe is not None else "the LUT"
    return f"""
<section class="photo" id="photo-{index}" data-index="{index}" aria-labelledby="photo-{index}-title">
  <h2 id="photo-{index}-title">{name} <small>{photo.original_size[0]}×{photo.original_size[1]}{resized}</small></h2>
  <div class="viewer">
    <div class="stage" style="aspect-ratio: {w} / {h}; width: min(100%, {w}px, calc(72vh * {w / h:.4f}))">
      <img class="before" src="{data_uri(photo.before, 'png')}" width="{w}" height="{h}" alt="{name}: the original photo (before)">
      <div class="after">
        <img class="after-image" width="{w}" height="{h}" alt="{name} styled (after)">
        <canvas class="live" width="{w}" height="{h}" role="img" aria-label="{name} styled live by {styled_by} (after)" hidden></canvas>
      </div>
      <div class="divider" aria-hidden="true"></div>
      <span class="tag tag-before" aria-hidden="true">before</span><span class="tag tag-after" aria-hidden="true">after</span>
    </div>
    <div class="controls">
      <fieldset class="show"><legend>After shows</legend>{''.join(radios)}</fieldset>
      <label class="slider">Before / after split
        <input type="range" class="split" min="0" max="100" step="1" value="50" aria-valuetext="50 % before">
        <output class="split-value">50 %</output></label>
      <label class="slider">Strength
        <input type="range" class="strength" min="0" max="100" step="1" value="100" aria-valuetext="100 %">
        <output class="strength-value">100 %</output></label>
      {controls}
      <p class="status" role="status"></p>
    </div>
  </div>
  <div class="outputs">{''.join(figures)}</div>{grain}
</section>"""


def render_page(manifest: Manifest, photos: Sequence[PhotoPreview], facts: dict[str, dict[str, Any]],
                skipped: dict[str, str], lut, ref_label: Optional[str], lossless: bool, title: str,
                max_edge: Optional[int], recipe: Optional[Recipe] = None) -> str:
    """The whole HTML text of a bundle's page (``recipe``: the bundle's look recipe, run live)."""
    live = lut is not None
    notes = []
    if ref_label:
        notes.append(f"PSNR is measured against <strong>{html.escape(ref_label)}</strong> on the embedded pixels.")
    else:
        notes.append("No reference (no fp32 artifact and no reference images): PSNR is not shown.")
    if recipe is not None:
        grain = (" Grain's noise is the runtime's own field for each photo, embedded in 8 bits; only its amount is live."
                 if any(step.op == "grain" for step in recipe.steps) else "")
        notes.append("The look recipe is applied live with WebGL2, pass by pass in float32 as the runtime runs it "
                     "(its pyramid blurs included). Each step's slider sets its main parameter on every photo; "
                     "<em>Save recipe</em> downloads the edited <code>recipe.json</code>, and <code>styleforge export "
                     "--recipe recipe.json --bundle THIS_BUNDLE --out NEW_BUNDLE</code> makes a bundle of it." + grain)
    if live and recipe is not None:
        notes.append("Its colour part alone, <code>look.cube</code>, is applied live too, in one pass (trilinear, float32).")
    elif live:
        others = any(o.key != "lut_cube" for p in photos for o in p.outputs)
        notes.append("The LUT is applied live in your browser with WebGL2 (trilinear, float32)"
                     + ("; the other outputs were rendered by the styleforge runtime when this page was made."
                        if others else "; the thumbnails below are the runtime's own output."))
    for key, why in skipped.items():
        notes.append(f"Not shown: <code>{html.escape(key)}</code> ({html.escape(why)}).")
    if max_edge:
        notes.append(f"Photos are embedded with their long edge at most {max_edge} px.")
    artifacts = ", ".join(f"<code>{html.escape(k)}</code>" for k in manifest.artifacts)
    header = (f"<p>Bundle <strong>{html.escape(manifest.name)}</strong>, look <strong>{html.escape(manifest.style or '?')}"
              f"</strong>, made {html.escape(manifest.created or '?')} by styleforge {html.escape(manifest.styleforge_version or '?')}. "
              f"Artifacts: {artifacts}.</p>")
    return _assemble(title, header, notes, photos, facts, lut, ref_label, lossless, recipe)


def _assemble(title: str, header: str, notes: Sequence[str], photos: Sequence[PhotoPreview],
              facts: dict[str, dict[str, Any]], lut, ref_label: Optional[str], lossless: bool,
              recipe: Optional[Recipe] = None) -> str:
    """The page from its header HTML, note lines and photo sections (template, style and script
    from this package's preview_page.* and preview_recipe.js files)."""
    template = (_ASSETS / "preview_page.html").read_text()
    css = (_ASSETS / "preview_page.css").read_text()
    script = (_ASSETS / "preview_recipe.js").read_text() + "\n" + (_ASSETS / "preview_page.js").read_text()
    live = lut is not None
    lut_json = "null"
    if live:
        rows = np.ascontiguousarray(lut.cube_order(), dtype="<f4")  # red fastest: x = r, y = g, z = b
        lut_json = json.dumps({"size": lut.size, "title": lut.title,
                               "rgb_f32": base64.b64encode(rows.tobytes()).decode("ascii")})
    header = header + "".join(f"<p class=\"note\">{n}</p>" for n in notes)
    recipe_json = json.dumps(recipe_block(recipe)) if recipe is not None else "null"
    body = header + "".join(_photo_section(i, p, facts, live, ref_label, lossless, recipe) for i, p in enumerate(photos))
    for marker, text in (("@@TITLE@@", html.escape(title)), ("@@STYLE@@", css), ("@@BODY@@", body),
                         ("@@LUT@@", script_json(lut_json)), ("@@RECIPE@@", script_json(recipe_json)),
                         ("@@SCRIPT@@", script)):
        template = template.replace(marker, text)
    return template


def comparison_page(photos: Sequence[PhotoPreview], out_dir: Union[str, os.PathLike], title: str,
                    intro: str, ref_label: Optional[str] = None) -> Path:
    """Write ``out_dir/index.html`` comparing pre-rendered outputs (``photos[i].outputs``: any
    methods, the reference marked ``is_reference``) with the same before/after split, strength
    and side-by-side view as :func:`build_preview`; PSNR against the reference is filled in where
    missing. ``intro``: one paragraph of plain text above the photos. Returns the page's path."""

    for photo in photos:
        reference = next((o.pixels for o in photo.outputs if o.is_reference), None)
        for out in photo.outputs:
            if reference is not None and not out.is_reference and out.psnr is None:
                out.psnr = round(psnr(reference.astype(np.float32), out.pixels.astype(np.float32), 255.0), 2)
    notes = [f"PSNR is measured against <strong>{html.escape(ref_label)}</strong> on the embedded pixels."
             if ref_label else "No reference: PSNR is not shown.",
             "Every output was rendered when this page was made; strength blends it with the photo."]
    page = _assemble(title, f"<p>{html.escape(intro)}</p>", notes, photos, {}, None, ref_label, False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / PAGE_NAME, page)
