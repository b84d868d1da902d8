"""``styleforge export --recipe FILE --bundle SRC``: a recipe edited by hand (the preview page's "save
recipe") becomes a bundle the runtime runs, its tables SRC's .cube files, gated by the runtime alone,
with its ffmpeg chain checked by real ffmpeg as a trained recipe's is; hostile recipe files are
refused with one line and nothing is written. Torch-free; small photos, the chain at 320x240."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.export import ffmpeg_chain as fc
from styleforge.export.recipe_edit import export_edited_recipe
from styleforge.runtime import lut as rlut
from styleforge.runtime import open_bundle
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.metrics import psnr
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


def test_an_edited_recipe_becomes_a_bundle_the_runtime_runs(lut_bundle, heldout, tmp_path, capsys, monkeypatch):
    """Through the command line, which writes the chain for 1920x1080; with no ffmpeg here (imageio-ffmpeg's
    own override points at nothing) so the test stays fast: the chain is written but not verified."""
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-such-ffmpeg"))
    source_before = files(lut_bundle)
    (tmp_path / "recipe.json").write_text(json.dumps({"version": 1, "steps": STEPS}))
    out = tmp_path / "edited"
    assert main(["export", "--recipe", str(tmp_path / "recipe.json"), "--bundle", str(lut_bundle), "--out", str(out),
                 "--heldout", str(heldout)]) == 0
    err = capsys.readouterr().err
    assert "runtime check passed on 4 photos at short sides 256, 640" in err and "3. bloom  strength 0.7" in err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[export] warning: look.ffmpeg.txt is not verified")
    assert files(lut_bundle) == source_before  # the source is only read
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"recipe", "lut_cube", "ffmpeg"}
    chain = manifest["artifacts"]["ffmpeg"]  # written for 1080p, hashed, not verified: the bundle ships all the same
    assert chain["fidelity"]["verified"] is False and "cannot run ffmpeg" in chain["fidelity"]["error"]
    assert chain["extra"]["frame_size"] == [1920, 1080]
    assert [chain["size_bytes"], chain["sha256"]] == list(file_facts(out / fc.CHAIN_FILE))
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


def _export(recipe_steps, source: Path, heldout: Path, tmp_path: Path, name: str, capsys) -> tuple[Path, dict, str]:
    """``export_edited_recipe`` with the chain at 320x240: (bundle, its manifest, what it printed)."""
    (tmp_path / f"{name}.json").write_text(json.dumps({"version": 1, "steps": recipe_steps}))
    out = tmp_path / name
    export_edited_recipe(tmp_path / f"{name}.json", source, out, heldout_images=sorted(heldout.iterdir()),
                         ffmpeg_size=(320, 240), progress=True)
    return out, json.loads((out / "manifest.json").read_text()), capsys.readouterr().err


def test_an_edited_recipe_ships_its_ffmpeg_chain_checked_by_ffmpeg(lut_bundle, heldout, tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg", reason="the chain is checked with imageio-ffmpeg's ffmpeg")
    softer = json.loads(json.dumps(STEPS))
    softer[2]["strength"] = 0.3  # a slider moved in the preview page
    out, manifest, err = _export(softer, lut_bundle, heldout, tmp_path, "edited", capsys)
    art = manifest["artifacts"]["ffmpeg"]
    assert art["format"] == "ffmpeg" and art["file"] == fc.CHAIN_FILE
    assert [art["size_bytes"], art["sha256"]] == list(file_facts(out / fc.CHAIN_FILE))  # hashed like every artifact
    stylizer = open_bundle(out)  # the runtime runs the recipe, never the chain
    assert stylizer.artifact.key == "recipe"
    # the chain is the edited recipe's (its strength, SRC's table) for the stated size
    assert (out / fc.CHAIN_FILE).read_text() == fc.filter_chain(stylizer.recipe, 320, 240)
    assert "all_opacity=0.3" in (out / fc.CHAIN_FILE).read_text()
    fidelity = art["fidelity"]
    assert fidelity["verified"] is True and fidelity["psnr_min"] >= fc.CHAIN_BOUND_DB and fidelity["differs"] == []
    assert fidelity["frame_size"] == [320, 240] and fidelity["images"] == 2 and fidelity["compared_with"] == "runtime"
    assert list(fidelity["per_op"]) == ["1. smooth_skin", "2. colour_lut", "3. bloom", "4. vignette"]
    assert art["extra"]["frame_size"] == [320, 240] and "-/vf look.ffmpeg.txt" in art["extra"]["run"]
    assert "warning" not in err and f"look.ffmpeg.txt: ffmpeg vs the runtime {fidelity['psnr_min']:.2f} dB at 320x240" in err
    # run from the bundle, as a user would, it is within its figure of what stylize writes
    frames = np.stack([np.asarray(Image.open(p).convert("RGB").resize((320, 240))) for p in sorted(heldout.iterdir())])
    theirs = fc.run_chain(fc.find_ffmpeg(), out / fc.CHAIN_FILE, frames, out)
    ours = np.stack([stylizer.stylize_rgb(f) for f in frames])
    assert psnr(theirs, ours) >= fc.CHAIN_BOUND_DB

    # grain has no faithful ffmpeg equivalent: the chain falls below its bound, says so in one line, and the bundle ships
    grainy = STEPS + [{"op": "grain", "amount": 0.04, "size": 0.004, "luma_dependence": 0.5, "seed": 3}]
    out, manifest, err = _export(grainy, lut_bundle, heldout, tmp_path, "grainy", capsys)
    fidelity = manifest["artifacts"]["ffmpeg"]["fidelity"]
    assert fidelity["verified"] is False and fidelity["psnr_min"] < fc.CHAIN_BOUND_DB and fidelity["differs"] == ["5. grain"]
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "look.ffmpeg.txt is" in warnings[0] and "5. grain" in warnings[0]
    assert set(manifest["artifacts"]) == {"recipe", "lut_cube", "ffmpeg"} and open_bundle(out).artifact.key == "recipe"


def test_a_table_name_ffmpeg_cannot_quote_ships_without_a_chain(lut_bundle, heldout, tmp_path, capsys):
    """SRC's .cube is named with a space: the recipe and its table ship, the chain does not (one warning line)."""
    source = tmp_path / "src"
    shutil.copytree(lut_bundle, source)
    (source / "look.cube").rename(source / "my look.cube")
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["artifacts"]["lut_cube"]["file"] = "my look.cube"
    (source / "manifest.json").write_text(json.dumps(manifest))
    steps = json.loads(json.dumps(STEPS))
    steps[1]["lut"] = "my look.cube"
    out, manifest, err = _export(steps, source, heldout, tmp_path, "spaced", capsys)
    assert set(manifest["artifacts"]) == {"recipe", "lut_cube"} and not (out / fc.CHAIN_FILE).exists()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "no look.ffmpeg.txt" in warnings[0] and "cannot quote" in warnings[0]
    assert open_bundle(out).recipe.steps[1].lut == "my look.cube"
