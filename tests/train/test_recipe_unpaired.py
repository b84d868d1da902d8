"""The unpaired look recipe (train/recipe_unpaired.py, train/recipe_adversarial.py): a look built from
the vocabulary with known parameters (smoothing + bloom) is recovered from two unpaired folders of
real photos (the corpus: content and style are different photos), beats its colour part alone on
photos neither folder holds; a vignette is learned when asked for; a pure colour look stays a
colour function."""

from __future__ import annotations

import numpy as np
import pytest

from styleforge.photo.corpus import corpus_dir
from styleforge.photo.photos import load_photos
from styleforge.runtime.imageio import list_images
from styleforge.runtime.look_ops import apply_recipe
from styleforge.runtime.lut import identity_table
from styleforge.runtime.metrics import psnr
from styleforge.train.recipe_adversarial import refine_fit
from styleforge.train.recipe_unpaired import fit_unpaired_recipe, look_statistics

SIDE = 80  # photos are small: the statistics and operators are resolution independent
STEPS = 30
PER_SIDE = 28

VIGNETTE = {"amount": -0.5, "midpoint": 0.55, "roundness": 0.0, "feather": 0.5, "center_x": 0.5, "center_y": 0.5}
LOCAL_LOOK = [("clarity", {"amount": -0.8, "radius": 0.03}), ("colour_lut", {"table": identity_table(17)}),
              ("bloom", {"strength": 0.8, "threshold": 0.6, "radius": 0.05})]
FRAMED_LOOK = [("colour_lut", {"table": identity_table(17)}), ("vignette", VIGNETTE)]


def _warm_table(size: int = 17) -> np.ndarray:
    t = identity_table(size).copy()
    t[..., 0] = np.clip(t[..., 0] * 1.08 + 0.03, 0, 1)
    t[..., 2] = np.clip(t[..., 2] * 0.9, 0, 1)
    return t ** np.float32(0.9)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    paths = list_images(corpus_dir())[: 2 * PER_SIDE + 8]
    return [p.astype(np.float32) / 255.0 for p in load_photos(paths, len(paths), short_side=SIDE)]


def _sides(photos):
    """Content, style and test photos: content and style alternate through the corpus's scene
    groups (two folders of the same kind of scenes, as the learner assumes), test after both."""
    both = photos[:2 * PER_SIDE]
    return both[0::2], both[1::2], photos[2 * PER_SIDE:]


def _score(steps, photos, truth_steps) -> float:
    return float(np.mean([psnr(apply_recipe(p, steps) * 255.0, apply_recipe(p, truth_steps) * 255.0) for p in photos]))


def test_statistics_are_per_photo_vectors_and_size_stable(photos):
    import torch

    x = torch.from_numpy(photos[0].transpose(2, 0, 1).copy())[None]
    small = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="area")
    a, b = look_statistics(x), look_statistics(small)
    assert a.shape == b.shape and a.ndim == 1 and torch.isfinite(a).all()
    assert float((a - b).abs().median()) < 0.02  # the same photo at half size reads about the same


def test_a_local_look_is_recovered_unpaired_and_beats_its_colour_part(photos):
    content, style_src, test = _sides(photos)
    style = [apply_recipe(p, LOCAL_LOOK) for p in style_src]
    fit = fit_unpaired_recipe(content, style, identity_table(17), steps=STEPS)
    params = dict(fit.steps)
    smoothing = [params[op]["amount"] for op in ("clarity", "smooth_skin") if op in params]
    assert smoothing and min(smoothing) < -0.2, fit.log  # the look smooths: some op learned to
    assert "vignette" not in params and "fade" not in params  # not learned unpaired (scene-confounded)
    colour_only = [("colour_lut", {"table": identity_table(17)})]
    start_db = _score(fit.steps, test, LOCAL_LOOK)
    assert start_db > _score(colour_only, test, LOCAL_LOOK) + 1.5, fit.log
    report = refine_fit(fit, steps=10)
    assert report is not None and np.isfinite(report.end_z2)
    assert fit.start_steps is not fit.steps and "adversarial step" in "\n".join(fit.log)


def test_a_vignette_is_learned_when_asked_for(photos):
    from styleforge.train.recipe_fit import ORDER

    content, style_src, _ = _sides(photos)
    style = [apply_recipe(p, FRAMED_LOOK) for p in style_src]
    fit = fit_unpaired_recipe(content, style, identity_table(17), steps=STEPS, candidates=ORDER)
    params = dict(fit.steps)
    assert "vignette" in params and params["vignette"]["amount"] < -0.2, fit.log


def test_a_colour_look_stays_a_colour_function(photos):
    table = _warm_table()
    content, style_src, _ = _sides(photos)
    style = [apply_recipe(p, [("colour_lut", {"table": table})]) for p in style_src]
    fit = fit_unpaired_recipe(content, style, table, steps=STEPS)
    assert fit.local_ops == [], fit.log
    assert refine_fit(fit, steps=10) is None  # nothing to refine


def test_train_recipe_cli_writes_its_choice_and_export_ships_what_it_chose(tmp_path, capsys):
    import json

    from styleforge.cli import main as cli
    from styleforge.photo.dataset import make_dataset

    data = make_dataset("dreamy-bloom", tmp_path / "data", seed=0, size=96, show_progress=False)
    run = tmp_path / "run"
    args = ["train", "--content", str(data / "content"), "--style", str(data / "style"), "--out", str(run),
            "--preset", "tiny", "--quiet", "--allow-degenerate", "--recipe"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    choice = json.loads((run / "recipe_choice.json").read_text())
    assert choice["generator"] in ("recipe", "colour") and choice["log"]
    assert (run / "recipe" / "recipe.json").is_file() == (choice["generator"] == "recipe")
    assert "look recipe:" in out
    if choice["generator"] == "recipe":
        bundle = tmp_path / "bundle"
        assert cli(["export", str(run), "--out", str(bundle), "--heldout", str(data / "test" / "input")]) == 0
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert "recipe" in manifest["artifacts"] and manifest["model"]["arch"] == "recipe"
    # --recipe belongs to an unpaired colour run: one line, nothing trained
    assert cli(["train", "--paired", str(data / "paired"), "--out", str(tmp_path / "p"), "--recipe"]) == 2
    assert "--recipe" in capsys.readouterr().err and not (tmp_path / "p").exists()
