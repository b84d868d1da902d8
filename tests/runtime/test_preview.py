"""``styleforge preview``: the page is one self-contained file with what the issue asks for.

The browser half (the page's WebGL LUT against the runtime's pixels) is in
``test_preview_browser.py``; here the page is read as text, with real bundles and album photos.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from styleforge.runtime import open_bundle
from styleforge.runtime import preview as pv

ALBUM = Path(__file__).resolve().parents[2] / "data" / "album"
PHOTOS = [ALBUM / "pool.jpg", ALBUM / "wayne.jpg"]  # landscape and portrait


@pytest.fixture(scope="module")
def look_bundle(tmp_path_factory) -> Path:
    """A LUT-only bundle of the built-in ``teal-orange`` look (channels mixed: a split tone)."""
    from styleforge.export.lut_export import export_lut_bundle, look_colour_fn

    out = tmp_path_factory.mktemp("preview") / "teal-orange"
    export_lut_bundle(look_colour_fn("teal-orange"), out, size=33, style="teal-orange", progress=False)
    return out


def embedded(page: str) -> list[str]:
    """Every src/href value of the page."""
    return re.findall(r'\b(?:src|href)="([^"]*)"', page)


def test_lut_page_is_self_contained_and_accessible(look_bundle, tmp_path):
    path = pv.build_preview(look_bundle, PHOTOS, tmp_path / "page")
    page = path.read_text()
    assert path.name == "index.html" and sorted(p.name for p in path.parent.iterdir()) == ["index.html"]
    # no server, network or CDN: every image is a data URI, nothing is fetched
    sources = embedded(page)
    assert sources and all(s.startswith("data:image/") for s in sources), [s[:40] for s in sources if not s.startswith("data:")]
    assert not re.search(r"<link|@import|url\(|fetch\(|XMLHttpRequest|https?://", page.replace("http://www.w3.org", ""))
    # per photo: a split and a strength slider, keyboard-operable (native range inputs) and labelled
    assert page.count('type="range" class="split"') == 2 and page.count('type="range" class="strength"') == 2
    for tag in re.findall(r"<img\b[^>]*>", page):
        assert re.search(r'\balt="[^"]+"', tag), tag[:80]
    assert page.count('role="img" aria-label=') == 2  # the live canvases
    # the .cube is embedded as float32 rows, red fastest, exactly the runtime's table
    lut_json = re.search(r'<script type="application/json" id="styleforge-lut">(.*?)</script>', page, re.S).group(1)
    lut = json.loads(lut_json)
    rows = np.frombuffer(base64.b64decode(lut["rgb_f32"]), "<f4").reshape(-1, 3)
    table = open_bundle(look_bundle, artifact="lut").lut
    assert lut["size"] == 33 and np.array_equal(rows, table.cube_order())
    assert '<script type="application/json" id="styleforge-recipe">null</script>' in page  # a LUT look: no recipe
    assert 'class="step-strength"' not in page and 'data-program="lut"' in page
    # the before photo is lossless: the browser's LUT input is exactly the runtime's input
    before = re.search(r'<img class="before" src="([^"]+)"', page).group(1)
    assert before.startswith("data:image/png;base64,")
    pixels, _ = pv.load_photo(PHOTOS[0], pv.DEFAULT_MAX_EDGE)
    assert np.array_equal(pv.decode_data_uri(before), pixels)


def test_max_edge_and_reference_images(look_bundle, tmp_path):
    """``--reference`` images (teacher outputs, ground truth) give each output its PSNR."""
    from PIL import Image

    ref_dir = tmp_path / "teacher"
    ref_dir.mkdir()
    stylizer = open_bundle(look_bundle, artifact="lut")
    for photo in PHOTOS:  # a reference at the file's size, resized by the page to the embedded size
        pixels, _ = pv.load_photo(photo, None)
        Image.fromarray(stylizer.stylize_rgb(pixels, 0.5)).save(ref_dir / f"{photo.stem}.png")
    page = pv.build_preview(look_bundle, PHOTOS, tmp_path / "p", max_edge=400, reference_images=ref_dir,
                            reference_label="teacher").read_text()
    assert "800×600, shown at 400×300" in page
    assert page.count("PSNR vs teacher") == 2 and page.count("</strong><br>the reference") == 2
    psnrs = [float(v) for v in re.findall(r'class="psnr">([0-9.]+) dB', page)]
    assert len(psnrs) == 2 and all(20 < v < 60 for v in psnrs), psnrs  # half strength vs full: a real gap


def test_model_bundle_shows_every_artifact_with_psnr_and_latency(tiny_bundle, tmp_path):
    bench = {"cells": [
        {"artifact": "tflite_int8", "status": "ok", "backend": "litert", "threads": 2, "size": [64, 64],
         "latency_ms": {"p50": 3.0}},
        {"artifact": "tflite_int8", "status": "ok", "backend": "litert", "threads": 1, "size": [64, 64],
         "latency_ms": {"p50": 5.25}},
        {"artifact": "onnx", "status": "error", "latency_ms": None},
    ]}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    page = pv.build_preview(tiny_bundle, PHOTOS[:1], tmp_path / "p", max_edge=160, bench=tmp_path / "bench.json",
                            threads=1).read_text()
    keys = re.findall(r'<figure class="output" data-key="([^"]+)"', page)
    assert keys[:2] == ["tflite_int8", "tflite_dynamic_int8"] and "onnx" in keys and "tflite_fp16" in keys
    reference = "fp32 (TorchScript)" if "torchscript" in keys else "fp32 (ONNX)"  # PyTorch itself when it runs
    assert page.count("</strong><br>the reference") == 1 and page.count(f"PSNR vs {reference}") == len(keys) - 1
    assert "5.2 ms</span> p50 · litert, 1 thread, 64×64" in page  # the fewest threads' p50
    assert 'data-live="1"' not in page  # no .cube: nothing is live, model outputs are pre-rendered
    assert all(s.startswith("data:image/") for s in embedded(page))


def test_errors_are_one_line_and_the_command_is_torch_free(look_bundle, tmp_path):
    with pytest.raises(pv.PreviewError, match="has no tflite_int8 artifact"):
        pv.build_preview(look_bundle, PHOTOS, tmp_path / "x", artifacts=["int8"])
    code = (
        "import sys\n"
        "from styleforge.cli import main\n"
        f"rc = main(['preview', {str(look_bundle)!r}, {str(PHOTOS[0])!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'\n"
        f"rc = main(['preview', {str(look_bundle)!r}, {str(tmp_path / 'missing.jpg')!r}, '--out', 'x'])\n"
        "assert rc == 2, rc\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and (tmp_path / "o" / "index.html").is_file()
    assert proc.stderr.count("\n") == 1 and "styleforge preview: error:" in proc.stderr and "missing.jpg" in proc.stderr


def test_recipe_page_embeds_the_recipe_a_slider_per_step_and_grain(look_bundle, tmp_path):
    """A recipe bundle's page carries what its WebGL2 renderer runs: the recipe, its tables, the
    runtime's constants, one slider per step at the step's value and range, and each photo's grain field."""
    from styleforge.export.recipe_edit import export_edited_recipe
    from styleforge.runtime import look_blur, look_ops

    steps = [{"op": "colour_lut", "lut": "look.cube"},
             {"op": "bloom", "strength": 0.55, "threshold": 0.6, "radius": 0.04},
             {"op": "grain", "amount": 0.05, "size": 0.004, "luma_dependence": 0.5, "seed": 3}]
    (tmp_path / "recipe.json").write_text(json.dumps({"version": 1, "steps": steps}))
    bundle = tmp_path / "recipe-bundle"
    export_edited_recipe(tmp_path / "recipe.json", look_bundle, bundle, heldout_images=PHOTOS[:1], progress=False,
                         ffmpeg_size=(320, 240))  # the chain is not what this test is about: small
    page = pv.build_preview(bundle, PHOTOS, tmp_path / "page", max_edge=240).read_text()
    sources = embedded(page)
    assert all(s.startswith("data:image/") for s in sources) and not re.search(r"<link|@import|https?://", page.replace(
        "http://www.w3.org", ""))
    block = json.loads(re.search(r'<script type="application/json" id="styleforge-recipe">(.*?)</script>', page, re.S).group(1))
    stylizer = open_bundle(bundle)
    assert block["recipe"] == stylizer.recipe.to_json() and block["recipe"]["steps"][1]["strength"] == 0.55
    rows = np.frombuffer(base64.b64decode(block["tables"]["look.cube"]["rgb_f32"]), "<f4").reshape(-1, 3)
    assert np.array_equal(rows, stylizer.lut.cube_order())
    assert block["constants"]["level_sigma"] == look_blur.LEVEL_SIGMA and block["constants"]["bloom_knee"] == look_ops.BLOOM_KNEE
    # the recipe is the first output and live; the colour part alone stays live as the one-pass LUT
    assert re.findall(r'<figure class="output" data-key="([^"]+)"', page)[:2] == ["recipe", "lut_cube"]
    assert page.count('data-program="recipe"') == page.count('data-program="lut"') == len(PHOTOS)
    # one slider per step that has a strength (colour_lut has none), per photo, at the recipe's value
    sliders = re.findall(r'<input type="range" class="step-strength"[^>]*>', page)
    assert len(sliders) == 2 * len(PHOTOS)
    for tag in sliders[:2]:
        attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', tag))
        step = steps[int(attrs["data-step"])]
        key = look_ops.STRENGTH[step["op"]]
        low, high, _ = look_ops.PARAMS[step["op"]][key]
        assert (float(attrs["min"]), float(attrs["max"]), float(attrs["value"])) == (low, high, step[key])
    assert page.count('class="save-recipe"') == len(PHOTOS) and "styleforge export --recipe" in page
    # each photo's grain field is the runtime's own, to 8 bits
    fields = re.findall(r'<script type="application/json" class="grain-fields">(.*?)</script>', page)
    befores = [pv.decode_data_uri(u) for u in re.findall(r'<img class="before" src="([^"]+)"', page)]
    assert len(fields) == len(PHOTOS)
    for text, before in zip(fields, befores):
        entry = json.loads(text)["2"]
        h, w = before.shape[:2]
        assert (entry["height"], entry["width"]) == (h, w)
        q = np.frombuffer(base64.b64decode(entry["field_u8"]), np.uint8).reshape(h, w).astype(np.float32)
        truth = look_ops.grain(np.zeros((h, w, 3), np.float32), 1.0, 0.004, 0.0, 3)[..., 0]
        assert np.abs((q - pv.GRAIN_OFFSET) / pv.GRAIN_SCALE - truth).max() <= 0.5 / pv.GRAIN_SCALE + 1e-5
        assert truth.std() > 0.9  # a real field (zero mean, unit deviation), not zeros


def test_untrusted_text_cannot_end_the_pages_json_blocks():
    """A .cube TITLE or file name is untrusted: inside the page's <script> JSON it stays text."""
    hostile = {"title": "</script><script>alert(1)</script><!-- & -->"}
    text = pv.script_json(json.dumps(hostile))
    assert "<" not in text and ">" not in text and json.loads(text) == hostile
