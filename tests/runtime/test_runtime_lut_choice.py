"""Which artifact ``auto`` runs: the LUT of a colour model's bundle, never a bundle's TorchScript.

The bundle is exported from a real (small, perturbed) ``ColourGenerator``: TorchScript, the
gated ``look.cube`` + HALD and the LUT's ONNX gather graph. ``stylize``, ``bench`` and
``open_bundle`` must pick the LUT by default; ``model.pt`` runs only when asked for,
with a one-line note; a bundle whose only model is TorchScript says how to run it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import open_bundle
from styleforge.runtime.backends import BackendError
from styleforge.runtime.stylizer import TORCHSCRIPT_NOTE

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def colour_bundle(tmp_path_factory):
    from styleforge.export.bundle import export_bundle
    from styleforge.train.models.colour import ColourGenerator

    torch.manual_seed(0)
    model = ColourGenerator(curve_knots=8, lut_size=9)
    with torch.no_grad():  # a warm, contrasty look instead of the identity it starts as
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("colour") / "warm"
    export_bundle(model.eval(), out, formats=("onnx",), size=(64, 64), style="warm", progress=False)
    return out


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from styleforge.photo.album import album_paths

    return np.asarray(Image.open(album_paths()[0]).convert("RGB").resize((203, 151)))


def test_auto_runs_the_lut_and_torchscript_only_when_asked(colour_bundle, photo, capfd):
    manifest = json.loads((colour_bundle / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"torchscript", "lut_cube", "lut_hald", "lut_onnx"}
    auto = open_bundle(colour_bundle)
    assert auto.info()["backend"] == "lut" and auto.artifact.key == "lut_cube"
    assert "TorchScript" not in capfd.readouterr().err
    styled = auto.stylize(photo)
    assert np.abs(styled.astype(int) - photo).mean() > 3  # the look changed the photo

    scripted = open_bundle(colour_bundle, artifact="torch")
    assert scripted.backend.name == "torch"
    note = capfd.readouterr().err
    assert note.strip() == TORCHSCRIPT_NOTE.format(path=colour_bundle / "model.pt")
    # The reference agrees with the LUT baked from it (a 33^3 resampling of the model's function).
    assert np.abs(scripted.stylize(photo).astype(int) - styled).mean() < 1.0
    graph = open_bundle(colour_bundle, backend="onnxruntime")
    assert graph.artifact.key == "lut_onnx"
    assert np.abs(graph.stylize(photo).astype(int) - styled).max() <= 1


def test_a_torchscript_only_bundle_is_not_loaded_by_auto(tiny_bundle, tmp_path):
    copy = tmp_path / "scripted"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["artifacts"] = {"torchscript": manifest["artifacts"]["torchscript"]}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackendError, match="--artifact torch"):
        open_bundle(copy)
    assert open_bundle(copy, artifact="torch").backend.name == "torch"


def test_stylize_and_bench_take_the_lut(colour_bundle, photo, tmp_path, capsys):
    from styleforge.cli import main

    Image.fromarray(photo).save(tmp_path / "p.png")
    assert main(["stylize", str(colour_bundle), str(tmp_path / "p.png"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert "(lut_cube on lut)" in capsys.readouterr().out
    assert main(["bench", str(colour_bundle), "--runs", "1", "--warmup", "0", "--size", "64x64",
                 "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert {c["artifact"] for c in result["cells"]} >= {"lut_cube", "lut_onnx"}
    assert "torchscript" not in {c["artifact"] for c in result["cells"]}
    assert any("TorchScript not benchmarked" in n for n in result["notes"])
