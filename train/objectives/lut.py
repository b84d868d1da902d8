"""The LUT student's objective: the colour generator fitted to a teacher's pixels (``distill --student lut``).

The run around it (teacher outputs, report, verdict) is :mod:`styleforge.train.lut_student`.
"""

from __future__ import annotations

import torch

from styleforge.train.config import DistillConfig
from styleforge.train.engine import BaseObjective, Phases
from styleforge.train.losses import lut_regulariser
from styleforge.train.models.colour import ColourGenerator


class LutObjective(BaseObjective):
    """The colour generator against a teacher's pixels: ``batch = {"input": [P, 3], "target": [P, 3]}``,
    RGB in [0, 1] (``P`` pixels drawn from every photo). Loss: L1 + the LUT's smoothness (x1)
    and monotonicity (x10) regularisers; one Adam optimiser ``g`` at ``cfg.lut.lr``."""

    lr_log_key = "lr"

    def __init__(self, cfg: DistillConfig, student: ColourGenerator):
        super().__init__(cfg)
        self.networks = {"generator": student}
        self.optimizers = {"g": torch.optim.Adam(student.parameters(), lr=cfg.lut.lr)}

    def lr_groups(self) -> dict[str, float]:
        return {"g": self.config.lut.lr}

    def phases(self, batch, noise=None) -> Phases:
        student = self.networks["generator"]
        l1 = (student.colour(batch["input"]) - batch["target"]).abs().mean()
        tv, mono = lut_regulariser(student.lattices())
        yield "g", l1 + 1.0 * tv + 10.0 * mono
        return {"l1_levels": l1.detach() * 255.0, "lut_tv": tv.detach(), "lut_mono": mono.detach()}

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        rows = [[x, t, generator(x[None])[0]] for x, t in zip(batch["content"], batch["teacher"])]
        return rows, ["input", "teacher", "student"]
