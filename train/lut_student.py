"""``distill --student lut``: fit the colour generator (curves + matrix + 3D LUT) to any teacher.

The teacher (a styleforge run, a TorchScript file, or a bring-your-own ``module:factory``) is run
once on the content photos; the colour generator is then fitted to the teacher's outputs pixel by
pixel (L1, plus the LUT's smoothness and monotonicity regularisers), starting from the
least-squares colour matrix of (input, teacher output) pairs. Because the student is a pure
colour function, its held-out PSNR against the teacher says how much of the teacher's effect is
a colour function: at 35 dB or more the teacher's look ships as a ``.cube`` of a few hundred
kilobytes (``styleforge export RUN --formats cube``); far below, the look is local (glow, toon)
and needs the conv student.

The run folder holds a checkpoint that :func:`~styleforge.train.checkpoint.load_generator` reads
(``generator``/``generator_ema`` = the fitted colour generator), ``report.json`` (the distill
report: costs and held-out fidelity) and the teacher's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from styleforge.train.degeneracy import load_photos, run_on
from styleforge.train.models.colour import ColourGenerator

PIXELS_PER_STEP = 1 << 15


@dataclass(frozen=True)
class LutStudentConfig:
    """What the LUT fit needs; ``heldout_*`` and ``student`` match the distill report's fields."""

    steps: int = 800
    lut_size: int = 17
    curve_knots: int = 32
    lr: float = 5e-3
    seed: int = 0
    photos: int = 48  # content photos the teacher is run on (short side 256)
    heldout_limit: int = 8
    heldout_max_side: int = 1024
    student: str = "lut"


def fit_lut_student(teacher, teacher_info: dict, content_dir: Path, out: Path, cfg: LutStudentConfig,
                    heldout: Optional[Path] = None, show_progress: bool = True) -> dict:
    """Fit, save the run to ``out`` and return the distill report (also ``out/report.json``)."""
    from tqdm.auto import tqdm

    from styleforge.runtime.imageio import list_images
    from styleforge.train.checkpoint import save_checkpoint
    from styleforge.train.distill_report import build_report, write_report
    from styleforge.train.engine import git_commit

    paths = list_images(content_dir)
    inputs = load_photos(paths, limit=cfg.photos)
    if len(inputs) < 1:
        raise ValueError(f"{content_dir}: no readable photos")
    targets = run_on(teacher.eval(), inputs)
    x = torch.from_numpy(np.concatenate([i.reshape(-1, 3) for i in inputs]).astype(np.float32) / 255.0)
    y = torch.from_numpy(np.concatenate([t.reshape(-1, 3) for t in targets]).astype(np.float32) / 255.0)

    torch.manual_seed(cfg.seed)
    student = ColourGenerator(curve_knots=cfg.curve_knots, lut_size=cfg.lut_size)
    # The least-squares affine colour map as the start, solved in float64: MKL's float32 lstsq
    # returns a slightly different solution from one call to the next on the same pixels (so the
    # fit was not reproducible); the float64 solution comes out the same every time.
    ones = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    solution = torch.linalg.lstsq(ones, y.double()).solution.float()  # [4, 3]
    student.init_from(solution[:3].T, solution[3])
    optimizer = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(range(cfg.steps), desc="distill lut", disable=not show_progress, dynamic_ncols=True)
    for _ in bar:
        idx = torch.randint(len(x), (PIXELS_PER_STEP,), generator=generator)
        loss = (student.colour(x[idx]) - y[idx]).abs().mean()
        tv, mono = student.lut_regulariser()
        optimizer.zero_grad(set_to_none=True)
        (loss + 1.0 * tv + 10.0 * mono).backward()
        optimizer.step()
        bar.set_postfix(l1=f"{loss.item() * 255:.2f} levels", refresh=False)
    student.eval()

    report = build_report(teacher, teacher_info, student, cfg, Path(content_dir), paths, heldout, torch.device("cpu"))
    report["colour_function_share_db"] = report["heldout"].get("psnr")
    meta = {
        "generator": {"arch": student.arch_name, "config": dict(student.config)},
        "style": teacher_info.get("style", ""),
        "input_range": [-1.0, 1.0],
        "mode": "distill-lut",
        "run": {"kind": "distill", "student": "lut", "steps": cfg.steps, "seed": cfg.seed,
                "content_dir": str(Path(content_dir).resolve()), "photos": len(inputs),
                "git_commit": git_commit(),
                "teacher": {k: teacher_info.get(k) for k in ("kind", "spec", "weights", "arch", "style")}},
    }
    state = student.state_dict()
    save_checkpoint(out, cfg.steps, {"generator": state, "generator_ema": state}, meta)
    write_report(Path(out) / "report.json", report)
    return report
