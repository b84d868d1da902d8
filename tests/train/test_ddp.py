"""Two-process DistributedDataParallel training with gloo on the CPU, via torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from styleforge.cli import main as cli
from styleforge.photo.dataset import make_dataset
from styleforge.train.checkpoint import list_checkpoints, load_checkpoint


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("h3ddp") / "noir"
    return make_dataset("noir", out, seed=1, size=64, val_groups=0, show_progress=False)


def test_two_process_gloo_run_then_single_process_resume(ddp_data, tmp_path):
    run = tmp_path / "ddp"
    args = ["--content", str(ddp_data / "content"), "--style", str(ddp_data / "style"), "--out", str(run),
            "--preset", "tiny", "--steps", "4", "--device", "cpu", "--quiet",
            "--set", "log.checkpoint_every=4", "--set", "log.log_every=2", "--set", "log.sample_every=4",
            # The tiny preset's residual teacher starts with a zero head, so for its first steps
            # every upstream gradient is ~0 and Adam turns all-reduce rounding noise into
            # full-size steps; the tanh teacher keeps this exactness check tight.
            "--model", "resnet", "--set", "model.generator_kwargs.residual=false",
            # No InstanceNorm: it removes the mean of a conv's output, so part of that conv's weight
            # gradient is zero up to rounding, and Adam turns the rounding (which differs between a
            # batch of 2 and two all-reduced batches of 1, by CPU) into full-size steps.
            "--set", "model.generator_kwargs.norm=none", "--set", "model.discriminator_kwargs.norm=none",
            # 4 steps of a tanh teacher map every photo to nearly the same image: the verdict says
            # so (tests/train/test_trainer.py), and this test is about the weights, not the look.
            "--allow-degenerate"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "styleforge.train", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Rank 0 alone wrote: one checkpoint, a log with one line per logging step, samples.
    assert [p.name for p in list_checkpoints(run)] == ["step_0000004"]
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert (run / "samples" / "step_0000004.png").is_file() and (run / "eval.json").is_file()
    weights, meta, state = load_checkpoint(run)
    assert meta["run"]["world_size"] == 2
    # Unwrapped state dicts: no DDP "module." prefixes, loadable into plain modules.
    assert not any(k.startswith("module.") for sd in weights.values() for k in sd)

    # Same global batch in one process: sample k of a step is keyed by (seed, step, rank * 1 + k),
    # there is no norm layer and DDP averages gradients, so the weights agree to rounding.
    single = tmp_path / "single"
    assert cli(["train", *args[:5], str(single), *args[6:]]) == 0
    reference, _, _ = load_checkpoint(single)
    compared = 0
    for name in reference:
        for key, value in reference[name].items():
            if key.endswith(".weight"):
                torch.testing.assert_close(weights[name][key], value, atol=2e-5, rtol=1e-4)
                compared += 1
    assert compared >= 30

    # Resume the 2-process checkpoint in one process (batch 2 on one rank instead of 1 + 1).
    assert cli(["train", "--out", str(run), "--resume", "--steps", "6", "--quiet", "--allow-degenerate"]) == 0
    resumed, meta6, _ = load_checkpoint(run)
    assert meta6["step"] == 6 and meta6["run"]["world_size"] == 1
    assert not torch.equal(resumed["generator"]["head.1.weight"], weights["generator"]["head.1.weight"])
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
