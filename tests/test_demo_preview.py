"""``make demo`` writes a preview page per bundle beside its report (held-out photos vs ground truth)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from styleforge.cli.demo import write_previews
from styleforge.runtime import open_bundle

ALBUM = Path(__file__).resolve().parents[1] / "data" / "album"


def test_demo_writes_a_preview_per_bundle_and_skips_one_that_fails(tmp_path, capsys):
    from styleforge.export.lut_export import export_lut_bundle, look_colour_fn

    bundle = tmp_path / "lut"
    export_lut_bundle(look_colour_fn("film-warm"), bundle, size=17, style="film-warm", progress=False)
    data = tmp_path / "data"
    lut = open_bundle(bundle, artifact="lut")
    for side in ("input", "target"):
        (data / "test" / side).mkdir(parents=True)
    for name in ("pool", "snow"):  # as make-dataset writes them: resized PNGs, the look's ground truth
        photo = np.asarray(Image.open(ALBUM / f"{name}.jpg").convert("RGB").resize((320, 240)))
        Image.fromarray(photo).save(data / "test" / "input" / f"{name}.png")
        Image.fromarray(lut.stylize_rgb(photo, 0.8)).save(data / "test" / "target" / f"{name}.png")
    pages = write_previews(tmp_path, data, {"preview_lut": bundle, "preview": tmp_path / "no-bundle"})
    assert pages == [tmp_path / "preview_lut" / "index.html"]
    assert "demo: no preview page: bundle not found" in capsys.readouterr().err
    page = pages[0].read_text()
    assert page.count("PSNR vs ground truth (the look)") == 2
    assert all(25 < float(v) < 60 for v in re.findall(r'class="psnr">([0-9.]+) dB', page))
