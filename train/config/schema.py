"""What a run is made of: the frozen config dataclasses of ``train`` and ``distill`` and the values
they accept. Defaults here are CycleGAN's / the paper's; the measured settings are the presets
(:mod:`styleforge.train.config.presets`).

The colour generator's own knobs sit in colour sub-configs: ``model.colour`` (its start, how much
of the training it keeps, which candidate ships) and ``loss.colour`` (its loss weights). Their
earlier keys (``model.init``, ``loss.lambda_anchor``, ...) still load: :data:`MOVED_KEYS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from styleforge.errors import StyleforgeError

PRESET_NAMES = ("tiny", "cpu", "gpu")
MODES = ("unpaired", "paired", "dcgan")
AUTO = "auto"  # model.generator of train --paired without --model: the run picks colour or resnet
COLOUR_INITS = ("evidence", "levels", "mkl", "mkl+hist", "hist", "identity")  # model.colour.init: objectives.colour.ColourObjective.prepare
GAN_LOSSES = ("bce", "lsgan", "hinge", "wgan-gp", "ralsgan", "rahinge")  # styleforge.train.losses.KINDS
DEVICES = ("auto", "cpu", "cuda")
STUDENTS = ("nano", "small", "medium", "lut")  # MobileGenerator presets, or the LUT fit
STRUCTURAL_LOSSES = ("ssim", "ms-ssim", "none")

Config = TypeVar("Config")  # any of the frozen config dataclasses


class ConfigError(StyleforgeError, ValueError):
    """A configuration file or override that does not match its config dataclass."""


# ---------------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class ColourModelConfig:
    """The colour generator's start and what of its training ships (unpaired; see
    :mod:`styleforge.train.objectives.colour`)."""

    # classical start: evidence (a colour matrix around the levels fit, weighed by how well the
    # scene groups of both folders agree, then tone curves: styleforge.photo.evidence)
    # | levels | mkl | mkl+hist | hist | identity
    init: str = "evidence"
    # "evidence" sets shrink and the anchor from the evidence start's freedom (the curve stage's
    # kept fraction); "fixed" uses model.colour.shrink and loss.colour.lambda_anchor
    freedom: str = "evidence"
    # each trained candidate is start + shrink * (trained - start), weight by weight; 1 keeps the
    # trained weights, 0 the start. Shrinkage toward the classical start trades some of the
    # adversarial step's gains for much less of its scene-driven harm (README, "How an unpaired
    # look is learned": 0.25 kept the mean gain of 0.5 at a third of the worst loss)
    shrink: float = 0.25
    # which candidate ships: "last" (the last EMA generator, after shrink) or "criterion" (the
    # unsupervised selection score's pick, the classical start included)
    select: str = "last"
    # "auto": after the colour generator, learn a look recipe (local operators around its LUT) from
    # the same folders, statistics start then adversarial step, and ship it when an operator earns
    # its place (RUN/recipe); "off": the colour generator alone
    recipe: str = "off"


@dataclass(frozen=True)
class ModelConfig:
    """Which networks to build; ``*_kwargs`` go verbatim to the model registry's builders."""

    generator: str = "resnet"  # key of styleforge.train.models.registry.GENERATORS, or auto (paired)
    generator_kwargs: dict = field(default_factory=lambda: {"ngf": 64, "n_blocks": 9})
    discriminator: str = "patchgan"  # key of DISCRIMINATORS
    discriminator_kwargs: dict = field(default_factory=lambda: {"ndf": 64, "n_layers": 3})
    latent_dim: int = 100  # dcgan mode only: length of the noise vector z
    colour: ColourModelConfig = field(default_factory=ColourModelConfig)  # colour generator only

    # The colour knobs' earlier places, for code that reads them there.
    init = property(lambda self: self.colour.init)
    freedom = property(lambda self: self.colour.freedom)
    shrink = property(lambda self: self.colour.shrink)
    select = property(lambda self: self.colour.select)


@dataclass(frozen=True)
class OptimConfig:
    """Adam for both players, as in DCGAN/CycleGAN: lr 2e-4, betas (0.5, 0.999)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # Linear decay to zero starts at this fraction of the steps (1.0 = constant learning rate).
    decay_start: float = 1.0
    ema_decay: float = 0.999  # EMA of generator weights (warmed up: min(decay, (1+t)/(10+t)))
    grad_clip: float = 0.0  # max global grad norm; 0 disables


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how batches are cut from them."""

    content_dir: str = ""  # unpaired: domain A (photos)
    style_dir: str = ""  # unpaired: domain B (styled photos); dcgan: the images to imitate
    paired_dir: str = ""  # paired: a folder with A/ and B/
    patch_size: int = 256  # random square crops (dcgan: images are resized to this size)
    batch_size: int = 1  # global batch; split evenly across DDP ranks
    num_workers: int = 0  # DataLoader workers (0 = load in the training process)


@dataclass(frozen=True)
class ColourLossConfig:
    """The colour generator's loss weights (unpaired; see :mod:`styleforge.train.objectives.colour`)."""

    lambda_anchor: float = 3.0  # L1 pull toward the classical fit the generator started from
    lambda_structure: float = 1.0  # 1 - local luma correlation with the input
    lambda_tv: float = 10.0  # LUT smoothness
    lambda_mono: float = 100.0  # LUT monotonicity
    lambda_local: float = 1.0  # L1 on the local branch's residual (keeps it off for global looks)


@dataclass(frozen=True)
class LossConfig:
    """Loss kinds and weights (CycleGAN: cycle 10, identity 0.5 x cycle; pix2pix: L1 100)."""

    gan: str = "lsgan"  # bce | lsgan | hinge | wgan-gp | ralsgan | rahinge (relativistic average)
    lambda_gan: float = 1.0  # weight of the adversarial term (paired: 0 = plain L1 regression)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # relative to lambda_cycle, as in CycleGAN
    lambda_l1: float = 100.0  # paired mode
    lambda_gp: float = 10.0  # wgan-gp only
    r1_gamma: float = 0.0  # R1 penalty on real images; 0 disables
    pool_size: int = 0  # discriminators also judge this many earlier fakes (CycleGAN: 50); 0 = off
    colour: ColourLossConfig = field(default_factory=ColourLossConfig)  # colour generator only

    # The colour weights' earlier places, for code that reads them there.
    lambda_anchor = property(lambda self: self.colour.lambda_anchor)
    lambda_structure = property(lambda self: self.colour.lambda_structure)
    lambda_tv = property(lambda self: self.colour.lambda_tv)
    lambda_mono = property(lambda self: self.colour.lambda_mono)
    lambda_local = property(lambda self: self.colour.lambda_local)


# Keys that moved into a colour sub-config: ``{config class: {earlier key: sub-config}}``. Saved
# run configs, YAML files and --set overrides that use the earlier keys still load
# (styleforge.train.config.resolve maps them).
MOVED_KEYS: dict[type, dict[str, str]] = {
    ModelConfig: {name: "colour" for name in ("init", "freedom", "shrink", "select")},
    LossConfig: {name: "colour" for name in
                 ("lambda_anchor", "lambda_structure", "lambda_tv", "lambda_mono", "lambda_local")},
}


@dataclass(frozen=True)
class LogConfig:
    """How often the loop reports, draws and saves (in steps)."""

    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 500
    keep: int = 3  # checkpoints kept on disk (the newest ones)
    eval_max_images: int = 16  # held-out images evaluated at the end of training


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs, except the output folder."""

    mode: str = "unpaired"  # unpaired | paired | dcgan
    steps: int = 1000
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # CUDA only: bf16 autocast where supported, else fp16 + GradScaler
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile the networks
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def checks(self) -> list[tuple[bool, str]]:
        """(holds, message naming the key) for every value that cannot work; see
        :func:`~styleforge.train.config.resolve.validate`."""
        colour = self.model.colour
        return [
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}"),
            (self.loss.gan in GAN_LOSSES, f"loss.gan must be one of {', '.join(GAN_LOSSES)}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.steps >= 1 or (self.steps == 0 and self.mode == "paired" and self.model.generator in ("colour", AUTO)),
             "steps must be >= 1 (0 only for a paired colour generator: the run ships the closed-form fit of the pairs)"),
            (self.data.batch_size >= 1, "data.batch_size must be >= 1"),
            (self.data.patch_size >= 8, "data.patch_size must be >= 8"),
            (self.data.num_workers >= 0, "data.num_workers must be >= 0"),
            (self.loss.pool_size >= 0, "loss.pool_size must be >= 0"),
            (0.0 <= self.optim.ema_decay < 1.0, "optim.ema_decay must be in [0, 1)"),
            (0.0 <= self.optim.decay_start <= 1.0, "optim.decay_start must be in [0, 1]"),
            (self.log.keep >= 1, "log.keep must be >= 1"),
            (colour.init in COLOUR_INITS, f"model.colour.init (model.init) must be one of {', '.join(COLOUR_INITS)}"),
            (0.0 <= colour.shrink <= 1.0, "model.colour.shrink (model.shrink) must be in [0, 1]"),
            (colour.freedom in ("evidence", "fixed"), "model.colour.freedom (model.freedom) must be evidence or fixed"),
            (colour.select in ("criterion", "last"), "model.colour.select (model.select) must be criterion or last"),
            (colour.recipe in ("auto", "off"), "model.colour.recipe must be auto or off"),
            (min(self.log.log_every, self.log.sample_every, self.log.checkpoint_every) >= 1,
             "log.*_every must be >= 1"),
        ]


# ---------------------------------------------------------------------------------------------
# distillation


@dataclass(frozen=True)
class LutConfig:
    """``distill --student lut``: the colour generator fitted to the teacher's pixels
    (:mod:`styleforge.train.lut_student`)."""

    steps: int = 800
    lr: float = 5e-3                    # Adam, constant
    lut_size: int = 17
    curve_knots: int = 32
    photos: int = 48                    # content photos the teacher is run on (short side 256)
    log_every: int = 50


@dataclass(frozen=True)
class DistillConfig:
    """Everything that decides a distillation run; saved as ``RUN/config.yaml`` (under ``distill:``)."""

    student: str = "small"              # MobileGenerator preset: nano | small | medium; or lut
    steps: int = 1500
    batch_size: int = 4
    patch_size: int = 128               # square crops; a multiple of the student's stride
    lr: float = 2e-3                    # student and adapters (Adam); linear decay over the 2nd half
    betas: tuple[float, float] = (0.9, 0.999)
    l1_weight: float = 1.0
    structural: str = "ssim"            # ssim | ms-ssim | none
    structural_weight: float = 0.5
    feature_weight: float = 1.0         # 0 disables the adapters
    adv_weight: float = 0.0             # 0 disables the PatchGAN
    gan_loss: str = "lsgan"             # a styleforge.train.losses.GANLoss kind
    d_lr: float = 2e-4
    ema_decay: float = 0.99             # 0 disables the EMA copy of the student
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    max_side: int = 512                 # training photos are downscaled to this longer side first
    heldout_limit: int = 8              # at most this many held-out photos in report.json
    heldout_max_side: int = 1024        # held-out photos larger than this are downscaled
    lut: LutConfig = field(default_factory=LutConfig)  # student=lut only

    def checks(self) -> list[tuple[bool, str]]:
        """(holds, message naming the key) for every value that cannot work; see
        :func:`~styleforge.train.config.resolve.validate`."""
        return [
            (self.student in STUDENTS, f"student must be one of {', '.join(STUDENTS)}"),
            (self.structural in STRUCTURAL_LOSSES, f"structural must be one of {', '.join(STRUCTURAL_LOSSES)}"),
            (self.gan_loss in GAN_LOSSES, f"gan_loss must be one of {', '.join(GAN_LOSSES)}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.steps >= 1 and self.batch_size >= 1, "steps and batch_size must be >= 1"),
            (self.patch_size >= 16, "patch_size must be >= 16"),
            (self.structural != "ms-ssim" or self.patch_size > 160,
             "ms-ssim needs patch_size > 160 (five scales of an 11-pixel window); use ssim"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)"),
            (min(self.log_every, self.sample_every, self.checkpoint_every, self.keep_checkpoints) >= 1,
             "log_every, sample_every, checkpoint_every and keep_checkpoints must be >= 1"),
            (self.max_side >= self.patch_size, "max_side must be >= patch_size"),
            (min(self.lut.steps, self.lut.photos, self.lut.log_every) >= 1,
             "lut.steps, lut.photos and lut.log_every must be >= 1"),
            (min(self.lut.lut_size, self.lut.curve_knots) >= 2, "lut.lut_size and lut.curve_knots must be >= 2"),
        ]
