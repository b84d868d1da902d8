"""A look recipe as an ffmpeg filtergraph: each operator run by real ffmpeg (imageio-ffmpeg's
binary) against the runtime on album photos, the chain's place in a recipe bundle (hashed, checked,
ignored by the runtime), and what happens when it falls short or cannot be checked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg", reason="the chain is checked with imageio-ffmpeg's ffmpeg")

from styleforge.export import calibration as cal  # noqa: E402
from styleforge.export import ffmpeg_chain as fc  # noqa: E402
from styleforge.runtime import lut as rlut  # noqa: E402
from styleforge.runtime.metrics import psnr  # noqa: E402
from styleforge.runtime.recipe import parse_recipe  # noqa: E402

WIDTH, HEIGHT = 320, 240  # a small stated size: the chain's blurs are written for it
OPS = {  # each operator with parameters well away from its identity
    "colour_lut": {"lut": "look.cube"},
    "clarity": {"amount": 0.9, "radius": 0.03},
    "detail": {"fine": 0.8, "medium": 0.6, "coarse": -0.5},
    "sharpen": {"amount": 1.5, "radius": 0.004},
    "smooth_skin": {"amount": 0.8, "radius": 0.01, "edge": 0.04},
    "bloom": {"strength": 0.9, "threshold": 0.6, "radius": 0.05},
    "fade": {"amount": -0.2, "r": 0.6, "g": 0.4, "b": 0.5},
    "vignette": {"amount": -0.7, "midpoint": 0.4, "roundness": -0.5, "feather": 0.4, "center_x": 0.45,
                 "center_y": 0.55},
}
CASES = {**OPS, "negative bloom": {"op": "bloom", "strength": -0.4, "threshold": 0.5, "radius": 0.1},
         "lighten vignette": {"op": "vignette", "amount": 0.6, "midpoint": 0.7, "roundness": 0.8, "feather": 0.2,
                              "center_x": 0.5, "center_y": 0.5},
         "lifted fade": {"op": "fade", "amount": 0.4, "r": 0.7, "g": 0.5, "b": 0.2},
         "warm bloom": {"op": "bloom", "strength": 0.8, "threshold": 0.55, "radius": 0.06, "r": 1.3, "g": 0.9, "b": 0.5},
         # 9.6 px at 240: the fast guided filter on pyramid level 2 (the default above is level 0)
         "smooth skin on its level": {"op": "smooth_skin", "amount": 0.8, "radius": 0.04, "edge": 0.04}}
OP_FLOOR_DB = 45.0  # measured 49-63 dB per operator at this size (ffmpeg 9.0.2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with a warm, contrasty ``look.cube`` (the chain finds it there by name)."""
    root = tmp_path_factory.mktemp("chain")
    grid = rlut.identity_table(17)
    table = np.clip(grid ** np.array([0.85, 1.0, 1.2], dtype=np.float32) * [1.05, 1.0, 0.9], 0, 1)
    rlut.write_cube(rlut.Lut3D(table.astype(np.float32), "warm"), root / "look.cube")
    return root


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return cal.heldout_crops(cal.split_default_photos()[1][:2], (HEIGHT, WIDTH))


def _recipe(steps: list[dict], folder: Path):
    return parse_recipe({"version": 1, "steps": steps}).with_tables({"look.cube": rlut.read_cube(folder / "look.cube").table})


def _run(recipe, folder: Path, frames: np.ndarray, tmp_path: Path) -> np.ndarray:
    chain = tmp_path / "chain.txt"
    chain.write_text(fc.filter_chain(recipe, WIDTH, HEIGHT))
    return fc.run_chain(fc.find_ffmpeg(), chain, frames, folder)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_operator_in_ffmpeg_is_the_runtimes(case, folder, frames, tmp_path):
    step = {"op": case, **CASES[case]} if case in OPS else CASES[case]
    recipe = _recipe([step], folder)
    theirs, ours = _run(recipe, folder, frames, tmp_path), fc.runtime_frames(recipe, frames)
    assert np.abs(ours.astype(int) - frames).mean() > 0.5  # the operator does something here
    assert psnr(theirs, ours) >= OP_FLOOR_DB, (case, psnr(theirs, ours))


def test_smooth_skin_on_its_level_where_the_frame_does_not_divide(folder, tmp_path):
    """317 x 237 frames, smooth_skin on pyramid level 2: the chain pads the right and bottom by 3
    more pixels so the level's grid is the frame's, and crops them off again."""
    from styleforge.runtime.look_blur import pyramid_level

    size = (317, 237)
    assert pyramid_level(0.04 * 237, 237, 317) == 2
    recipe = _recipe([{"op": "smooth_skin", "amount": 0.8, "radius": 0.04, "edge": 0.04}], folder)
    odd = cal.heldout_crops(cal.split_default_photos()[1][:2], size[::-1])
    chain = tmp_path / "chain.txt"
    chain.write_text(fc.filter_chain(recipe, *size))
    assert "scale=w=iw/4:h=ih/4:flags=area" in chain.read_text()
    theirs, ours = fc.run_chain(fc.find_ffmpeg(), chain, odd, folder), fc.runtime_frames(recipe, odd)
    assert theirs.shape == odd.shape and psnr(theirs, ours) >= OP_FLOOR_DB, psnr(theirs, ours)


def test_grain_matches_strength_and_size_not_pixels(folder, tmp_path):
    """A different random pattern of the runtime's standard deviation and grain size, the same
    on every frame (as the runtime's): not pixel-faithful, and the chain says so."""
    grey = np.full((2, HEIGHT, WIDTH, 3), 128, np.uint8)
    for size in (0.003, 0.015):
        recipe = _recipe([{"op": "grain", "amount": 0.05, "size": size, "luma_dependence": 0.0, "seed": 7}], folder)
        theirs = _run(recipe, folder, grey, tmp_path).astype(np.float64)[..., 0]
        ours = fc.runtime_frames(recipe, grey).astype(np.float64)[..., 0]
        assert np.array_equal(theirs[0], theirs[1]) and np.array_equal(ours[0], ours[1])  # static, like ours
        assert abs(theirs.std() / ours.std() - 1) < 0.15, (theirs.std(), ours.std())

        def lag1(a):  # neighbour correlation: the grain's size
            a = a[0] - a[0].mean()
            return float((a[:, 1:] * a[:, :-1]).mean() / a.var())

        assert abs(lag1(theirs) - lag1(ours)) < 0.15, (lag1(theirs), lag1(ours))
        assert psnr(theirs, ours) < fc.CHAIN_BOUND_DB  # another pattern
    assert "not pixel-faithful" in fc.FAITHFUL["grain"]


def test_the_chain_file_is_checked_whole_and_step_by_step(folder, frames, capsys):
    recipe = _recipe([{"op": "smooth_skin", **OPS["smooth_skin"]}, {"op": "colour_lut", "lut": "look.cube"},
                      {"op": "bloom", **OPS["bloom"]}, {"op": "vignette", **OPS["vignette"]}], folder)
    photos = cal.split_default_photos()[1][:2]
    fidelity = fc.write_chain(folder, recipe, photos, (WIDTH, HEIGHT))
    text = (folder / fc.CHAIN_FILE).read_text()
    assert text.startswith("format=gbrpf32le") and "lut3d=file=look.cube" in text and len(text.splitlines()) == 5
    assert fidelity["verified"] is True and fidelity["psnr_min"] >= fc.CHAIN_BOUND_DB
    assert list(fidelity["per_op"]) == ["1. smooth_skin", "2. colour_lut", "3. bloom", "4. vignette"]
    assert all(r["psnr_min"] >= OP_FLOOR_DB for r in fidelity["per_op"].values()) and fidelity["differs"] == []
    assert fidelity["frame_size"] == [WIDTH, HEIGHT] and fidelity["images"] == 2
    assert "warning" not in capsys.readouterr().err
    # the chain is resolution dependent: the same file on frames twice the size is further off
    big = cal.heldout_crops(photos, (2 * HEIGHT, 2 * WIDTH))
    wrong = fc.run_chain(fc.find_ffmpeg(), folder / fc.CHAIN_FILE, big, folder)
    assert psnr(wrong, fc.runtime_frames(recipe, big)) < fidelity["psnr"] - 3


def test_without_a_working_ffmpeg_the_chain_is_written_but_not_verified(folder, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(folder / "no-such-ffmpeg"))  # imageio-ffmpeg's own override
    recipe = _recipe([{"op": "fade", **OPS["fade"]}], folder)
    fidelity = fc.write_chain(folder, recipe, cal.split_default_photos()[1][:1], (WIDTH, HEIGHT))
    assert fidelity["verified"] is False and "cannot run ffmpeg" in fidelity["error"]
    assert (folder / fc.CHAIN_FILE).read_text().count("colorlevels") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[export] warning: look.ffmpeg.txt is not verified")


def test_a_lut_name_ffmpeg_cannot_quote_is_refused(folder):
    recipe = parse_recipe({"version": 1, "steps": [{"op": "colour_lut", "lut": "a,b;[x].cube"}]})
    with pytest.raises(fc.ChainError, match="cannot quote"):
        fc.filter_chain(recipe, WIDTH, HEIGHT)


# ------------------------------------------------------------------------------ in a bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, folder):
    """A recipe bundle (a generator of known parameters, grain included) with its chain for 320x240."""
    pytest.importorskip("torch")
    from styleforge.export.recipe_export import export_recipe_bundle
    from styleforge.train.models.recipe import RecipeGenerator

    table = rlut.read_cube(folder / "look.cube").table.copy()
    steps = [("clarity", OPS["clarity"]), ("colour_lut", {"table": table}), ("bloom", OPS["bloom"]),
             ("fade", OPS["fade"]), ("grain", {"amount": 0.04, "size": 0.004, "luma_dependence": 0.5})]
    out = tmp_path_factory.mktemp("bundle") / "look"
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        export_recipe_bundle(RecipeGenerator.from_steps(steps, lut_size=17), out, ffmpeg_size=(WIDTH, HEIGHT),
                             heldout_images=cal.split_default_photos()[1][:2], progress=False)
    return out, err.getvalue()


def test_a_chain_below_its_bound_is_recorded_and_the_bundle_still_ships(bundle):
    from styleforge.runtime import open_bundle
    from styleforge.runtime.bundle_files import file_facts

    out, err = bundle
    manifest = json.loads((out / "manifest.json").read_text())
    art = manifest["artifacts"]["ffmpeg"]
    assert art["format"] == "ffmpeg" and art["file"] == fc.CHAIN_FILE
    assert [art["size_bytes"], art["sha256"]] == list(file_facts(out / fc.CHAIN_FILE))  # hashed like every artifact
    fidelity = art["fidelity"]
    assert fidelity["verified"] is False and fidelity["psnr_min"] < fc.CHAIN_BOUND_DB
    assert fidelity["differs"] == ["5. grain"]  # grain alone is below the bound; every other step is far above
    assert all(r["psnr_min"] >= OP_FLOOR_DB for k, r in fidelity["per_op"].items() if k != "5. grain")
    assert art["extra"]["frame_size"] == [WIDTH, HEIGHT] and "-/vf look.ffmpeg.txt" in art["extra"]["run"]
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "look.ffmpeg.txt is" in warnings[0] and "5. grain" in warnings[0]
    stylizer = open_bundle(out)  # the runtime runs the recipe and never the chain
    assert stylizer.artifact.key == "recipe"
    from styleforge.runtime.contract import BundleError

    with pytest.raises(BundleError, match="is an ffmpeg filtergraph, run by ffmpeg itself"):
        open_bundle(out, artifact="ffmpeg")
    photo = cal.heldout_crops(cal.split_default_photos()[1][:1], (HEIGHT, WIDTH))[0]
    assert stylizer.stylize(photo).shape == photo.shape


def test_info_lists_the_chain_and_a_tampered_chain_is_refused(bundle, tmp_path, capsys):
    import shutil

    from styleforge.cli import main
    from styleforge.runtime import open_bundle
    from styleforge.runtime.contract import BundleError

    out, _ = bundle
    assert main(["info", str(out)]) == 0
    assert any(line.split()[:3] == ["ffmpeg", fc.CHAIN_FILE, "ffmpeg"] for line in capsys.readouterr().out.splitlines())
    evil = tmp_path / "evil"
    shutil.copytree(out, evil)
    (evil / fc.CHAIN_FILE).write_text("movie=/etc/passwd\n")  # another graph: its size and hash are wrong
    with pytest.raises(BundleError, match="look.ffmpeg.txt"):
        open_bundle(evil)


def test_the_chain_for_another_size_from_the_command_line(bundle):
    import sys

    out, _ = bundle
    proc = subprocess.run([sys.executable, "-m", "styleforge.export.ffmpeg_chain", str(out), "--size", "640x480"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ours, shipped = proc.stdout, (out / fc.CHAIN_FILE).read_text()
    assert ours != shipped and ours.replace("640", "").count("gblur") == shipped.count("gblur")
    proc = subprocess.run([sys.executable, "-m", "styleforge.export.ffmpeg_chain", str(out), "--size", "big"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "error" in proc.stderr
