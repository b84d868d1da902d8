"""``styleforge info``: registry specs, presets, JSON output, run folders and clear errors."""

from __future__ import annotations

import json

import pytest

from styleforge.cli import main
from styleforge.train.cli_models import parse_model_spec, parse_size


def run_info(capsys, *argv) -> tuple[int, str, str]:
    code = main(["info", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_spec_and_size_parsing():
    assert parse_model_spec("resnet:ngf=32,n_blocks=6,norm=batch") == (
        "resnet", {"ngf": 32, "n_blocks": 6, "norm": "batch"})
    assert parse_model_spec("mobile:small,width_mult=0.75") == ("mobile", {"preset": "small", "width_mult": 0.75})
    assert parse_model_spec("patchgan:spectral_norm=true") == ("patchgan", {"spectral_norm": True})
    assert parse_size("512") == (512, 512) and parse_size("384x640") == (384, 640)


def test_info_json_for_mobile_preset(capsys):
    code, out, _ = run_info(capsys, "mobile", "--preset", "small", "--size", "512", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["arch"] == "mobile" and report["config"]["preset"] == "small"
    assert report["size"] == [512, 512] and report["stride"] == 8
    assert 0 < report["gmacs"] <= 1.0 and report["macs"] == round(report["gmacs"] * 1e9)
    assert 50_000 < report["params"] < 1_000_000


def test_info_text_for_teacher_and_discriminator(capsys):
    code, out, _ = run_info(capsys, "resnet:ngf=64,n_blocks=9", "--size", "256", "--convention", "torchprofile")
    assert code == 0
    assert "11,378,179" in out and "56.799 GMAC at 256x256" in out
    code, out, _ = run_info(capsys, "patchgan", "--discriminator", "--size", "256")
    assert code == 0 and out.startswith("patchgan (")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nosuchmodel"], "unknown generator 'nosuchmodel'"),
        (["mobile:huge"], "preset 'huge'"),
        (["resnet:depth=3"], "unexpected keyword argument 'depth'"),
        (["mobile", "--size", "100"], "multiples of 8"),
        (["mobile", "--size", "big"], "--size"),
    ],
)
def test_info_errors_are_one_line(capsys, argv, message):
    code, out, err = run_info(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_info_reads_a_run_folder(tmp_path, capsys):
    import torch

    from styleforge.train.checkpoint import save_checkpoint
    from styleforge.train.models.registry import build_generator

    torch.manual_seed(0)
    model = build_generator("mobile", preset="nano")
    meta = {"generator": {"arch": model.arch_name, "config": model.config}, "style": "film-warm"}
    save_checkpoint(tmp_path / "run", 120, {"generator": model.state_dict()}, meta)
    code, out, _ = run_info(capsys, str(tmp_path / "run"), "--size", "64", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["arch"] == "mobile" and report["config"]["preset"] == "nano"
    assert report["style"] == "film-warm" and report["step"] == 120
    assert report["params"] == sum(p.numel() for p in model.parameters())
