"""Config resolution, atomic checkpoints with keep-K, the JSONL log, loss plot and sample grids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.runtime.imageio import open_image
from styleforge.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_generator,
    save_checkpoint,
)
from styleforge.train.config import (
    PRESETS,
    RESNET_PRESETS,
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
)
from styleforge.train.models.registry import build_generator
from styleforge.train.runlog import RunLogger, plot_losses, read_log, save_image_grid


def test_presets_and_overrides(tmp_path):
    assert set(PRESETS) == set(RESNET_PRESETS) == {"tiny", "cpu", "gpu"}
    assert PRESETS["cpu"].model.generator == "colour"  # the default for unpaired looks
    assert load_config("cpu", generator="resnet") == RESNET_PRESETS["cpu"]
    gpu = RESNET_PRESETS["gpu"]
    assert gpu.model.generator_kwargs == {"ngf": 64, "n_blocks": 9} and gpu.data.patch_size == 256
    assert gpu.data.batch_size == 8 and gpu.amp
    assert (gpu.optim.lr_g, gpu.optim.beta1, gpu.optim.beta2) == (2e-4, 0.5, 0.999)

    path = tmp_path / "c.yaml"
    path.write_text("steps: 50\nloss:\n  gan: hinge\n  r1_gamma: 1\nmodel:\n  generator_kwargs: {ngf: 4, n_blocks: 1}\n")
    config = load_config("tiny", path, ["optim.ema_decay=0.9", "model.generator_kwargs.ngf=6"], generator="resnet")
    assert config.steps == 50 and config.loss.gan == "hinge" and config.loss.r1_gamma == 1.0
    assert config.model.generator_kwargs == {"ngf": 6, "n_blocks": 1} and config.optim.ema_decay == 0.9
    assert config_from_dict(config_to_dict(config)) == config  # the saved config round-trips

    for overrides, message in [(["optim.nope=1"], "optim.nope"), (["steps=1.5"], "integer"),
                               (["amp=maybe"], "true/false"), (["steps"], "key.path=value"),
                               (["optim.ema_decay=1.0"], "ema_decay")]:
        with pytest.raises(ConfigError, match=message):
            load_config("tiny", overrides=overrides)
    path.write_text("lossy: {}\n")
    with pytest.raises(ConfigError, match="lossy"):
        load_config("cpu", path)
    with pytest.raises(ConfigError, match="preset"):
        load_config("huge")


def test_checkpoints_are_atomic_keep_k_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_generator("resnet", ngf=4, n_blocks=1)
    meta = {"generator": {"arch": model.arch_name, "config": model.config}, "style": "noir"}
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    opt.step()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"generator": model.state_dict()}, meta,
                        {"optimizers": {"g": opt.state_dict()}}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_0000003", "step_0000004"]
    assert latest_checkpoint(tmp_path).name == "step_0000004"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []
    # A half-written checkpoint (no meta.json) is never picked up.
    (tmp_path / "checkpoints" / "step_0000009").mkdir()
    assert latest_checkpoint(tmp_path).name == "step_0000004"

    weights, meta_back, state = load_checkpoint(tmp_path)
    assert meta_back["step"] == 4 and meta_back["style"] == "noir"
    assert torch.equal(state["optimizers"]["g"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    loaded, info = load_generator(tmp_path / "checkpoints" / "step_0000004" / "generator.safetensors")
    assert info["config"] == model.config and info["style"] == "noir" and info["step"] == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    (tmp_path / "checkpoints" / "step_0000004" / "meta.json").write_text(json.dumps({"step": 4}))
    with pytest.raises(CheckpointError, match="which generator"):
        load_generator(tmp_path)


def test_missing_run_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such run"):
        load_checkpoint(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints"):
        load_generator(tmp_path / "empty")


def test_run_logger_resume_truncates_and_plot(tmp_path):
    logger = RunLogger(tmp_path)
    for step in (10, 20, 30):
        logger.log(step, g=1.0 / step, d=0.5, lr_g=2e-4)
    logger.log(40, g=float("nan"), d=0.4)
    assert [r["step"] for r in read_log(tmp_path / "log.jsonl")] == [10, 20, 30, 40]
    assert read_log(tmp_path / "log.jsonl")[-1]["g"] is None  # NaN is written as null

    RunLogger(tmp_path, resume_from=20).log(30, g=0.3, d=0.3)
    rows = read_log(tmp_path / "log.jsonl")
    assert [(r["step"], r["d"]) for r in rows] == [(10, 0.5), (20, 0.5), (30, 0.3)]
    png = plot_losses(tmp_path / "log.jsonl", tmp_path / "loss.png")
    assert Image.open(png).size[0] > 100
    assert RunLogger(tmp_path).path.read_text() == ""  # a fresh run starts an empty log


def test_save_image_grid_layout(tmp_path):
    photo = open_image(album_paths()[0]).rgb.resize((40, 30))
    x = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 127.5 - 1  # [3,30,40]
    rows = [[x, -x, torch.zeros(3, 30, 40)], [x, x, x]]
    path = save_image_grid(rows, tmp_path / "grid.png", col_labels=["input", "output", "target"])
    grid = np.array(Image.open(path))
    assert grid.shape == (14 + 2 * 32 + 2, 3 * 42 + 2, 3)
    np.testing.assert_allclose(grid[16:46, 2:42].astype(int), np.array(photo).astype(int), atol=1)
