"""Degenerate models are named and refused: by the verdict's checks, by distill and by export."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main as cli
from styleforge.photo.album import album_paths
from styleforge.photo.looks import LOOKS, apply_look
from styleforge.photo.verdict import MIN_STRUCTURE, assess
from styleforge.runtime.imageio import open_image, to_uint8_array

COLLAPSED_MODEL = '''
import torch
from torch import nn


class FlatBlue(nn.Module):
    """Any photo -> the same flat blue image (a collapsed GAN), [-1, 1] NCHW."""

    def __init__(self):
        super().__init__()
        self.colour = nn.Parameter(torch.tensor([-0.8, -0.5, 0.6]).view(1, 3, 1, 1))

    def forward(self, x):
        return self.colour.expand_as(x) + 0.0 * x


def build():
    return FlatBlue()
'''


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [to_uint8_array(open_image(p).rgb.resize((192, 144))) for p in album_paths()[:10]]


@pytest.mark.parametrize("look", list(LOOKS))
def test_every_built_in_look_passes(photos, look):
    verdict = assess(photos, [apply_look(look, p) for p in photos], expected_change_levels=20.0)
    assert verdict.ok, (look, verdict.summary())


def test_constant_noise_and_do_nothing_models_fail(photos):
    rng = np.random.default_rng(0)
    flat = assess(photos, [np.full_like(p, (30, 60, 200)) for p in photos])
    assert flat.failed == ("collapse",) and flat.diversity < 0.05
    noise = assess(photos, [rng.integers(0, 256, p.shape, dtype=np.uint8) for p in photos])
    assert "structure" in noise.failed and noise.structure < MIN_STRUCTURE
    shuffled = assess(photos, [rng.permutation(p.reshape(-1, 3)).reshape(p.shape) for p in photos])
    assert shuffled.failed == ("structure",)
    lazy = assess(photos, photos, expected_change_levels=20.0)
    assert lazy.failed == ("no-op",) and "does nothing" in lazy.message()
    assert assess(photos, photos, expected_change_levels=1.0).ok  # the folders hardly differ: fine


@pytest.fixture
def collapsed_module(tmp_path, monkeypatch):
    (tmp_path / "collapsed_net.py").write_text(COLLAPSED_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "collapsed_net:build"


def test_distill_and_export_refuse_a_collapsed_model(collapsed_module, tmp_path, capsys):
    content = tmp_path / "content"
    content.mkdir()
    for path in album_paths()[:4]:
        Image.open(path).convert("RGB").resize((96, 72)).save(content / f"{path.stem}.png")

    distill = ["distill", "--teacher", collapsed_module, "--content", str(content), "--preset", "tiny",
               "--out", str(tmp_path / "student"), "--steps", "2", "--quiet"]
    assert cli(distill) == 2
    err = capsys.readouterr().err
    assert "degenerate" in err and "diversity" in err and "--allow-degenerate" in err
    assert not (tmp_path / "student" / "checkpoints").exists()

    export = ["export", "--model", collapsed_module, "--formats", "onnx", "--size", "64x64",
              "--heldout", str(content), "--out", str(tmp_path / "bundle"), "--quiet"]
    assert cli(export) == 2
    err = capsys.readouterr().err
    assert "degenerate" in err and "collapse" in err
    assert not (tmp_path / "bundle").exists()

    # The user can insist; the verdict travels with the run.
    assert cli([*distill, "--allow-degenerate"]) == 0
    assert "going on" in capsys.readouterr().err
    assert cli(["export", str(tmp_path / "student"), "--formats", "onnx", "--size", "64x64",
                "--heldout", str(content), "--out", str(tmp_path / "bundle2"), "--quiet"]) == 2
    assert "degenerate" in capsys.readouterr().err


def _zero_weights(run) -> list:
    """Zero every tensor of the run's newest checkpoint's generator files (a run broken after train)."""
    from safetensors.torch import load_file, save_file

    from styleforge.train.checkpoint import latest_checkpoint

    files = sorted(latest_checkpoint(run).glob("generator*.safetensors"))
    for path in files:
        save_file({k: v * 0 for k, v in load_file(str(path)).items()}, str(path))
    return files


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny colour run trained by ``styleforge train`` (its verdict bound to its weights) and its photos."""
    from styleforge.photo.dataset import make_dataset

    root = tmp_path_factory.mktemp("bound")
    data = make_dataset("film-warm", root / "film-warm", seed=0, size=64, show_progress=False)
    run = root / "run"
    assert cli(["train", "--content", str(data / "content"), "--style", str(data / "style"), "--out", str(run),
                "--preset", "tiny", "--quiet"]) == 0
    return run, data / "content"


def test_a_verdict_is_bound_to_the_weights_it_judged(trained_run, tmp_path, capsys):
    import json
    import shutil

    from styleforge.photo.verdict import bound_verdict, weights_sha256

    original, content = trained_run
    run = tmp_path / "run"
    shutil.copytree(original, run)
    record = json.loads((run / "verdict.json").read_text())
    (key, sha), = record["weights"].items()
    assert key.endswith("generator_selected.safetensors") and sha == weights_sha256(run / key)
    assert bound_verdict(run, run / key).verdict.ok

    # Untouched: distill and export trust the stored verdict (no re-judging).
    capsys.readouterr()
    export = ["export", str(run), "--formats", "onnx", "--size", "64x64", "--heldout", str(content), "--quiet"]
    assert cli([*export, "--out", str(tmp_path / "ok")]) == 0
    assert "re-judged" not in capsys.readouterr().out

    # Zeroed after train: re-judged (one line), refused with one line, the fresh verdict written.
    _zero_weights(run)
    assert "changed since its verdict" in bound_verdict(run, run / key).stale
    assert cli([*export, "--out", str(tmp_path / "zeroed")]) == 2
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if "re-judged" in line]) == 1, out
    assert err.count("\n") == 1 and "degenerate" in err and "--allow-degenerate" in err, err
    assert not (tmp_path / "zeroed").exists()
    fresh = json.loads((run / "verdict.json").read_text())
    assert not fresh["ok"] and fresh["weights"] == {key: weights_sha256(run / key)}
    distill = ["distill", "--teacher", str(run), "--content", str(content), "--preset", "tiny",
               "--student", "lut", "--out", str(tmp_path / "student"), "--quiet"]
    assert cli(distill) == 2  # the fresh verdict is bound now: refused without re-judging
    out, err = capsys.readouterr()
    assert "re-judged" not in out and "degenerate" in err and err.count("\n") == 1, (out, err)
    assert not (tmp_path / "student" / "checkpoints").exists()
    assert cli([*export, "--out", str(tmp_path / "insisted"), "--allow-degenerate"]) == 0


def test_an_old_verdict_without_a_hash_is_re_judged(trained_run, tmp_path, capsys):
    import json
    import shutil

    original, content = trained_run
    run = tmp_path / "run"
    shutil.copytree(original, run)
    record = json.loads((run / "verdict.json").read_text())
    record.pop("weights")
    (run / "verdict.json").write_text(json.dumps(record))
    _zero_weights(run)  # an old run broken after train: its hashless verdict says "ok"
    distill = ["distill", "--teacher", str(run), "--content", str(content), "--preset", "tiny",
               "--student", "lut", "--out", str(tmp_path / "student"), "--quiet"]
    capsys.readouterr()
    assert cli(distill) == 2
    out, err = capsys.readouterr()
    assert "re-judged" in out and "no weights hash" in out and "degenerate" in err, (out, err)
    assert "weights" in json.loads((run / "verdict.json").read_text())
