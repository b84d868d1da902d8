"""Bring-your-own teachers: module:factory + weights, TorchScript, value-range wrapping."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from styleforge.cli import main as styleforge
from styleforge.photo.album import album_paths
from styleforge.train.teachers import TeacherError, load_teacher, parse_range

# A teacher written the way other projects write them: [0, 1] in and out, its own class.
TEACHER_SOURCE = textwrap.dedent(
    '''
    import torch
    from torch import nn

    class ZeroOneNet(nn.Module):
        """[N,3,H,W] in [0,1] -> [0,1]: a 3x3 conv and a sigmoid."""
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 8, 3, padding=1)
            self.head = nn.Conv2d(8, 3, 1)
            self.distill_points = ("body",)

        def forward(self, x):
            return torch.sigmoid(self.head(torch.relu(self.body(x))) + 4 * (x - 0.5))

    def make():
        return ZeroOneNet()
    '''
)


@pytest.fixture()
def teacher_module(tmp_path, monkeypatch):
    (tmp_path / "byo_teacher_mod.py").write_text(TEACHER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("byo_teacher_mod")
    torch.manual_seed(3)
    reference = module.make().eval()
    return module, reference


def _expected(reference, x):
    """What a [0,1] teacher should give for [-1,1] input, converted back to [-1,1]."""
    with torch.no_grad():
        return reference((x + 1) / 2) * 2 - 1


def test_parse_range():
    assert parse_range("0,1") == (0.0, 1.0) and parse_range("-1, 1") == (-1.0, 1.0)
    with pytest.raises(TeacherError):
        parse_range("1,0")
    with pytest.raises(TeacherError):
        parse_range("zero,one")


def test_factory_teacher_with_safetensors_weights(tmp_path, teacher_module):
    _, reference = teacher_module
    weights = tmp_path / "teacher.safetensors"
    save_file(reference.state_dict(), str(weights))
    wrapper, info = load_teacher("byo_teacher_mod:make", weights, input_range="0,1")
    assert info["kind"] == "factory" and info["arch"] == "ZeroOneNet" and info["distill_points"] == ["body"]
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    torch.testing.assert_close(wrapper(x), _expected(reference, x), atol=1e-6, rtol=0)
    assert not any(p.requires_grad for p in wrapper.parameters())
    # Declaring the wrong range gives a different (wrong) picture: the wrapper really converts.
    wrong, _ = load_teacher("byo_teacher_mod:make", weights, input_range="-1,1")
    assert (wrong(x) - wrapper(x)).abs().max() > 0.05


def test_factory_teacher_from_file_and_wrapped_pt(tmp_path, teacher_module):
    _, reference = teacher_module
    source = tmp_path / "my_net.py"
    source.write_text(TEACHER_SOURCE)
    weights = tmp_path / "teacher.pth"
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}  # saved from DDP
    torch.save({"params_ema": state, "iter": 5}, weights)
    wrapper, _ = load_teacher(f"{source}:make", weights, input_range="0,1")
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    torch.testing.assert_close(wrapper(x), _expected(reference, x), atol=1e-6, rtol=0)


def test_weights_with_pickled_code_are_refused(tmp_path, teacher_module):
    _, reference = teacher_module
    pickled = tmp_path / "whole_model.pt"
    torch.save(reference, pickled)  # a pickled module object, not a state dict
    with pytest.raises(TeacherError, match="not a plain weights file"):
        load_teacher("byo_teacher_mod:make", pickled)


def test_bad_specs_say_what_is_wrong(tmp_path):
    with pytest.raises(TeacherError, match="cannot import"):
        load_teacher("no_such_module_xyz:make")
    with pytest.raises(TeacherError, match="not a styleforge run"):
        load_teacher(str(tmp_path / "missing"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(TeacherError, match="not a TorchScript file"):
        load_teacher(junk)


def test_torchscript_teacher_distills_with_range_conversion(tmp_path, teacher_module):
    _, reference = teacher_module
    scripted = tmp_path / "teacher_ts.pt"
    torch.jit.trace(reference, torch.rand(1, 3, 16, 16)).save(str(scripted))
    wrapper, info = load_teacher(scripted, input_range="0,1")
    assert info["kind"] == "torchscript" and info["distill_points"] == []
    x = torch.rand(1, 3, 24, 16) * 2 - 1
    torch.testing.assert_close(wrapper(x), _expected(reference, x), atol=1e-5, rtol=0)

    content = tmp_path / "content"
    content.mkdir()
    for path in album_paths()[:2]:
        img = Image.open(path).convert("RGB")
        img.thumbnail((96, 96))
        img.save(content / f"{path.stem}.png")
    out = tmp_path / "run"
    rc = styleforge(["distill", "--preset", "tiny", "--no-progress", "--teacher", str(scripted),
                     "--teacher-range", "0,1", "--content", str(content), "--out", str(out), "--steps", "2"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["teacher"]["macs"] is None  # hooks cannot see inside a scripted graph
    assert report["teacher"]["params"] == sum(p.numel() for p in reference.parameters())
    meta = json.loads(next((out / "checkpoints").glob("step_*/meta.json")).read_text())
    assert meta["run"]["teacher"]["input_range"] == [0.0, 1.0]
    assert meta["adapters"]["pairs"] == []
    assert Path(meta["run"]["teacher"]["spec"]) == scripted
