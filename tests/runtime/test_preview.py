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
