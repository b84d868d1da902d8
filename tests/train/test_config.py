"""One config system for train, distill and eval-looks: the same flags, resolution order and --dry-run."""

from __future__ import annotations

import pytest
import yaml

from styleforge.benchmarks.cli_eval import EVAL_LOOKS_PRESETS, EvalLooksConfig
from styleforge.cli import build_parser
from styleforge.cli import main as cli
from styleforge.train.config import (
    DISTILL_PRESETS,
    ConfigError,
    DistillConfig,
    TrainConfig,
    apply_override,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    preset_config,
    resolve_config,
)

CONFIG_FLAGS = ("--preset", "--config", "--set", "--dry-run")


def test_train_distill_and_eval_looks_spell_the_config_flags_alike():
    commands = build_parser()._subparsers._group_actions[0].choices
    spelled = {}
    for name in ("train", "distill", "eval-looks"):
        actions = {a.option_strings[0]: a for a in commands[name]._actions if a.option_strings}
        spelled[name] = [(actions[f].dest, actions[f].choices, actions[f].default) for f in CONFIG_FLAGS]
    assert spelled["train"] == spelled["distill"] == spelled["eval-looks"]


def test_distill_config_resolves_preset_yaml_set_then_flags(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("distill:\n  steps: 40\n  betas: [0.5, 0.9]\n  lut: {lut_size: 9}\n")
    cfg = resolve_config(DISTILL_PRESETS["tiny"], path, ["steps=50", "lut.steps=300"], {"seed": 3},
                         section="distill")
    assert (cfg.student, cfg.steps, cfg.betas, cfg.seed) == ("nano", 50, (0.5, 0.9), 3)
    assert (cfg.lut.steps, cfg.lut.lut_size, cfg.lut.lr) == (300, 9, 5e-3)
    assert config_from_dict(config_to_dict(cfg), base=DistillConfig()) == cfg  # the saved config round-trips
    for overrides, message in [(["nope=1"], "unknown config key 'nope'"), (["betas=[1]"], "2 values"),
                               (["structural=ms-ssim"], "ms-ssim"), (["lut.steps=0"], "lut.steps")]:
        with pytest.raises(ConfigError, match=message):
            resolve_config(DISTILL_PRESETS["tiny"], overrides=overrides)


def test_eval_looks_dry_run_prints_the_resolved_config(tmp_path, capsys):
    assert EVAL_LOOKS_PRESETS["tiny"] == EvalLooksConfig(train_preset="tiny")
    assert cli(["eval-looks", "--preset", "tiny", "--looks", "noir,glow", "--set", "split_seeds=0,2",
                "--set", "student=nano", "--no-paired", "--out", str(tmp_path / "ev"), "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["out"] == str(tmp_path / "ev") and not (tmp_path / "ev").exists()
    assert printed["eval_looks"] == {
        "looks": ["noir", "glow"], "train_preset": "tiny", "student": "nano", "export_size": 256, "steps": 0,
        "paired": False, "seed": 0, "split_seeds": [0, 2], "full_splits": 1, "train_set": [], "per_side": [], "photos": "", "recipes": True}
    assert cli(["eval-looks", "--split-seeds", "0,x", "--dry-run"]) == 2
    assert "split_seeds[1]" in capsys.readouterr().err


def test_eval_looks_no_recipes_is_a_stage_setting_an_out_folder_keeps(tmp_path, capsys):
    """``--no-recipes`` leaves the recipe columns out of a learning curve's cells; a folder of cells
    made one way is refused the other way (the reused cells would mix the two in one table)."""
    from styleforge.atomic import write_text
    from styleforge.benchmarks.cli_eval import check_out_folder
    from styleforge.errors import CLIError
    from styleforge.train.config import config_to_yaml

    assert cli(["eval-looks", "--per-side", "60", "--looks", "random-tone-1", "--no-recipes", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["eval_looks"]["recipes"] is False
    out = tmp_path / "curve"
    (out / "random-tone-1" / "n-60" / "split-0" / ".stages").mkdir(parents=True)
    write_text(out / "config.yaml", config_to_yaml(EvalLooksConfig(per_side=(60,), recipes=False), section="eval_looks"))
    check_out_folder(out, EvalLooksConfig(per_side=(60,), recipes=False))
    with pytest.raises(CLIError, match="recipes: False there, True now"):
        check_out_folder(out, EvalLooksConfig(per_side=(60,)))


def test_distill_lut_dry_run_uses_the_same_path(tmp_path, capsys):
    assert cli(["distill", "--teacher", "t.ts", "--content", str(tmp_path), "--out", str(tmp_path / "r"),
                "--student", "lut", "--steps", "30", "--lr", "0.01", "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["distill"]
    assert printed["student"] == "lut" and printed["steps"] == DISTILL_PRESETS["cpu"].steps
    assert printed["lut"]["steps"] == 30 and printed["lut"]["lr"] == 0.01


def test_paired_dry_run_does_no_work_and_leaves_the_model_to_the_run(tmp_path, capsys, monkeypatch):
    """train --paired without --model: the resolved config says model.generator=auto (the paired
    colour preset's settings) and the dry run fits nothing, decodes nothing, writes nothing."""
    from styleforge.train import paired_fit, recipe_run, trainer

    def no_work(*args, **kwargs):
        raise AssertionError("the dry run fitted the pairs")

    monkeypatch.setattr(trainer, "fit_paired_recipe", no_work)
    monkeypatch.setattr(recipe_run, "read_pairs", no_work)
    monkeypatch.setattr(paired_fit, "pair_pixels", no_work)
    out = tmp_path / "run"
    assert cli(["train", "--paired", str(tmp_path / "not-read"), "--preset", "tiny", "--out", str(out), "--dry-run"]) == 0
    captured = capsys.readouterr()
    printed = yaml.safe_load(captured.out)
    assert printed["model"]["generator"] == "auto" and printed["mode"] == "paired"
    assert printed["optim"]["lr_g"] == preset_config("tiny", "colour", paired=True).optim.lr_g
    assert "closed-form colour fit" not in captured.err and "auto" in captured.err
    assert not out.exists()
    assert cli(["train", "--content", str(tmp_path), "--style", str(tmp_path), "--out", str(out), "--dry-run",
                "--set", "model.generator=auto"]) == 2
    assert "--paired" in capsys.readouterr().err


def test_colour_knobs_live_in_colour_sub_configs_and_their_earlier_keys_still_load(tmp_path):
    """model.colour / loss.colour hold the colour generator's knobs; a config saved before the move
    (flat model.init, loss.lambda_anchor...), YAML files and --set keys that use the earlier
    names load into the same config, and the earlier attribute names still read."""
    cfg = apply_override(apply_override(preset_config("tiny"), "model.colour.shrink=0.5"), "loss.colour.lambda_tv=4")
    flat = config_to_dict(cfg)
    flat["model"].update(flat["model"].pop("colour"))
    flat["model"].pop("recipe")  # model.colour.recipe came after the move: an earlier config never had it
    flat["loss"].update(flat["loss"].pop("colour"))
    saved = tmp_path / "config.yaml"  # what a run saved beside its checkpoints before the move
    saved.write_text(yaml.safe_dump(flat, sort_keys=False))
    assert "shrink: 0.5" in saved.read_text() and "colour:" not in saved.read_text()
    assert config_from_dict(yaml.safe_load(saved.read_text()), base=TrainConfig()) == cfg
    assert config_from_dict(config_to_dict(cfg), base=TrainConfig()) == cfg  # the new layout round-trips
    assert "  colour:\n    init: evidence" in config_to_yaml(cfg)
    old_keys = ["model.shrink=0.5", "loss.lambda_tv=4"]
    assert resolve_config(preset_config("tiny"), overrides=old_keys) == cfg
    assert (cfg.model.shrink, cfg.loss.lambda_tv, cfg.loss.lambda_anchor) == (0.5, 4.0, 3.0)
    with pytest.raises(ConfigError, match="model.shrink"):
        resolve_config(preset_config("tiny"), overrides=["model.shrink=2"])
