"""distill --student lut: a colour-function teacher is reproduced as a LUT (and ships as .cube);
a local teacher is reported as not a colour function."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from styleforge.cli import main as cli
from styleforge.photo.album import album_paths

TEACHERS = '''
import torch
from torch import nn
import torch.nn.functional as F


class Grade(nn.Module):
    """A colour function: gamma per channel, then a channel mix (a 'look' a LUT can hold exactly)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        u = ((x + 1) / 2).clamp(0, 1)
        u = torch.stack([u[:, 0] ** 0.7, u[:, 1] ** 1.0, u[:, 2] ** 1.4], 1)
        mix = torch.tensor([[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, 0.2, 0.8]])
        return (torch.einsum("ij,njhw->nihw", mix, u) * 2 - 1 + 0 * self.dummy).clamp(-1, 1)


class Blur(nn.Module):
    """A local effect: a 9x9 box blur, which no colour function can reproduce."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.avg_pool2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), 9, 1) + 0 * self.dummy


def grade():
    return Grade()


def blur():
    return Blur()
'''


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("lutstudent")
    (root / "teachers.py").write_text(TEACHERS)
    content, heldout = root / "content", root / "heldout"
    content.mkdir()
    heldout.mkdir()
    for i, path in enumerate(album_paths()[:12]):
        img = Image.open(path).convert("RGB")
        img.thumbnail((160, 160))
        img.save((content if i < 8 else heldout) / f"{path.stem}.png")
    return root


def test_a_colour_teacher_becomes_a_lut_and_ships_as_cube(photos, tmp_path, capsys):
    out = tmp_path / "lut"
    assert cli(["distill", "--teacher", f"{photos / 'teachers.py'}:grade", "--content", str(photos / "content"),
                "--heldout", str(photos / "heldout"), "--student", "lut", "--steps", "300",
                "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["colour_function_share_db"] >= 38.0, report["heldout"]
    assert "ship it as a .cube" in printed
    assert json.loads((out / "verdict.json").read_text())["ok"]
    bundle = tmp_path / "bundle"
    assert cli(["export", str(out), "--formats", "cube", "--heldout", str(photos / "heldout"),
                "--out", str(bundle), "--quiet"]) == 0
    assert (bundle / "look.cube").stat().st_size > 10_000


def test_a_local_teacher_is_not_a_colour_function(photos, tmp_path, capsys):
    out = tmp_path / "lut"
    assert cli(["distill", "--teacher", f"{photos / 'teachers.py'}:blur", "--content", str(photos / "content"),
                "--heldout", str(photos / "heldout"), "--student", "lut", "--steps", "150",
                "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["colour_function_share_db"] < 35.0
    assert "not a colour function" in capsys.readouterr().out
