"""``styleforge export`` from a training run and from a user's own module:factory + weights."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from styleforge.cli import main
from styleforge.runtime.manifest import load_manifest

USER_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Toner(nn.Module):
        '''float32 [N, 3, H, W] in [-1, 1] -> same: a learned per-pixel colour change.'''

        def __init__(self):
            super().__init__()
            self.mix = nn.Conv2d(3, 3, 1)
            self.refine = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

        def forward(self, x):
            return torch.tanh(self.mix(x) + self.refine(x))

    def build():
        return Toner()
    """
)


def test_exports_a_user_model_with_its_weights(tmp_path, capsys):
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    (tmp_path / "my_nets.py").write_text(USER_MODULE)
    namespace: dict = {}
    exec(compile(USER_MODULE, "my_nets", "exec"), namespace)
    torch.manual_seed(3)
    trained = namespace["build"]().eval()
    save_file(trained.state_dict(), str(tmp_path / "toner.safetensors"))

    out = tmp_path / "dist" / "toner"
    rc = main(["export", "--model", f"{tmp_path / 'my_nets.py'}:build", "--weights",
               str(tmp_path / "toner.safetensors"), "--formats", "onnx", "--size", "64x96",
               "--out", str(out), "--style", "my-look", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    manifest = load_manifest(out)
    assert manifest.style == "my-look" and set(manifest.artifacts) == {"torchscript", "onnx"}
    assert manifest.artifacts["onnx"].input.shape == (1, 3, 64, 96)
    assert manifest.artifacts["onnx"].fidelity["psnr"] >= 60
    assert manifest.provenance["weights"].endswith("toner.safetensors")
    # The reference output is the *loaded* weights' result, not a fresh model's.
    ref = manifest.references[0]
    x = np.asarray(Image.open(out / ref["input"]), np.float32) / 127.5 - 1
    want = np.asarray(Image.open(out / ref["output"]), np.float32)
    with torch.no_grad():
        y = trained(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs((y + 1) * 127.5 - want).max() <= 1.0


def test_exports_a_training_run(tiny_generator, tmp_path, capsys):
    from styleforge.train.checkpoint import save_checkpoint

    run = tmp_path / "runs" / "warm"
    meta = {"generator": {"arch": tiny_generator.arch_name, "config": tiny_generator.config},
            "style": "film-warm", "run": {"seed": 0}}
    save_checkpoint(run, 120, {"generator": tiny_generator.state_dict()}, meta)
    out = tmp_path / "bundle"
    assert main(["export", str(run), "--formats", "onnx", "--size", "64", "--out", str(out), "--quiet"]) == 0
    manifest = load_manifest(out)
    assert manifest.style == "film-warm"
    assert manifest.provenance["step"] == 120 and manifest.provenance["arch"] == tiny_generator.arch_name
    assert manifest.model["config"] == tiny_generator.config


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to export"),
        (["--model", "nocolon"], "MODULE:FACTORY"),
        (["--model", "json:loads", "--bound", "tflite_int8"], "KEY=DB"),
        (["--model", "json:loads", "--formats", "onnx,gguf"], "unknown gguf"),
        (["--model", "json:loads", "--size", "big"], "--size"),
        (["missing-run-folder"], "no such run"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_existing_bundle_needs_force(tmp_path, capsys):
    out = tmp_path / "b"
    out.mkdir()
    (tmp_path / "m.py").write_text(USER_MODULE)
    assert main(["export", "--model", f"{tmp_path / 'm.py'}:build", "--out", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert list(out.iterdir()) == []
