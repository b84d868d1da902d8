"""The presets: measured starting configs for ``train`` (two generator families) and ``distill``.

Training presets come in two families, chosen by :func:`preset_config`:

- :data:`COLOUR_PRESETS`, the default for unpaired looks: the colour generator (curves + matrix +
  3D LUT residual, see :mod:`styleforge.train.objectives.colour`) against a spectral-norm PatchGAN.
- :data:`RESNET_PRESETS` for ``--model resnet`` (CycleGAN), pix2pix and the other architectures:
  the ``tiny`` and ``cpu`` teachers are residual (``clip(x + delta)``, identity at init: see
  :class:`~styleforge.train.models.resnet.ResnetGenerator`); ``gpu`` keeps the exact CycleGAN network.

``train --paired`` without ``--model`` gets ``model.generator=auto``: the paired colour preset,
until the run fits a look recipe to the pairs and ships it, or trains the colour generator when no
local operator helps (:func:`styleforge.train.trainer.resolve_auto_generator`). Distillation has
:data:`DISTILL_PRESETS` (a conv student, or with ``student=lut`` the LUT fit of
``distill --student lut``, whose settings are the ``lut`` section). The comments keep what each
setting was measured against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Optional

from styleforge.train.config.schema import (
    AUTO,
    Config,
    ConfigError,
    DataConfig,
    DistillConfig,
    LogConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

# 600 steps: 1200 measured -0.12 dB per eval-looks run (10 of 35 better) at twice the time
# (docs/results/settings_measured.md).
_CPU_COLOUR = TrainConfig(
    steps=600,
    model=ModelConfig(
        generator="colour",
        generator_kwargs={"curve_knots": 32, "lut_size": 17},
        discriminator_kwargs={"ndf": 32, "n_layers": 2, "norm": "none", "spectral_norm": True},
    ),
    optim=OptimConfig(lr_g=5e-4, beta2=0.99),
    data=DataConfig(patch_size=32, batch_size=8),
    log=LogConfig(log_every=20, sample_every=200, checkpoint_every=100, keep=2, eval_max_images=16),
)


# The colour generator (the default for unpaired looks): curves + matrix + 17^3 LUT residual, a
# one-step-per-crop spectral-norm PatchGAN judging local colour and tone, and a strong pull toward
# the evidence fit it starts from. The cpu preset cuts 32 px crops (the discriminator's
# 34 px receptive field sees the whole crop): a crop that shows less of the scene gives the
# discriminator less scene to judge (README, "How an unpaired look is learned": +0.12 dB per
# eval-looks run over 64 px crops, 21 of 35 runs better, half the training time).
COLOUR_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        steps=20,
        amp=False,
        model=ModelConfig(
            generator="colour",
            generator_kwargs={"curve_knots": 16, "lut_size": 5},
            discriminator_kwargs={"ndf": 8, "n_layers": 2, "norm": "none", "spectral_norm": True},
        ),
        optim=OptimConfig(lr_g=5e-4, beta2=0.99),
        data=DataConfig(patch_size=32, batch_size=2),
        log=LogConfig(log_every=5, sample_every=10, checkpoint_every=10, keep=2, eval_max_images=2),
    ),
    "cpu": _CPU_COLOUR,
    # The colour generator is small enough that a GPU only makes the cpu preset's run faster: what
    # scaled it up measured worse on the album's eval-looks runs (35 each, 600 steps, CPU): three
    # image-adaptive bases -0.20 dB per run (12 of 35 better), 64 px crops -0.12 against 32 px (and
    # the old 128 px crops with a 70 px receptive field see more scene still). So it trains the cpu
    # settings, with data-loading workers; model.generator_kwargs.adaptive / lut_size and
    # data.patch_size scale it up for a larger photo set.
    "gpu": dataclasses.replace(
        _CPU_COLOUR, data=dataclasses.replace(_CPU_COLOUR.data, num_workers=4),
        log=dataclasses.replace(_CPU_COLOUR.log, eval_max_images=32)),
}

# The ResNet (CycleGAN / pix2pix) generator: ``--model resnet`` and paired training.
RESNET_PRESETS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(
        steps=20,
        amp=False,
        model=ModelConfig(
            generator_kwargs={"ngf": 8, "n_blocks": 2, "residual": True},
            discriminator_kwargs={"ndf": 8, "n_layers": 2},
            latent_dim=16,
        ),
        data=DataConfig(patch_size=32, batch_size=2),
        log=LogConfig(log_every=5, sample_every=10, checkpoint_every=10, keep=2, eval_max_images=2),
    ),
    # Tuned (before the album, on the 7 sample photos) on make-dataset --look film-warm (2 shared CPU cores, OMP_NUM_THREADS=1, held-out
    # split; the untouched input scores 22.4 dB): unpaired 25.0 dB in ~2.7 min CPU (was 16.3 dB
    # with a tanh teacher, identity loss and a 70 px discriminator), paired 33.9 dB at 800 steps
    # (was 26.9 dB with the tanh teacher). Without normalisation
    # and with a 5x generator learning rate the teacher learns the near-identity colour mapping
    # of a look several times faster than with CycleGAN's InstanceNorm (which also normalises
    # away the global colour cast the look is made of); 64 px crops keep each step cheap.
    # Unpaired needs three more things to beat the untouched input:
    # - a residual teacher (identity at init), so it only has to learn the colour shift;
    # - a one-layer PatchGAN (16 px receptive field): with few source photos, a 70 px
    #   discriminator tells the content photos from the style photos by *what* they show and
    #   wins outright (the generator then drifts); a small one can only judge local tone/colour;
    # - no identity loss (it asks G(styled) == styled, i.e. "do not change colours", which is
    #   the opposite of a colour look) and a weak cycle loss, which a residual G satisfies
    #   almost for free and which otherwise pins it to the identity (cycle 10: 22.4 dB, no
    #   change; 5: 23.1 dB; 2: 24.1 dB at 800 steps; 1: unstable, collapsed to 8.7 dB).
    "cpu": TrainConfig(
        steps=1200,
        model=ModelConfig(
            generator_kwargs={"ngf": 16, "n_blocks": 3, "norm": "none", "residual": True},
            discriminator_kwargs={"ndf": 16, "n_layers": 1},
            latent_dim=64,
        ),
        optim=OptimConfig(lr_g=1e-3, decay_start=0.5),
        loss=LossConfig(lambda_cycle=2.0, lambda_identity=0.0),
        data=DataConfig(patch_size=64, batch_size=2),
        log=LogConfig(log_every=20, sample_every=100, checkpoint_every=200, eval_max_images=8),
    ),
    "gpu": TrainConfig(
        steps=40000,
        model=ModelConfig(),
        optim=OptimConfig(decay_start=0.5),
        data=DataConfig(patch_size=256, batch_size=8, num_workers=4),
        log=LogConfig(log_every=50, sample_every=1000, checkpoint_every=5000, eval_max_images=32),
    ),
}


PRESETS = COLOUR_PRESETS  # preset names; the family is chosen by preset_config()


# A paired colour generator starts from the closed-form fit of its pairs (least-squares matrix +
# smooth lattice residual, its smoothness cross-validated over the pairs), and by default that fit
# is the model: PAIRED_COLOUR_STEPS = 0. Refining it by gradient descent (L1 on crops) lost on
# held-out portraits once the fit became a lattice regression: 600 steps at 1e-5 on 7 pairs, 9 runs
# over 7 tone looks, -0.99 dB on average, -3.0 at worst, +0.2 at best (docs/results.md, "Paired
# colour from a few pairs: a smooth lattice"). ``--steps N`` still refines, at PAIRED_COLOUR_LR_G:
# at the unpaired rate Adam moves every rarely-seen LUT node by about the learning rate per step
# whatever its gradient (600 steps at 5e-4: teal-orange split 1 43.57 -> 34.45 dB, even with L1 alone).
PAIRED_COLOUR_STEPS = 0
PAIRED_COLOUR_LR_G = 1e-5



def preset(presets: dict[str, Config], name: str) -> Config:
    """``presets[name]``, or a :class:`ConfigError` naming the choices."""
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
    return presets[name]


def preset_config(name: str, generator: Optional[str] = None, paired: bool = False) -> TrainConfig:
    """Preset ``name`` for a generator family: the colour generator unless ``generator`` is another
    architecture (``resnet``, ``mobile``, ``dcgan``), which starts from the ResNet presets; a
    ``paired`` colour generator is the closed-form fit of its pairs (:data:`PAIRED_COLOUR_STEPS`
    = 0), which ``steps`` > 0 refines at :data:`PAIRED_COLOUR_LR_G`.
    ``generator="auto"`` (paired only) is the paired colour preset with ``model.generator: auto``,
    for the run to resolve."""
    colour = generator in (None, "colour", AUTO)
    config = preset(COLOUR_PRESETS if colour else RESNET_PRESETS, name)
    if colour and paired:
        config = replace(config, mode="paired", steps=PAIRED_COLOUR_STEPS,
                         optim=replace(config.optim, lr_g=PAIRED_COLOUR_LR_G))
    if generator == AUTO:
        config = replace(config, model=replace(config.model, generator=AUTO))
    return config


# ---------------------------------------------------------------------------------------------
# distillation


DISTILL_PRESETS: dict[str, DistillConfig] = {
    # Seconds, for tests: every loss on, tiny crops.
    "tiny": DistillConfig(
        student="nano", steps=6, batch_size=2, patch_size=32, lr=2e-3, structural_weight=0.5,
        adv_weight=0.05, ema_decay=0.5, log_every=1, sample_every=3, checkpoint_every=3,
        max_side=96, heldout_limit=2, heldout_max_side=96,
    ),
    # A few minutes on two laptop cores.
    "cpu": DistillConfig(),
    # A real run on one GPU.
    "gpu": DistillConfig(
        steps=20000, batch_size=16, patch_size=256, lr=1e-3, structural="ms-ssim", adv_weight=0.02,
        ema_decay=0.999, log_every=50, sample_every=1000, checkpoint_every=2000, max_side=1024,
        heldout_limit=32, heldout_max_side=2048,
    ),
}

