"""The colour generator, the classical fits it starts from, and an unpaired colour run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from styleforge.cli import main as cli
from styleforge.photo import baselines
from styleforge.photo.dataset import make_dataset
from styleforge.photo.lattice import lattice_regression
from styleforge.train.checkpoint import load_checkpoint, load_generator
from styleforge.train.losses import lut_regulariser
from styleforge.train.models.colour import ColourGenerator, MonotoneCurves
from styleforge.train.models.protocols import (
    AdaptiveColourModel,
    ColourModel,
    has_colour_part,
    is_adaptive,
)


def test_colour_generator_is_the_identity_at_init_any_size():
    torch.manual_seed(0)
    for kwargs in ({}, {"adaptive": 2, "local": 8}):
        model = ColourGenerator(curve_knots=8, lut_size=5, **kwargs).eval()
        x = torch.rand(2, 3, 23, 37) * 2 - 1
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape
        torch.testing.assert_close(y, x, atol=2e-5, rtol=0)


def test_curves_are_monotone_and_take_any_monotone_shape():
    curves = MonotoneCurves(knots=9)
    target = torch.tensor(np.array([np.linspace(0.1, 0.9, 9) ** p for p in (0.5, 1.0, 2.0)]), dtype=torch.float32)
    curves.set_values(target)
    torch.testing.assert_close(curves.values(), target, atol=1e-4, rtol=0)
    with torch.no_grad():
        curves.steps.normal_()  # any parameters: still increasing
    assert bool((curves.values().diff(dim=1) > 0).all())


def test_lut_residual_is_interpolated_on_its_lattice():
    model = ColourGenerator(curve_knots=4, lut_size=3).eval()
    with torch.no_grad():
        model.lut[0, 0, 2, 1, 0] = 0.25  # red offset at node (r=0, g=0.5, b=1): [c, b, g, r]
    nodes = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.25, 1.0], [1.0, 0.5, 0.0]])
    out = model.colour(nodes)
    assert out[0, 0].item() == pytest.approx(0.25, abs=1e-5)  # exactly on the node
    assert out[1, 0].item() == pytest.approx(0.125, abs=1e-5)  # half-way along g
    assert out[2, 0].item() == pytest.approx(1.0, abs=1e-5)  # other node untouched


def test_lut_regulariser_flags_non_monotone_lattices():
    model = ColourGenerator(lut_size=5)
    tv, mono = lut_regulariser(model.lattices())
    assert tv.item() == 0.0 and mono.item() == 0.0
    with torch.no_grad():
        model.lut[0, 0, :, :, :] = -2 * torch.linspace(0, 1, 5)  # red output falls as red input rises
    tv, mono = lut_regulariser(model.lattices())
    assert tv.item() > 0 and mono.item() > 0


def test_colour_generator_declares_its_colour_part_and_adaptivity():
    """The export asks the model protocols, not getattr: a colour generator has a colour part, is
    adaptive only with basis LUTs, and a conv generator has no colour part."""
    from styleforge.train.models.registry import build_generator

    plain, adaptive = ColourGenerator(lut_size=5), ColourGenerator(lut_size=5, adaptive=2)
    assert isinstance(plain, ColourModel) and isinstance(plain, AdaptiveColourModel)
    assert has_colour_part(plain) and not is_adaptive(plain) and is_adaptive(adaptive)
    assert len(adaptive.lattices()) == 3 and all(lat.shape == (3, 5, 5, 5) for lat in adaptive.lattices())
    conv = build_generator("resnet", n_blocks=1, ngf=8)
    assert not has_colour_part(conv) and not is_adaptive(conv)


def test_local_residual_comes_back_from_forward_when_asked():
    """The objective's penalty reads the local branch's residual from the same forward call
    (``with_local=True``); the plain forward (what export traces) returns the output alone."""
    torch.manual_seed(0)
    model = ColourGenerator(curve_knots=8, lut_size=5, local=4)
    with torch.no_grad():
        model.local[-1].weight.normal_(0.0, 0.1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out, residual = model(x, with_local=True)
    assert residual is not None and residual.shape == x.shape and residual.abs().mean() > 0
    torch.testing.assert_close(model(x), out, atol=0, rtol=0)
    assert ColourGenerator(lut_size=5)(x, with_local=True)[1] is None


def test_mkl_maps_mean_and_covariance_exactly():
    rng = np.random.default_rng(0)
    source = rng.normal([0.4, 0.5, 0.3], 0.1, size=(5000, 3)) @ np.array([[1, 0.2, 0], [0, 1, 0.3], [0, 0, 1]])
    target = rng.normal([0.6, 0.4, 0.2], [0.05, 0.15, 0.1], size=(5000, 3))
    a, b = baselines.mkl_fit(source, target)
    mapped = source @ a.T + b
    np.testing.assert_allclose(mapped.mean(0), target.mean(0), atol=1e-9)
    np.testing.assert_allclose(np.cov(mapped.T), np.cov(target.T), atol=2e-5)  # up to the 1e-6 ridge


def test_sliced_ot_and_swd_move_toward_the_target():
    rng = np.random.default_rng(1)
    source = rng.uniform(0.0, 0.6, size=(20000, 3))
    target = rng.beta(5, 2, size=(20000, 3))
    fit = baselines.sliced_ot_fit(source, target, steps=10)
    before = baselines.sliced_wasserstein_lab(source, target)
    after = baselines.sliced_wasserstein_lab(np.clip(fit(source), 0, 1), target)
    assert after < 0.25 * before, (before, after)
    assert baselines.sliced_wasserstein_lab(target, target) < 0.5


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("colour") / "film-warm"
    return make_dataset("film-warm", out, seed=0, size=64, show_progress=False)


def colour_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--content", str(data / "content"), "--style", str(data / "style"),
            "--out", str(out), "--preset", "tiny", "--quiet", *extra]


def test_unpaired_colour_run_selects_and_judges_its_model(colour_data, tmp_path):
    run = tmp_path / "run"
    assert cli(colour_args(colour_data, run, "--set", "model.init=levels")) == 0
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["ok"] and verdict["failed"] == [] and verdict["images"] >= 2
    assert verdict["validation"].startswith("validation split")
    steps = [row["step"] for row in verdict["selection"]]
    assert steps == [0, 10, 20] and verdict["selection"][0]["candidate"] == "init"
    assert verdict["selected"] == verdict["selection"][-1]  # model.select=last, the default

    state, meta, _ = load_checkpoint(run)
    assert {"generator", "generator_init", "generator_selected", "discriminator"} <= set(state)
    model, info = load_generator(run)
    assert info["arch"] == "colour" and info["weights"] == "generator_selected.safetensors"
    # model.init=levels: the classical levels fit of the two folders, baked into the pre-curves.
    content = baselines.pixels01([np.asarray(img) for img in _images(colour_data / "content")])
    style = baselines.pixels01([np.asarray(img) for img in _images(colour_data / "style")])
    scale, offset = baselines.levels_fit(content, style)
    init = ColourGenerator(**info["config"])
    init.load_state_dict(state["generator_init"])
    np.testing.assert_allclose(init.pre.values()[:, [0, -1]].detach().numpy(),
                               np.stack([offset, scale + offset], axis=1), atol=2e-3)
    report = json.loads((run / "eval.json").read_text())
    assert report["product"] == "generator_selected" and "generator_init" in report
    # The verdict is found from the run, a checkpoint in it or a weights file, and not above the run.
    from styleforge.photo.verdict import read_verdict

    checkpoint = run / "checkpoints" / "step_0000020"
    for where in (run, checkpoint, checkpoint / "generator_selected.safetensors"):
        assert read_verdict(where).ok, where
    assert read_verdict(tmp_path) is None and read_verdict(run / "samples") is None


def _images(folder: Path):
    from styleforge.runtime.imageio import list_images, open_image

    return [open_image(p).rgb for p in list_images(folder)]


def test_colour_resume_is_bit_identical(colour_data, tmp_path):
    """Also with an image pool (loss.pool_size): its stored fakes travel in the checkpoint."""
    quick = ["--set", "log.checkpoint_every=2", "--set", "log.log_every=1", "--set", "loss.pool_size=2"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli(colour_args(colour_data, straight, "--steps", "6", *quick)) == 0
    assert cli(colour_args(colour_data, stopped, "--steps", "2", *quick)) == 0
    assert cli(["train", "--out", str(stopped), "--resume", "--steps", "6", "--quiet"]) == 0
    a, _, a_state = load_checkpoint(straight)
    b, _, b_state = load_checkpoint(stopped)
    assert sorted(a) == sorted(b)
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key}"
    assert a_state["objective"]["selection"] == b_state["objective"]["selection"]
    pool = a_state["objective"]["pools"]["discriminator"]
    assert len(pool) == 2 and all(torch.equal(x, y) for x, y in zip(pool, b_state["objective"]["pools"]["discriminator"]))
    assert json.loads((straight / "verdict.json").read_text())["selection"] == \
        json.loads((stopped / "verdict.json").read_text())["selection"]


def test_learned_film_warm_beats_identity_and_holds_the_best_classical_fit(colour_data, tmp_path):
    """On held-out scene groups: well above doing nothing, and not below the best of the seven
    classical transfers by more than 0.5 dB (the shipped model stays near the classical start:
    a quarter of the adversarial change, model.shrink=0.25). It does not assert the issue's +1.5 dB over classical: see
    docs/results/eval_looks."""
    from styleforge.benchmarks.eval_looks import CLASSICAL
    from styleforge.benchmarks.scoring import load_pairs, score_methods, torch_method
    from styleforge.runtime.imageio import list_images, open_image, to_uint8_array

    run = tmp_path / "run"
    assert cli(colour_args(colour_data, run, "--steps", "40")) == 0
    pairs = load_pairs(colour_data / "test" / "input", colour_data / "test" / "target")
    style = [to_uint8_array(open_image(p).rgb) for p in list_images(colour_data / "style")]
    content = [to_uint8_array(open_image(p).rgb) for p in list_images(colour_data / "content")]
    methods = {
        "identity": lambda x: x,
        "colour": torch_method(load_generator(run)[0]),
        **baselines.classical_methods(style, content),
    }
    assert set(methods) - {"identity", "colour"} == set(CLASSICAL)
    scores, _ = score_methods(methods, pairs)
    best = max(CLASSICAL, key=lambda k: scores[k]["psnr"])
    assert scores["colour"]["psnr"] >= scores["identity"]["psnr"] + 3.0, scores
    assert scores["colour"]["psnr"] >= scores[best]["psnr"] - 0.5, (best, scores)


def test_monochrome_style_is_told_from_colour_photos_whatever_they_show():
    """The tone residual (colour not explained by lightness) is ~0 for B&W and toned prints
    and far above the threshold for colour photos, for every built-in colour look."""
    from styleforge.photo.looks import LOOKS, apply_look

    photos = [np.asarray(img) for img in _album_sample()]
    noir = baselines.pixels01([apply_look("noir", p) for p in photos])
    sepia = np.clip(noir[:, :1] * np.array([[1.0, 0.85, 0.62]]) + np.array([[0.06, 0.03, 0.0]]), 0, 1)
    assert baselines.is_monochrome(noir) and baselines.is_monochrome(sepia)
    for name in LOOKS:
        if name != "noir":
            styled = baselines.pixels01([apply_look(name, p) for p in photos])
            assert baselines.tone_residual(styled) > 2 * baselines.MONOCHROME_RESIDUAL, name
    # Grey levels: the grey's black and white points land on each channel's.
    scale, offset = baselines.grey_levels_fit(baselines.pixels01(photos), sepia)
    grey = baselines.pixels01(photos) @ baselines.GREY
    mapped = grey[:, None] * scale + offset
    np.testing.assert_allclose(np.quantile(mapped, [0.005, 0.995], axis=0),
                               np.quantile(sepia, [0.005, 0.995], axis=0), atol=1e-6)


def _album_sample():
    from PIL import Image

    from styleforge.photo.album import album_paths

    paths = album_paths()[:6]
    return [Image.open(p).convert("RGB").reduce(4) for p in paths]


def test_learned_noir_is_neutral_and_beats_every_classical_fit(tmp_path):
    """A monochrome style folder starts the generator from grey levels: held-out outputs carry no
    colour (mean C*ab <= 1.5, the issue's target) and beat the best classical transfer, none of
    which can drop colour, by >= 1.5 dB on held-out scene groups."""
    from styleforge.benchmarks.eval_looks import CLASSICAL, _mean_chroma
    from styleforge.benchmarks.scoring import load_pairs, score_methods, torch_method
    from styleforge.runtime.imageio import list_images, open_image, to_uint8_array

    data = make_dataset("noir", tmp_path / "noir", seed=0, size=64, show_progress=False)
    run = tmp_path / "run"
    assert cli(colour_args(data, run, "--steps", "40")) == 0
    assert json.loads((run / "verdict.json").read_text())["init_fit"].startswith("grey levels")
    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    style = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "style")]
    content = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "content")]
    methods = {"colour": torch_method(load_generator(run)[0]), **baselines.classical_methods(style, content)}
    scores, outputs = score_methods(methods, pairs)
    best = max(CLASSICAL, key=lambda k: scores[k]["psnr"])
    assert _mean_chroma(outputs["colour"]) <= 1.5
    assert scores["colour"]["psnr"] >= scores[best]["psnr"] + 1.5, (best, scores)


def test_affine_fit_recovers_a_colour_matrix_from_pairs():
    rng = np.random.default_rng(0)
    source = rng.random((500, 3))
    matrix = np.array([[0.5, 0.3, 0.1], [0.2, 0.7, 0.0], [0.1, 0.1, 0.6]])
    bias = np.array([0.05, -0.02, 0.1])
    fitted, fitted_bias = baselines.affine_fit(source, source @ matrix.T + bias)
    np.testing.assert_allclose(fitted, matrix, atol=1e-9)
    np.testing.assert_allclose(fitted_bias, bias, atol=1e-9)


def test_lattice_regression_sets_the_lut_residual_in_the_generators_layout():
    """The lattice of a known residual, written into the LUT, comes back out of the generator's
    colour function at other colours (red index fastest in the [c, b, g, r] lattice, like a .cube)."""
    rng = np.random.default_rng(0)
    points = rng.random((200_000, 3))

    def residual(p):
        return np.stack([0.1 * p[:, 0], 0.02 * p[:, 2] - 0.05 * p[:, 1], 0.2 * p[:, 2] * p[:, 0]], axis=1)

    model = ColourGenerator(curve_knots=8, lut_size=9)
    model.set_lut_residual(lattice_regression(points, residual(points), 9).table)
    probe = rng.random((1000, 3))
    with torch.no_grad():
        out = model.colour(torch.tensor(probe, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, np.clip(probe + residual(probe), 0, 1), atol=0.01)
    with pytest.raises(ValueError, match="LUT residual"):
        model.set_lut_residual(np.zeros((5, 5, 5, 3)))


def test_paired_colour_generator_starts_from_the_closed_form_fit_of_the_pairs(tmp_path):
    """--paired --model colour: the generator starts from the least-squares matrix and LUT residual
    of the pairs and refines it at a low rate, so two steps already turn noir's held-out photos grey
    (an identity start stays in colour, at identity's score)."""
    from styleforge.benchmarks.eval_looks import _mean_chroma
    from styleforge.benchmarks.scoring import load_pairs, score_methods, torch_method
    from styleforge.train.config import PAIRED_COLOUR_LR_G, read_yaml

    data = make_dataset("noir", tmp_path / "noir", seed=0, size=64, show_progress=False)
    run = tmp_path / "paired"
    assert cli(["train", "--paired", str(data / "paired"), "--model", "colour", "--preset", "tiny",
                "--steps", "2", "--out", str(run), "--quiet"]) == 0
    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    assert read_yaml(run / "config.yaml")["optim"]["lr_g"] == PAIRED_COLOUR_LR_G
    scores, outputs = score_methods({"identity": lambda x: x, "colour": torch_method(load_generator(run)[0])}, pairs)
    assert _mean_chroma(outputs["colour"]) <= 3.0
    assert scores["colour"]["psnr"] >= scores["identity"]["psnr"] + 10.0, scores  # measured +14


def test_paired_colour_run_ships_the_closed_form_fit_by_default(tmp_path, capsys):
    """--paired --model colour without --steps: no refinement step runs; the run's step-0 checkpoint
    is the closed-form fit of the pairs (the same numbers as fitting them directly), judged,
    evaluated and said on stderr. --steps 0 is refused for a generator without a fitted start."""
    from styleforge.train.config import read_yaml
    from styleforge.train.data import matching_pairs
    from styleforge.train.paired_fit import fit_colour_generator, pair_pixels

    data = make_dataset("teal-orange", tmp_path / "teal", seed=0, size=64, show_progress=False)
    run = tmp_path / "paired"
    assert cli(["train", "--paired", str(data / "paired"), "--model", "colour", "--preset", "tiny",
                "--out", str(run), "--quiet"]) == 0
    assert "closed-form fit of" in capsys.readouterr().err
    state, meta, _ = load_checkpoint(run)
    assert meta["step"] == 0 and (run / "verdict.json").is_file() and (run / "eval.json").is_file()
    shipped = load_generator(run)[0]
    direct = ColourGenerator(**read_yaml(run / "config.yaml")["model"]["generator_kwargs"]).eval()
    fit_colour_generator(direct, *pair_pixels(matching_pairs(data / "paired")))
    probe = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(shipped(probe), direct(probe), atol=1e-6)
    assert cli(["train", "--paired", str(data / "paired"), "--model", "resnet", "--preset", "tiny", "--steps", "0",
                "--out", str(tmp_path / "resnet"), "--quiet"]) != 0
    assert "steps must be >= 1" in capsys.readouterr().err


def test_paired_without_model_trains_the_colour_generator_for_a_colour_look(colour_data, tmp_path, capsys):
    """--paired with no --model: the run fits a look recipe to film-warm's pairs; no local operator
    earns its place on the held-out pairs (the look is a colour function), so it trains the colour
    generator and says so, with what each operator was worth. (A local look shipping a recipe:
    tests/export/test_recipe_bundle.py.)"""
    from styleforge.train.config import read_yaml

    run = tmp_path / "run-colour"
    assert cli(["train", "--paired", str(colour_data / "paired"), "--preset", "tiny", "--steps", "1",
                "--out", str(run), "--quiet"]) == 0
    assert read_yaml(run / "config.yaml")["model"]["generator"] == "colour"
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("paired:")]
    assert lines[0].startswith("paired: recipe: closed-form colour fit"), lines
    assert {op for op in ("smooth_skin", "clarity", "sharpen", "bloom", "fade", "vignette")
            if any(f" {op} " in x and "worth" in x for x in lines)} == {"smooth_skin", "clarity", "sharpen", "bloom",
                                                                     "fade", "vignette"}
    assert "colour function" in lines[-2], lines
    assert lines[-1].startswith("paired: colour: closed-form fit of"), lines  # then refined for the 1 step given


def test_shrink_moves_each_candidate_toward_the_classical_start():
    """model.shrink t ships start + t * (trained - start), weight by weight: 1 is the trained model
    itself, 0 the start, and the curves stay monotone in between (0.25, the default, included)."""
    from styleforge.train.config import ConfigError, apply_override, preset_config, validate
    from styleforge.train.objectives.colour import ColourObjective

    with pytest.raises(ConfigError, match="model.shrink"):
        validate(apply_override(preset_config("tiny"), "model.shrink=1.5"))
    objective = ColourObjective(apply_override(preset_config("tiny"), "model.shrink=0.5"))
    trained = ColourGenerator(**objective.networks["generator"].config)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.3 * torch.randn_like(p))
    start = objective.networks["generator_init"].state_dict()
    shrunk = objective._shrunk(trained)
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(shrunk.state_dict()[key], 0.5 * (start[key] + value))
    for curves in (shrunk.pre, shrunk.post):
        values = curves.values()
        assert bool((values[:, 1:] >= values[:, :-1]).all())
    assert ColourObjective(apply_override(preset_config("tiny"), "model.shrink=1"))._shrunk(trained) is trained
    assert preset_config("tiny").model.shrink == 0.25


def test_default_ships_the_shrunk_last_ema_and_criterion_ships_its_pick(colour_data, tmp_path):
    """On the album's 3-4 scene groups a side the evidence is not enough to weigh: the start is
    the levels fit and the shipped generator that start plus a quarter of the way to the last EMA
    generator, weight by weight (what eval-looks measures); --set model.select=criterion ships
    the candidate with the best unsupervised score instead, the start included."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    assert cli(colour_args(colour_data, run)) == 0
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["evidence"]["enough"] is False and verdict["init_fit"].startswith("levels (fewer than 5")
    assert verdict["shrink"] == 0.25 and verdict["anchor_weight"] == 3.0
    freedom = 0.25
    final = run / "checkpoints" / "step_0000020"
    start, ema, shipped = (load_file(final / f"{name}.safetensors")
                           for name in ("generator_init", "generator_ema", "generator_selected"))
    assert any(not torch.equal(start[key], ema[key]) for key in start)
    for key in shipped:
        torch.testing.assert_close(shipped[key], start[key] + freedom * (ema[key] - start[key]), atol=1e-4, rtol=1e-4)


    picked = tmp_path / "criterion"
    assert cli(colour_args(colour_data, picked, "--set", "model.select=criterion")) == 0
    verdict = json.loads((picked / "verdict.json").read_text())
    assert verdict["selected"] == min(verdict["selection"], key=lambda r: r["score"])


def test_evidence_sets_the_start_and_the_freedom_from_enough_scene_groups(tmp_path):
    """Eight corpus photos a side, each its own scene: the start is the evidence fit, and the
    shipped share of the adversarial change and the anchor follow its freedom; model.freedom=fixed
    ships model.shrink of it with the configured anchor."""
    from PIL import Image

    from styleforge.photo.corpus import corpus_photos
    from styleforge.photo.looks import apply_look

    photos = [p.path for p in corpus_photos() if not p.people][:16]
    for side, chosen in (("content", photos[:8]), ("style", photos[8:])):
        (tmp_path / side).mkdir()
        for path in chosen:
            rgb = np.asarray(Image.open(path).convert("RGB").resize((96, 64)))
            Image.fromarray(apply_look("film-warm", rgb) if side == "style" else rgb).save(tmp_path / side / f"{path.stem}.png")
    run = tmp_path / "run"
    assert cli(["train", "--content", str(tmp_path / "content"), "--style", str(tmp_path / "style"),
                "--out", str(run), "--preset", "tiny", "--quiet"]) == 0
    verdict = json.loads((run / "verdict.json").read_text())
    evidence = verdict["evidence"]
    assert verdict["init_fit"] == "evidence" and evidence["enough"] and evidence["groups"] == {"content": 8, "style": 8}
    assert set(evidence["kept"]) == {"affine", "curves"} and min(evidence["kept"]["affine"]) > 0.0
    freedom = evidence["freedom"]
    assert verdict["shrink"] == round(freedom, 4)
    assert verdict["anchor_weight"] == pytest.approx(3.0 * (1.0 - freedom), abs=1e-3)
    fixed = tmp_path / "fixed"
    assert cli(["train", "--content", str(tmp_path / "content"), "--style", str(tmp_path / "style"),
                "--out", str(fixed), "--preset", "tiny", "--quiet", "--set", "model.freedom=fixed"]) == 0
    verdict = json.loads((fixed / "verdict.json").read_text())
    assert verdict["init_fit"] == "evidence" and verdict["shrink"] == 0.25 and verdict["anchor_weight"] == 3.0


def test_a_single_before_after_pair_is_enough_for_a_tone_look(colour_data, tmp_path):
    """One pair (the first content photo of film-warm and its looked version) trains the paired
    colour generator, and its closed-form start carries the look to held-out scenes far beyond
    doing nothing (README, "A few pairs beat two folders")."""
    import shutil

    from styleforge.benchmarks.scoring import load_pairs, score_methods, torch_method
    from styleforge.train.config import read_yaml

    one = tmp_path / "one-pair"
    first = sorted((colour_data / "paired" / "A").iterdir())[0]
    for side in ("A", "B"):
        (one / side).mkdir(parents=True)
        shutil.copy(colour_data / "paired" / side / first.name, one / side / first.name)
    run = tmp_path / "run"
    assert cli(["train", "--paired", str(one), "--preset", "tiny", "--steps", "1", "--out", str(run), "--quiet"]) == 0
    assert read_yaml(run / "config.yaml")["model"]["generator"] == "colour"
    pairs = load_pairs(colour_data / "test" / "input", colour_data / "test" / "target")
    scores, _ = score_methods({"identity": lambda x: x, "one pair": torch_method(load_generator(run)[0])}, pairs)
    assert scores["one pair"]["psnr"] >= scores["identity"]["psnr"] + 5.0, scores  # measured +8.9


def test_pair_pixels_take_the_same_places_of_a_and_b_without_resampling(tmp_path):
    """A colour fit reads pixels, not pictures: a pair of the same size gives A's and B's pixels at
    the same places, unresampled (B is exactly the look of A there); B of another size is resized
    to A (short side 256); an unreadable pair is skipped."""
    from PIL import Image

    from styleforge.train.paired_fit import pair_pixels

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    look = lambda x: (255 - x[..., ::-1])  # noqa: E731  a colour function, exact in uint8
    for name, b in (("same", look(a)), ("other", np.asarray(Image.fromarray(look(a)).resize((210, 150))))):
        (tmp_path / "A").mkdir(exist_ok=True)
        (tmp_path / "B").mkdir(exist_ok=True)
        Image.fromarray(a).save(tmp_path / "A" / f"{name}.png")
        Image.fromarray(b).save(tmp_path / "B" / f"{name}.png")
    (tmp_path / "A" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "B" / "broken.png").write_bytes(b"not a png")
    pairs = [(tmp_path / "A" / f"{n}.png", tmp_path / "B" / f"{n}.png") for n in ("broken", "other", "same")]
    before, after, photo = pair_pixels(pairs)
    assert set(np.unique(photo)) == {0, 1} and not before.flags.writeable
    same = photo == 1
    assert same.sum() > 0.2 * 300 * 420  # full size, not 256 px: all 126000 pixels here
    np.testing.assert_array_equal(np.rint(after[same] * 255), 255 - np.rint(before[same] * 255)[:, ::-1])
    assert (photo == 0).sum() <= 256 * 359  # the other-size pair at short side 256
