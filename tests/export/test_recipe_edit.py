"""``styleforge export --recipe FILE --bundle SRC``: a recipe edited by hand (the preview page's "save
recipe") becomes a bundle the runtime runs, its tables SRC's .cube files, gated by the runtime alone;
hostile recipe files are refused with one line and nothing is written. Torch-free; small photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.runtime import lut as rlut
from styleforge.runtime import open_bundle
from styleforge.runtime.recipe import parse_recipe

ALBUM = Path(__file__).resolve().parents[2] / "data" / "album"
STEPS = [
    {"op": "smooth_skin", "amount": 0.5, "radius": 0.01, "edge": 0.05},
    {"op": "colour_lut", "lut": "look.cube"},
    {"op": "bloom", "strength": 0.7, "threshold": 0.6, "radius": 0.04},
    {"op": "vignette", "amount": -0.5, "midpoint": 0.5, "roundness": 0.0, "feather": 0.5, "center_x": 0.5,
     "center_y": 0.5},
]


@pytest.fixture(scope="module")
def lut_bundle(tmp_path_factory) -> Path:
    """A LUT bundle of the built-in teal-orange look (17^3): the source of the recipe's table."""
    from styleforge.export.lut_export import export_lut_bundle, look_colour_fn

    out = tmp_path_factory.mktemp("src") / "teal-orange"
    export_lut_bundle(look_colour_fn("teal-orange"), out, size=17, style="teal-orange", progress=False)
    return out


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """Two small held-out photos (the runtime check runs them whole at short sides 256 and 640)."""
    folder = tmp_path_factory.mktemp("heldout")
    for name in ("pool.jpg", "wayne.jpg"):
        with Image.open(ALBUM / name) as img:
            img.convert("RGB").resize((img.width // 2, img.height // 2)).save(folder / f"{Path(name).stem}.png")
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_edited_recipe_becomes_a_bundle_the_runtime_runs(lut_bundle, heldout, tmp_path, capsys):
    source_before = files(lut_bundle)
    (tmp_path / "recipe.json").write_text(json.dumps({"version": 1, "steps": STEPS}))
    out = tmp_path / "edited"
    assert main(["export", "--recipe", str(tmp_path / "recipe.json"), "--bundle", str(lut_bundle), "--out", str(out),
                 "--heldout", str(heldout)]) == 0
    err = capsys.readouterr().err
    assert "runtime check passed on 4 photos at short sides 256, 640" in err and "3. bloom  strength 0.7" in err
    assert files(lut_bundle) == source_before  # the source is only read
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"recipe", "lut_cube"}
    assert (out / "look.cube").read_bytes() == (lut_bundle / "look.cube").read_bytes()  # the table, byte for byte
    fidelity = manifest["artifacts"]["recipe"]["fidelity"]
    assert fidelity["compared_with"] == "runtime" and fidelity["verified"] is not True  # no PyTorch model to gate against
    assert fidelity["images"] == 4 and fidelity["sizes"] == [256, 640] and fidelity["source_look"] == "lut_cube"
    assert 10.0 < fidelity["edit_vs_source_psnr_min"] <= fidelity["edit_vs_source_psnr"] < 35.0  # bloom + vignette moved it
    assert manifest["provenance"]["source_bundle"] == "teal-orange" and manifest["style"] == "teal-orange"

    # the bundle runs the file's recipe with the source's table
    table = rlut.read_cube(lut_bundle / "look.cube").table
    stylizer = open_bundle(out)
    assert stylizer.artifact.key == "recipe" and stylizer.recipe == parse_recipe({"version": 1, "steps": STEPS})
    assert np.array_equal(stylizer.recipe.tables["look.cube"], table)
    photo = np.asarray(Image.open(heldout / "pool.png"))
    expected = stylizer.recipe.apply(photo.astype(np.float32) / 255.0) * 255.0
    assert np.abs(stylizer.stylize_rgb(photo) - np.rint(expected)).max() <= 1  # the 8-bit path: a level of the float recipe
    reference = manifest["references"][0]  # the reference pairs are the runtime's own output
    ref_in, ref_out = (np.asarray(Image.open(out / reference[k])) for k in ("input", "output"))
    assert np.array_equal(stylizer.stylize_rgb(ref_in), ref_out)

    # a recipe bundle is a source too: its recipe unchanged is 100 dB (capped) from its own look
    again = tmp_path / "again"
    assert main(["export", "--recipe", str(out / "recipe.json"), "--bundle", str(out), "--out", str(again),
                 "--heldout", str(heldout), "--quiet"]) == 0
    fidelity = json.loads((again / "manifest.json").read_text())["artifacts"]["recipe"]["fidelity"]
    assert fidelity["source_look"] == "recipe" and fidelity["edit_vs_source_psnr_min"] == 100.0


def _steps(edit):
    steps = json.loads(json.dumps(STEPS))
    edit(steps)
    return json.dumps({"version": 1, "steps": steps})


HOSTILE = {
    "not JSON": ('{"version": 1, "steps": [', "Expecting"),
    "a key twice": ('{"version": 1, "version": 1, "steps": []}', "appears twice"),
    "NaN parameter": (json.dumps({"version": 1, "steps": STEPS}).replace('"strength": 0.7', '"strength": NaN'), "NaN"),
    "unknown operator": (_steps(lambda s: s.append({"op": "deep_dream"})), "unknown operator"),
    "absurd radius": (_steps(lambda s: s[2].update(radius=1e9)), "outside"),
    "thousands of steps": (_steps(lambda s: s.extend([s[-1]] * 5000)), "more than"),
    "lut outside the bundle": (_steps(lambda s: s[1].update(lut="../look.cube")), "not a .cube artifact"),
    "lut that is not a .cube": (_steps(lambda s: s[1].update(lut="manifest.json")), "not a .cube artifact"),
    "a huge file": ('{"version": 1, "steps": []}' + " " * (2 << 20), "not a look recipe"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_recipe_files_are_refused_with_one_line(lut_bundle, tmp_path, case, capsys):
    text, expect = HOSTILE[case]
    (tmp_path / "recipe.json").write_text(text)
    assert main(["export", "--recipe", str(tmp_path / "recipe.json"), "--bundle", str(lut_bundle),
                 "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("styleforge export: error:") and expect in lines[0], lines
    assert "this is a bug" not in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.json"]  # nothing written, no temporary left


def test_wrong_uses_are_one_line_and_touch_nothing(lut_bundle, tmp_path, capsys):
    (tmp_path / "recipe.json").write_text(json.dumps({"version": 1, "steps": STEPS}))
    copy = tmp_path / "src"
    shutil.copytree(lut_bundle, copy)
    before = files(copy)
    cases = [
        (["--recipe", str(tmp_path / "recipe.json")], "go together"),
        (["--recipe", str(tmp_path / "recipe.json"), "--bundle", str(copy), "--out", str(copy), "--force"],
         "is the source bundle"),
        (["--recipe", str(tmp_path / "missing.json"), "--bundle", str(copy), "--out", str(tmp_path / "o")], "cannot read"),
        (["--recipe", str(tmp_path / "recipe.json"), "--bundle", str(tmp_path), "--out", str(tmp_path / "o")],
         "not a styleforge bundle"),
        (["--recipe", str(tmp_path / "recipe.json"), "--bundle", str(copy), "--look", "noir"], "without"),
    ]
    for args, expect in cases:
        assert main(["export", *args]) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (args, lines)
    assert files(copy) == before and not (tmp_path / "o").exists()
