"""Every training objective of styleforge, one module each, and the choice of one for a run.

- :mod:`~styleforge.train.objectives.gan`: the shared :class:`Objective` base and the three image
  GAN objectives (unpaired CycleGAN, paired pix2pix, DCGAN);
- :mod:`~styleforge.train.objectives.colour`: the unpaired colour generator (curves + matrix + LUT);
- :mod:`~styleforge.train.objectives.distill`: the conv student against a frozen teacher;
- :mod:`~styleforge.train.objectives.lut`: the LUT student fitted to a teacher's pixels.

Each implements :class:`styleforge.train.engine.BaseObjective` (networks, optimisers and
``phases``); the one training loop (:func:`styleforge.train.engine.run_loop`) runs them all.
"""

from __future__ import annotations

from styleforge.train.config import TrainConfig
from styleforge.train.objectives.colour import ColourObjective
from styleforge.train.objectives.gan import (
    DCGANObjective,
    Objective,
    PairedObjective,
    UnpairedObjective,
)

OBJECTIVES = {"unpaired": UnpairedObjective, "paired": PairedObjective, "dcgan": DCGANObjective}


def build_objective(config: TrainConfig) -> Objective:
    """The objective of a ``styleforge train`` run: by mode, and the colour objective for an
    unpaired colour generator."""
    if config.mode == "unpaired" and config.model.generator == "colour":
        return ColourObjective(config)
    return OBJECTIVES[config.mode](config)
