"""Distillation end to end on real photos: run folder, report, resume bit-exactness, feature adapters."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from styleforge.cli import main as styleforge
from styleforge.photo.album import album_paths, group_of
from styleforge.train.checkpoint import latest_checkpoint, load_generator, save_checkpoint
from styleforge.train.distill import (
    FeatureAdapters,
    FeatureTap,
    batch_for_step,
    build_adapters,
    pair_points,
)
from styleforge.train.models.registry import build_generator
from styleforge.train.teachers import load_teacher


@pytest.fixture(scope="session")
def content_dir(tmp_path_factory) -> Path:
    """Four real album photos, downscaled (tiny runs crop 32 px patches from <= 96 px photos)."""
    folder = tmp_path_factory.mktemp("content")
    for path in album_paths()[:4]:
        img = Image.open(path).convert("RGB")
        img.thumbnail((160, 160))
        img.save(folder / f"{path.stem}.png")
    return folder


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory) -> Path:
    """A seeded ResnetGenerator(ngf=8, n_blocks=2) saved as a styleforge checkpoint."""
    run = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(1)
    teacher = build_generator("resnet", ngf=8, n_blocks=2)
    meta = {"generator": {"arch": "resnet", "config": teacher.config}, "style": "test-look",
            "run": {"kind": "train", "preset": "tiny"}}
    save_checkpoint(run, 20, {"generator": teacher.state_dict()}, meta)
    return run


def _distill(*argv) -> int:
    # The fixture teacher has random weights, which the degeneracy checks rightly refuse (its
    # outputs lose the photos' structure); these tests are about the distillation machinery.
    return styleforge(["distill", "--preset", "tiny", "--no-progress", "--allow-degenerate", *map(str, argv)])


@pytest.fixture(scope="session")
def distilled(tmp_path_factory, teacher_run, content_dir) -> Path:
    out = tmp_path_factory.mktemp("student") / "run"
    assert _distill("--teacher", teacher_run, "--content", content_dir, "--out", out) == 0
    return out


def test_distill_writes_a_loadable_run_and_report(distilled, teacher_run):
    checkpoint = latest_checkpoint(distilled)
    assert checkpoint is not None and checkpoint.name == "step_0000006"
    for name in ("generator", "generator_ema", "adapters", "discriminator"):
        assert (checkpoint / f"{name}.safetensors").is_file(), name
    assert (distilled / "config.yaml").is_file() and (distilled / "loss.png").is_file()
    assert sorted(p.name for p in (distilled / "samples").glob("*.png")) == ["step_0000003.png", "step_0000006.png"]
    rows = [json.loads(line) for line in (distilled / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(r[k]) for r in rows for k in ("l1", "structural", "feature", "adv_g", "adv_d"))

    student, info = load_generator(distilled)
    assert info["arch"] == "mobile" and info["config"]["preset"] == "nano"
    assert info["style"] == "test-look"
    assert info["run"]["teacher"]["run"] == {"kind": "train", "preset": "tiny"}
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    assert student(x).shape == (1, 3, 32, 48)

    report = json.loads((distilled / "report.json").read_text())
    assert report["student"]["macs"] < report["teacher"]["macs"]
    assert report["student"]["params"] < report["teacher"]["params"]
    assert report["teacher"]["size"] == [512, 512]
    held = report["heldout"]
    assert held["images"] == 2  # tiny preset: heldout_limit=2 of the photos not trained on
    trained = {group_of(p) for p in album_paths()[:4]}  # whole scene groups are left out
    assert not trained & {group_of(Path(r["image"])) for r in held["per_image"]}
    for key in ("psnr", "ssim", "delta_e2000"):
        assert math.isfinite(held[key]), key
    assert report["train"]["steps"] == 6


def test_resume_is_bit_exact(tmp_path, distilled, teacher_run, content_dir):
    out = tmp_path / "resumed"
    assert _distill("--teacher", teacher_run, "--content", content_dir, "--out", out, "--stop-at", "3") == 0
    assert latest_checkpoint(out).name == "step_0000003" and not (out / "report.json").exists()
    # --teacher/--content default to the run's own on --resume
    assert _distill("--out", out, "--resume") == 0
    a, b = latest_checkpoint(distilled), latest_checkpoint(out)
    assert b.name == "step_0000006"
    for name in ("generator", "generator_ema", "adapters", "discriminator"):
        wa, wb = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), f"{name}.{key}"
    assert (out / "log.jsonl").read_text() == (distilled / "log.jsonl").read_text()


def test_existing_run_needs_resume(distilled, teacher_run, content_dir, capsys):
    assert _distill("--teacher", teacher_run, "--content", content_dir, "--out", distilled) == 2
    assert "--resume" in capsys.readouterr().err


def test_dry_run_prints_config(tmp_path, teacher_run, content_dir, capsys):
    out = tmp_path / "never"
    assert _distill("--teacher", teacher_run, "--content", content_dir, "--out", out, "--dry-run",
                    "--steps", "9", "--set", "feature_weight=0.5") == 0
    text = capsys.readouterr().out
    assert "steps: 9" in text and "feature_weight: 0.5" in text and "student: nano" in text
    assert not out.exists()


def test_batches_are_a_function_of_seed_and_step(content_dir):
    from styleforge.train.data import ContentCrops

    ds = ContentCrops(content_dir, patch_size=32, max_side=96)
    a, b = batch_for_step(ds, 5, 0, 2), batch_for_step(ds, 5, 0, 2)
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, batch_for_step(ds, 6, 0, 2))
    assert a.min() >= -1 and a.max() <= 1


def test_pair_points_spreads_over_depth():
    assert pair_points(("a", "b", "c"), ("t1", "t2", "t3", "t4", "t5")) == [("a", "t1"), ("b", "t3"), ("c", "t5")]
    assert pair_points(("a",), ("t1", "t2", "t3")) == [("a", "t2")]
    assert pair_points((), ("t1",)) == []


def test_feature_loss_decreases_on_a_fixed_batch(teacher_run, content_dir):
    from styleforge.train.data import ContentCrops

    teacher, _ = load_teacher(teacher_run)
    torch.manual_seed(0)
    student = build_generator("mobile", preset="nano")
    adapters, info = build_adapters(student, teacher, 32)
    assert len(info["pairs"]) == 3
    # teacher trunk features have 4*ngf = 32 channels; adapters map student channels onto them
    assert all(ct == 32 for _s, _t, _cs, ct in info["pairs"])
    x = batch_for_step(ContentCrops(content_dir, 32, 96), 0, 0, 4)
    s_tap = FeatureTap({s: dict(student.named_modules())[s] for s, _ in adapters.pairs})
    t_tap = FeatureTap({t: teacher.feature_modules()[t] for _, t in adapters.pairs})
    with torch.no_grad():
        teacher(x)
    opt = torch.optim.Adam([*student.parameters(), *adapters.parameters()], lr=1e-2)
    losses = []
    for _ in range(15):
        student(x)
        loss = adapters(s_tap.outputs, t_tap.outputs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    s_tap.close()
    t_tap.close()
    # Teacher trunk features are instance-normalised (unit variance), so the loss starts near 1.
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0], losses
    assert isinstance(adapters, FeatureAdapters)


def test_heldout_default_uses_dataset_test_split(tmp_path, teacher_run, content_dir):
    """A make-dataset layout: held-out photos from ../test/input, PSNR against ../test/target."""
    data = tmp_path / "data"
    shutil.copytree(content_dir, data / "content")
    (data / "test" / "input").mkdir(parents=True)
    (data / "test" / "target").mkdir(parents=True)
    photo = np.asarray(Image.open(album_paths()[5]).convert("RGB").resize((72, 56)))
    Image.fromarray(photo).save(data / "test" / "input" / "p0.png")
    Image.fromarray(255 - photo).save(data / "test" / "target" / "p0.png")
    out = tmp_path / "run"
    assert _distill("--teacher", teacher_run, "--content", data / "content", "--out", out,
                    "--steps", "2", "--set", "adv_weight=0") == 0
    held = json.loads((out / "report.json").read_text())["heldout"]
    assert held["source"].endswith("input") and held["images"] == 1
    assert held["per_image"][0]["size"] == [72, 56]
    assert math.isfinite(held["teacher_vs_target_psnr"]) and math.isfinite(held["student_vs_target_psnr"])
