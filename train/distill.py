"""Distillation: teach a tiny mobile student to reproduce a teacher generator's look.

This module holds what is particular to a distillation *run*: the batches of content crops the
teacher labels (the crops themselves are :class:`~styleforge.train.data.ContentCrops`), the run
folder and the glue around the report. Its config (:class:`DistillConfig`, presets,
YAML, ``--set``) is the one config system's (:mod:`styleforge.train.config`). The losses live in
:class:`~styleforge.train.objectives.distill.DistillObjective`, and the loop that runs it (EMA,
schedule, logging, samples, checkpoints, resume) is the one every objective uses,
:func:`styleforge.train.engine.run_loop`.

The run folder is laid out like a training run (``styleforge.train.checkpoint``) so that
``load_generator(RUN)`` and ``styleforge export RUN`` treat a student like any teacher. The
batch of step ``s`` (from 1) comes from ``numpy.random.default_rng([seed, s - 1])``, so
``--resume`` on CPU continues bit-exactly. Tensors are float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from styleforge.atomic import write_text
from styleforge.train.checkpoint import latest_checkpoint
from styleforge.train.config import (
    ConfigError,
    DistillConfig,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    read_yaml,
)
from styleforge.train.data import ContentCrops, DatasetError
from styleforge.train.distill_report import build_report, write_report
from styleforge.train.engine import (
    Loop,
    TrainError,
    git_commit,
    load_networks,
    resolve_device,
    run_loop,
    versions,
)
from styleforge.train.objectives.distill import (  # noqa: F401  (re-exported: the feature machinery)
    DistillError,
    DistillObjective,
    FeatureAdapters,
    FeatureTap,
    build_adapters,
    pair_points,
)
from styleforge.train.runlog import read_log
from styleforge.train.teachers import TeacherWrapper
from styleforge.train.tensors import image_to_tensor

# ------------------------------------------------------------------------------- the data stream


def batch_for_step(dataset, step: int, seed: int, batch_size: int) -> torch.Tensor:
    """The batch of step ``step``: a pure function of (seed, step), so a resumed run sees the same."""
    rng = np.random.default_rng([seed, step])
    indices = rng.integers(0, len(dataset), size=batch_size)
    return torch.stack([dataset.get(int(i), rng)["content"] for i in indices])  # [N,3,P,P]


# ------------------------------------------------------------------------------------- the run


def fixed_sample_inputs(dataset: ContentCrops, count: int = 3) -> torch.Tensor:
    """Centre crops of the first photos: the same inputs for every sample grid of a run."""
    crops = []
    for img in dataset.images[:count]:
        p = dataset.patch_size
        top, left = (img.shape[0] - p) // 2, (img.shape[1] - p) // 2
        crops.append(image_to_tensor(img[top:top + p, left:left + p]))
    return torch.stack(crops)


def run_distillation(
    teacher: TeacherWrapper,
    teacher_info: dict,
    content_dir: Path,
    out: Path,
    cfg: DistillConfig,
    *,
    resume: bool = False,
    force: bool = False,
    stop_at: Optional[int] = None,
    heldout: Optional[Path] = None,
    show_progress: bool = True,
) -> Optional[dict]:
    """Distill ``teacher`` into a ``cfg.student`` MobileGenerator; write the run folder ``out``.

    ``resume`` continues the newest checkpoint in ``out`` (a fresh start when there is none);
    ``force`` starts over in a folder that has checkpoints. Returns the report dict (also
    ``out/report.json``), or None when ``stop_at`` ended the run early (a checkpoint at
    ``stop_at`` is left for ``resume=True``).
    """

    out = Path(out)
    try:
        device = resolve_device(cfg.device)
    except TrainError as err:
        raise DistillError(str(err)) from None
    try:
        dataset = ContentCrops(content_dir, cfg.patch_size, cfg.max_side)
    except DatasetError as err:
        raise DistillError(str(err)) from None
    teacher = teacher.to(device)
    objective = DistillObjective(cfg, teacher, device)
    student = objective.networks["generator"]

    checkpoint = latest_checkpoint(out) if out.exists() else None
    if checkpoint is not None and not resume:
        if not force:
            raise DistillError(f"{out} already holds checkpoints (newest {checkpoint.name}); "
                               "pass --resume to continue it or --force to start over")
        (out / "report.json").unlink(missing_ok=True)  # the engine clears checkpoints and samples
        checkpoint = None
    try:
        resumed = load_networks(objective, checkpoint) if checkpoint is not None else None
    except TrainError as err:
        raise DistillError(str(err)) from None
    write_run_config(out, cfg)

    meta = {
        "generator": {"arch": student.arch_name, "config": dict(student.config)},
        "style": teacher_info.get("style", ""),
        "input_range": [-1.0, 1.0],
        "mode": "distill",
        "config": config_to_dict(cfg),
        "adapters": objective.adapter_info,
        "run": {
            "kind": "distill",
            "mode": "distill",
            "student": cfg.student,
            "seed": cfg.seed,
            "steps": cfg.steps,
            "content_dir": str(Path(content_dir).resolve()),
            "dataset_size": len(dataset),
            "git_commit": git_commit(),
            "versions": versions(),
            "teacher": {k: teacher_info.get(k) for k in
                        ("kind", "spec", "weights", "input_range", "arch", "config", "style", "step", "run")},
        },
    }

    def stream(first: int, last: int):
        for step in range(first, last + 1):  # step s (from 1) trains on batch_for_step(s - 1)
            yield {"content": batch_for_step(dataset, step - 1, cfg.seed, cfg.batch_size)}

    loop = Loop(seed=cfg.seed, steps=cfg.steps, log_every=cfg.log_every, sample_every=cfg.sample_every,
                checkpoint_every=cfg.checkpoint_every, keep=cfg.keep_checkpoints, ema_decay=cfg.ema_decay,
                ema=cfg.ema_decay > 0, stop_at=stop_at, log_elapsed=False, desc="distill")
    try:
        done = run_loop(objective, loop, out, stream=stream, sample_batch={"content": fixed_sample_inputs(dataset)},
                        meta=meta, device=device, resumed=resumed, force=force, show_progress=show_progress)
    finally:
        objective.close()
    if loop.end < cfg.steps:
        return None


    final_student = done.ema_model if done.ema_model is not None else student
    report = build_report(
        teacher, teacher_info, final_student.eval(), cfg, content_dir, dataset.paths, heldout, device,
    )
    log_rows = read_log(out / "log.jsonl")
    report["train"] = {
        "steps": cfg.steps,
        "resumed_from": done.start - 1,
        "seconds_this_session": done.seconds,
        "final_losses": log_rows[-1] if log_rows else {},
        "skipped_photos": [[str(p), why] for p, why in dataset.skipped],
    }
    write_report(out / "report.json", report)
    return report


def write_run_config(out: Path, cfg: DistillConfig) -> None:
    """``RUN/config.yaml``: the resolved config under ``distill:`` (what ``--resume`` continues)."""
    write_text(Path(out) / "config.yaml", config_to_yaml(cfg, section="distill"))


def read_run_config(out: Path) -> Optional[DistillConfig]:
    """The config a distillation run was started with (``RUN/config.yaml``), or None."""
    path = Path(out) / "config.yaml"
    if not path.is_file():
        return None
    data = read_yaml(path)
    if "distill" not in data:
        raise ConfigError(f"{path} is not a distillation run's config")
    return config_from_dict(data["distill"], base=DistillConfig())
