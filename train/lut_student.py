"""``distill --student lut``: fit the colour generator (curves + matrix + 3D LUT) to any teacher.

The teacher (a styleforge run, a TorchScript file, or a bring-your-own ``module:factory``) is run
once on the content photos; the colour generator is then fitted to the teacher's outputs pixel by
pixel (L1, plus the LUT's smoothness and monotonicity regularisers), starting from the
least-squares colour matrix of (input, teacher output) pairs. Because the student is a pure
colour function, its held-out PSNR against the teacher says how much of the teacher's effect is
a colour function: at 35 dB or more the teacher's look ships as a ``.cube`` of a few hundred
kilobytes (``styleforge export RUN --formats cube``); far below, the look is local (glow, toon)
and needs the conv student.

The fit is a training run like any other:
:class:`~styleforge.train.objectives.lut.LutObjective` on the engine
(:func:`~styleforge.train.engine.run_loop`), without an EMA. The run folder holds its checkpoint,
which :func:`~styleforge.train.checkpoint.load_generator` reads (``generator`` = the fitted colour
generator), ``log.jsonl``, ``loss.png``, a sample grid, ``report.json`` (the distill report: costs
and held-out fidelity) and the teacher's verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from styleforge.photo.photos import load_photos
from styleforge.runtime.imageio import list_images
from styleforge.train.config import DistillConfig
from styleforge.train.degeneracy import run_on
from styleforge.train.distill import write_run_config
from styleforge.train.distill_report import build_report, write_report
from styleforge.train.engine import Loop, git_commit, run_loop
from styleforge.train.models.colour import ColourGenerator
from styleforge.train.objectives.lut import LutObjective
from styleforge.train.tensors import image_to_tensor

PIXELS_PER_STEP = 1 << 15


def _sample_batch(inputs: list[np.ndarray], targets: list[np.ndarray], count: int = 3) -> dict[str, torch.Tensor]:
    """Centre squares of the first photos and their teacher outputs (``[k, 3, S, S]`` in [-1, 1])."""
    side = min(min(img.shape[:2]) for img in inputs[:count])

    def centre(img):
        top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        return image_to_tensor(np.ascontiguousarray(img[top:top + side, left:left + side]))

    return {"content": torch.stack([centre(i) for i in inputs[:count]]),
            "teacher": torch.stack([centre(t) for t in targets[:count]])}


def fit_lut_student(teacher, teacher_info: dict, content_dir: Path, out: Path, cfg: DistillConfig,
                    heldout: Optional[Path] = None, show_progress: bool = True) -> dict:
    """Fit with the training engine (``cfg.lut``, ``cfg.seed``; ``cfg.heldout_*`` for the report),
    save the run to ``out`` and return the distill report (also ``out/report.json``)."""

    paths = list_images(content_dir)
    inputs = load_photos(paths, limit=cfg.lut.photos)
    if len(inputs) < 1:
        raise ValueError(f"{content_dir}: no readable photos")
    targets = run_on(teacher.eval(), inputs)
    x = torch.from_numpy(np.concatenate([i.reshape(-1, 3) for i in inputs]).astype(np.float32) / 255.0)
    y = torch.from_numpy(np.concatenate([t.reshape(-1, 3) for t in targets]).astype(np.float32) / 255.0)

    torch.manual_seed(cfg.seed)
    student = ColourGenerator(curve_knots=cfg.lut.curve_knots, lut_size=cfg.lut.lut_size)
    # The least-squares affine colour map as the start, solved in float64: MKL's float32 lstsq
    # returns a slightly different solution from one call to the next on the same pixels (so the
    # fit was not reproducible); the float64 solution comes out the same every time.
    ones = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    solution = torch.linalg.lstsq(ones, y.double()).solution.float()  # [4, 3]
    student.init_from(solution[:3].T, solution[3])
    objective = LutObjective(cfg, student)

    pixels = torch.Generator().manual_seed(cfg.seed)

    def stream(first: int, last: int):
        # The fit always runs from step 1 in one session (it takes seconds; it is never resumed),
        # so the pixel draws continue one generator instead of being re-seeded per step.
        assert first == 1, "the LUT fit is not resumable"
        for _ in range(first, last + 1):
            idx = torch.randint(len(x), (PIXELS_PER_STEP,), generator=pixels)
            yield {"input": x[idx], "target": y[idx]}

    meta = {
        "generator": {"arch": student.arch_name, "config": dict(student.config)},
        "style": teacher_info.get("style", ""),
        "input_range": [-1.0, 1.0],
        "mode": "distill-lut",
        "run": {"kind": "distill", "student": "lut", "steps": cfg.lut.steps, "seed": cfg.seed,
                "content_dir": str(Path(content_dir).resolve()), "photos": len(inputs),
                "git_commit": git_commit(),
                "teacher": {k: teacher_info.get(k) for k in ("kind", "spec", "weights", "arch", "style")}},
    }
    loop = Loop(seed=cfg.seed, steps=cfg.lut.steps, log_every=cfg.lut.log_every, sample_every=cfg.lut.steps,
                checkpoint_every=cfg.lut.steps, keep=1, ema_decay=0.0, ema=False, log_elapsed=False,
                desc="distill lut")
    write_run_config(out, cfg)
    run_loop(objective, loop, Path(out), stream=stream, sample_batch=_sample_batch(inputs, targets), meta=meta,
             device=torch.device("cpu"), force=True, show_progress=show_progress)
    student.eval()

    report = build_report(teacher, teacher_info, student, cfg, Path(content_dir), paths, heldout, torch.device("cpu"))
    report["colour_function_share_db"] = report["heldout"].get("psnr")
    write_report(Path(out) / "report.json", report)
    return report
