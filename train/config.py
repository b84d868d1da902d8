"""The one config system of ``train``, ``distill`` and ``eval-looks``: frozen dataclasses, presets,
YAML files, ``--set key=value`` overrides and ``--dry-run``.

Each command is described completely by one frozen dataclass (:class:`TrainConfig`,
:class:`DistillConfig`, ``benchmarks.cli_eval.EvalLooksConfig``), resolved by one code path,
:func:`resolve_config`: a preset (``tiny`` for tests, ``cpu`` for a laptop, ``gpu`` for one modern
GPU; or, on ``--resume``, the run's saved config), then an optional YAML file, then ``--set``
overrides in order, then the command-line shortcuts (``--steps``...), then :func:`validate`.
:func:`add_config_arguments` gives every command the same ``--preset``, ``--config``, ``--set``
and ``--dry-run``; :func:`config_to_yaml` is what ``--dry-run`` prints and what a run saves as
``RUN/config.yaml`` (training runs also keep it in every checkpoint's ``meta.json``).

Training presets come in two families, chosen by :func:`preset_config`:

- :data:`COLOUR_PRESETS`, the default for unpaired looks: the colour generator (curves + matrix +
  3D LUT residual, see :mod:`styleforge.train.objectives.colour`) against a spectral-norm PatchGAN.
- :data:`RESNET_PRESETS` for ``--model resnet`` (CycleGAN), ``--paired`` (pix2pix) and the other
  architectures: the ``tiny`` and ``cpu`` teachers are residual (``clip(x + delta)``, identity at
  init: see :class:`~styleforge.train.models.resnet.ResnetGenerator`); ``gpu`` keeps the exact
  CycleGAN network.

Distillation has :data:`DISTILL_PRESETS` (a conv student, or with ``student=lut`` the LUT fit of
``distill --student lut``, whose settings are the ``lut`` section).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence, TypeVar, Union

from styleforge.errors import StyleforgeError

PRESET_NAMES = ("tiny", "cpu", "gpu")
MODES = ("unpaired", "paired", "dcgan")
COLOUR_INITS = ("evidence", "levels", "mkl", "mkl+hist", "hist", "identity")  # model.init: objectives.colour.ColourObjective.prepare
GAN_LOSSES = ("bce", "lsgan", "hinge", "wgan-gp", "ralsgan", "rahinge")  # styleforge.train.losses.KINDS
DEVICES = ("auto", "cpu", "cuda")
STUDENTS = ("nano", "small", "medium", "lut")  # MobileGenerator presets, or the LUT fit
STRUCTURAL_LOSSES = ("ssim", "ms-ssim", "none")

Config = TypeVar("Config")  # any of the frozen config dataclasses


class ConfigError(StyleforgeError, ValueError):
    """A configuration file or override that does not match its config dataclass."""


@dataclass(frozen=True)
class ModelConfig:
    """Which networks to build; ``*_kwargs`` go verbatim to the model registry's builders."""

    generator: str = "resnet"  # key of styleforge.train.models.registry.GENERATORS
    generator_kwargs: dict = field(default_factory=lambda: {"ngf": 64, "n_blocks": 9})
    discriminator: str = "patchgan"  # key of DISCRIMINATORS
    discriminator_kwargs: dict = field(default_factory=lambda: {"ndf": 64, "n_layers": 3})
    latent_dim: int = 100  # dcgan mode only: length of the noise vector z
    # colour generator's classical start: evidence (a colour matrix around the levels fit, weighed by
    # how well the scene groups of both folders agree, then tone curves: styleforge.photo.evidence)
    # | levels | mkl | mkl+hist | hist | identity
    init: str = "evidence"
    # colour generator: "evidence" sets shrink and the anchor from the evidence start's freedom
    # (the curve stage's kept fraction); "fixed" uses model.shrink and loss.lambda_anchor
    freedom: str = "evidence"
    # colour generator: each trained candidate is start + shrink * (trained - start), weight by weight;
    # 1 keeps the trained weights, 0 the start. Shrinkage toward the classical start trades some of
    # the adversarial step's gains for much less of its scene-driven harm (README, "How an unpaired
    # look is learned": 0.25 kept the mean gain of 0.5 at a third of the worst loss)
    shrink: float = 0.25
    # colour generator: which candidate ships: "last" (the last EMA generator, after shrink) or
    # "criterion" (the unsupervised selection score's pick, the classical start included)
    select: str = "last"


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
    # colour generator (unpaired): see styleforge.train.objectives.colour
    lambda_anchor: float = 3.0  # L1 pull toward the classical fit the generator started from
    lambda_structure: float = 1.0  # 1 - local luma correlation with the input
    lambda_tv: float = 10.0  # LUT smoothness
    lambda_mono: float = 100.0  # LUT monotonicity
    lambda_local: float = 1.0  # L1 on the local branch's residual (keeps it off for global looks)


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
        """(holds, message naming the key) for every value that cannot work; see :func:`validate`."""
        return [
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}"),
            (self.loss.gan in GAN_LOSSES, f"loss.gan must be one of {', '.join(GAN_LOSSES)}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.data.batch_size >= 1, "data.batch_size must be >= 1"),
            (self.data.patch_size >= 8, "data.patch_size must be >= 8"),
            (self.data.num_workers >= 0, "data.num_workers must be >= 0"),
            (self.loss.pool_size >= 0, "loss.pool_size must be >= 0"),
            (0.0 <= self.optim.ema_decay < 1.0, "optim.ema_decay must be in [0, 1)"),
            (0.0 <= self.optim.decay_start <= 1.0, "optim.decay_start must be in [0, 1]"),
            (self.log.keep >= 1, "log.keep must be >= 1"),
            (self.model.init in COLOUR_INITS, f"model.init must be one of {', '.join(COLOUR_INITS)}"),
            (0.0 <= self.model.shrink <= 1.0, "model.shrink must be in [0, 1]"),
            (self.model.freedom in ("evidence", "fixed"), "model.freedom must be evidence or fixed"),
            (self.model.select in ("criterion", "last"), "model.select must be criterion or last"),
            (min(self.log.log_every, self.log.sample_every, self.log.checkpoint_every) >= 1,
             "log.*_every must be >= 1"),
        ]


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
# LUT residual of bin means), which training at the unpaired rate only spoils: Adam moves every
# rarely-seen LUT node by about the learning rate per step whatever its gradient (600 steps at 5e-4:
# teal-orange split 1 43.57 -> 34.45 dB on held-out scenes, even with L1 alone; at 1e-5: 43.20).
PAIRED_COLOUR_LR_G = 1e-5


def preset_config(name: str, generator: Optional[str] = None, paired: bool = False) -> TrainConfig:
    """Preset ``name`` for a generator family: the colour generator unless ``generator`` is another
    architecture (``resnet``, ``mobile``, ``dcgan``), which starts from the ResNet presets; a
    ``paired`` colour generator refines its closed-form start at :data:`PAIRED_COLOUR_LR_G`."""
    colour = generator in (None, "colour")
    config = preset(COLOUR_PRESETS if colour else RESNET_PRESETS, name)
    if colour and paired:
        config = replace(config, optim=replace(config.optim, lr_g=PAIRED_COLOUR_LR_G))
    return config


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
        """(holds, message naming the key) for every value that cannot work; see :func:`validate`."""
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


# ---------------------------------------------------------------------------------------------
# the one code path: preset, YAML, --set, shortcuts, validation, --dry-run


def preset(presets: dict[str, Config], name: str) -> Config:
    """``presets[name]``, or a :class:`ConfigError` naming the choices."""
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
    return presets[name]


def resolve_config(
    base: Config,
    yaml_path: Union[str, Path, None] = None,
    overrides: Sequence[str] = (),
    shortcuts: Optional[dict[str, Any]] = None,
    section: Optional[str] = None,
) -> Config:
    """``base`` (a preset, or a resumed run's saved config), then the YAML file (its ``section:``
    mapping when it has one), then ``a.b=c`` overrides in order, then ``shortcuts`` (a partial
    nested dict from command-line flags); validated."""
    config = base
    if yaml_path is not None:
        data = read_yaml(yaml_path)
        config = config_from_dict(data.get(section, data) if section else data, base=config)
    for text in overrides:
        config = apply_override(config, text)
    if shortcuts:
        config = config_from_dict(shortcuts, base=config)
    validate(config)
    return config


def load_config(
    preset: str = "cpu",
    yaml_path: Union[str, Path, None] = None,
    overrides: Optional[list[str]] = None,
    generator: Optional[str] = None,
) -> TrainConfig:
    """A training config: :func:`preset_config` through :func:`resolve_config`."""
    return resolve_config(preset_config(preset, generator), yaml_path, overrides or ())


def validate(config) -> None:
    """Reject values that cannot work, with a message that names the key (the config's ``checks()``)."""
    for ok, message in config.checks():
        if not ok:
            raise ConfigError(message)


def config_to_dict(config) -> dict[str, Any]:
    """Plain nested dict (YAML/JSON-ready: tuples become lists) of a config."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(map(plain, value)) if isinstance(value, (tuple, list)) else value

    return plain(dataclasses.asdict(config))


def config_from_dict(data: dict[str, Any], base=None):
    """Apply a (possibly partial) nested dict onto ``base`` (default ``TrainConfig()``); unknown
    keys and values of the wrong type raise :class:`ConfigError`."""
    return _merge(TrainConfig() if base is None else base, data, prefix="")


def _merge(obj: Any, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    known = {f.name: f for f in fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown config key '{prefix}{key}'; known: {', '.join(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merge(current, value, prefix=f"{prefix}{key}.")
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a mapping, got {value!r}")
            changes[key] = dict(value)  # kwargs dicts are replaced whole, not merged
        else:
            changes[key] = _coerce(value, current, f"{prefix}{key}", hints[key])
    return replace(obj, **changes)


def _coerce(value: Any, current: Any, name: str, hint: Any) -> Any:
    """Give ``value`` the field's type (YAML may say 1 for 1.0; a tuple may come as ``a,b``)."""
    if isinstance(current, tuple):
        if isinstance(value, str):  # "a,b" from a flag or --set: each item read as YAML
            import yaml

            value = [yaml.safe_load(v) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        kinds = typing.get_args(hint)  # (float, float) or (int, Ellipsis)
        if len(kinds) == 2 and kinds[1] is Ellipsis:
            kinds = (kinds[0],) * len(value)
        if len(kinds) != len(value):
            raise ConfigError(f"{name}: expected {len(kinds)} values, got {value!r}")
        return tuple(_coerce(v, kind(), f"{name}[{i}]", kind) for i, (v, kind) in enumerate(zip(value, kinds)))
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if isinstance(current, (int, float)) and not isinstance(value, bool):
        try:
            converted = type(current)(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        if isinstance(current, int) and converted != value:
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return converted
    if isinstance(current, str):
        return "" if value is None else str(value)
    raise ConfigError(f"{name}: cannot set to {value!r}")


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b=c"`` -> ``{"a": {"b": c}}`` with ``c`` parsed as YAML (numbers, booleans, lists, mappings)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None
    return _nest(keys, value)


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


def apply_override(config: Config, text: str) -> Config:
    """Apply one ``a.b=c`` override (see :func:`parse_override`) to ``config``.

    A path into a dict field (``model.generator_kwargs.ngf=16``) sets that one entry and keeps
    the others; everything else replaces the value it names.
    """
    patch = parse_override(text)
    keys = [k for k in text.split("=", 1)[0].strip().split(".") if k]
    holder = config
    for key in keys[:-1]:
        holder = getattr(holder, key, None) if dataclasses.is_dataclass(holder) else None
    if len(keys) >= 2 and isinstance(holder, dict):
        value = patch
        for key in keys:
            value = value[key]
        patch = _nest(keys[:-1], {**holder, keys[-1]: value})
    return config_from_dict(patch, base=config)


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def config_to_yaml(config, section: Optional[str] = None, context: Optional[dict[str, Any]] = None) -> str:
    """The YAML that ``--dry-run`` prints and a run saves: the config at the top level, or under
    ``section:`` after the ``context`` (e.g. the teacher and folders of a distillation)."""
    import yaml

    data = config_to_dict(config)
    if section is not None:
        data = {**(context or {}), section: data}
    return yaml.safe_dump(data, sort_keys=False)


def add_config_arguments(parser, example: str, section: Optional[str] = None,
                         preset_help: str = "starting config (default: cpu)") -> None:
    """``--preset``, ``--config``, ``--set`` and ``--dry-run``, spelled alike in every command
    (argparse only: this runs when ``styleforge --help`` builds the parser)."""
    where = f" (its keys at the top level or under '{section}:')" if section else ""
    parser.add_argument("--preset", choices=PRESET_NAMES, default="cpu", help=preset_help)
    parser.add_argument("--config", type=Path, metavar="FILE.yaml", help=f"YAML file overriding the preset{where}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one config value, e.g. --set {example} (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config (YAML) and exit")
