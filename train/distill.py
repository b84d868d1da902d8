"""Distillation: teach a tiny mobile student to reproduce a teacher generator's look.

The teacher labels the user's photos on the fly (pseudo-pairs: student input = a content crop,
target = ``teacher(crop)`` under ``torch.no_grad()``) and the student learns with

* a pixel loss (L1) and a structural loss (1 - SSIM or MS-SSIM, ``pytorch_msssim``),
* a feature loss as in GAN Compression (Li et al. 2020): the student's features at its
  ``distill_points`` pass through learned 1x1 conv adapters and match the teacher's features at
  its ``distill_points`` (resized to the student's spatial size) in mean squared error,
* optionally an adversarial loss: a small PatchGAN judges student outputs against teacher outputs.

The run folder is laid out like a training run (``styleforge.train.checkpoint``) so that
``load_generator(RUN)`` and ``styleforge export RUN`` treat a student like any teacher. Each
step's batch comes from ``numpy.random.default_rng([seed, step])``, so ``--resume`` on CPU
continues bit-exactly. All tensors are float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]`` unless noted.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import styleforge
from styleforge.atomic import write_text
from styleforge.runtime.imageio import ImageError, list_images, open_image, to_uint8_array
from styleforge.train.teachers import TeacherWrapper
from styleforge.train.tensors import image_to_tensor

STRUCTURAL_LOSSES = ("ssim", "ms-ssim", "none")
DEVICES = ("auto", "cpu", "cuda")


class DistillError(ValueError):
    """A distillation setup that cannot run (bad config, empty folder, incompatible run folder)."""


# --------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DistillConfig:
    """Everything that decides a distillation run; saved as ``RUN/config.yaml``."""

    student: str = "small"              # MobileGenerator preset: nano | small | medium
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


PRESETS: dict[str, DistillConfig] = {
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


def resolve_config(preset: str = "cpu", yaml_path: Optional[Path] = None, sets: tuple[str, ...] = (),
                   **shortcuts: Any) -> DistillConfig:
    """Preset, then a YAML file, then ``key=value`` overrides, then CLI shortcuts (``None`` = unset)."""
    from styleforge.train.config import ConfigError, parse_override, read_yaml

    if preset not in PRESETS:
        raise DistillError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    values: dict[str, Any] = {}
    try:
        if yaml_path is not None:
            loaded = read_yaml(yaml_path)
            values.update(loaded.get("distill", loaded))
        for text in sets:
            values.update(parse_override(text))
    except ConfigError as err:
        raise DistillError(str(err)) from None
    values.update({k: v for k, v in shortcuts.items() if v is not None})
    return config_from_dict(values, base=PRESETS[preset])


def config_from_dict(values: dict, base: DistillConfig = DistillConfig()) -> DistillConfig:
    """Apply ``values`` onto ``base``, coercing YAML scalars to each field's type."""
    fields = {f.name: f for f in dataclasses.fields(DistillConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DistillError(f"unknown distill config keys: {', '.join(unknown)}; known: {', '.join(fields)}")
    changes = {}
    for key, value in values.items():
        current = getattr(base, key)
        try:
            if isinstance(current, tuple):
                changes[key] = tuple(float(v) for v in value)
            elif isinstance(current, bool) or isinstance(current, str):
                changes[key] = type(current)(value)
            elif isinstance(current, int):
                if float(value) != int(float(value)):
                    raise ValueError
                changes[key] = int(float(value))
            else:
                changes[key] = float(value)
        except (TypeError, ValueError):
            raise DistillError(f"{key}: cannot use {value!r} (expected {type(current).__name__})") from None
    cfg = dataclasses.replace(base, **changes)
    checks = [
        (cfg.structural in STRUCTURAL_LOSSES, f"structural must be one of {', '.join(STRUCTURAL_LOSSES)}"),
        (cfg.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
        (cfg.steps >= 1 and cfg.batch_size >= 1, "steps and batch_size must be >= 1"),
        (cfg.patch_size >= 16, "patch_size must be >= 16"),
        (cfg.structural != "ms-ssim" or cfg.patch_size > 160,
         "ms-ssim needs patch_size > 160 (five scales of an 11-pixel window); use ssim"),
        (0.0 <= cfg.ema_decay < 1.0, "ema_decay must be in [0, 1)"),
        (min(cfg.log_every, cfg.sample_every, cfg.checkpoint_every, cfg.keep_checkpoints) >= 1,
         "log_every, sample_every, checkpoint_every and keep_checkpoints must be >= 1"),
        (cfg.max_side >= cfg.patch_size, "max_side must be >= patch_size"),
    ]
    for ok, message in checks:
        if not ok:
            raise DistillError(message)
    return cfg


def config_to_dict(cfg: DistillConfig) -> dict:
    out = dataclasses.asdict(cfg)
    out["betas"] = list(cfg.betas)
    return out


# ---------------------------------------------------------------------------------------- data


class ContentCrops:
    """Random crops of the user's photos: the student's inputs and, through the teacher, targets.

    Photos are decoded once (``open_image``: EXIF orientation, any mode -> RGB) and downscaled so
    the longer side is at most ``max_side`` (and the shorter at least ``patch_size``).
    ``get(i, rng) -> {"content": Tensor[3, P, P]}`` in [-1, 1]. Half the crops are taken at the
    photo's own scale (the scale the report and the app run at); the other half cover a larger,
    log-uniformly drawn square resized down to ``P`` (the zoomed-out views a teacher trained on
    ``make-dataset`` crops saw). Crop, scale and flip all come from ``rng``, in a fixed order.
    """

    def __init__(self, content_dir: Path, patch_size: int, max_side: int = 512):
        self.patch_size = patch_size
        self.skipped: list[tuple[Path, str]] = []
        self.paths: list[Path] = []
        self.images: list[np.ndarray] = []
        folder = Path(content_dir)
        if not folder.is_dir():
            raise DistillError(f"{folder}: no such content folder")
        for path in list_images(folder):
            try:
                rgb = open_image(path).rgb
            except ImageError as err:
                self.skipped.append((path, str(err)))
                continue
            self.paths.append(path)
            self.images.append(to_uint8_array(_fit(rgb, max_side, patch_size)))
        if not self.images:
            raise DistillError(f"{folder}: no readable photos")

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        img = self.images[i]
        p = self.patch_size
        short = min(img.shape[:2])
        zoom_out = rng.random() < 0.5
        side = int(round(np.exp(rng.uniform(np.log(p), np.log(short))))) if zoom_out else p
        top = int(rng.integers(0, img.shape[0] - side + 1))
        left = int(rng.integers(0, img.shape[1] - side + 1))
        crop = img[top:top + side, left:left + side]
        if side != p:
            from PIL import Image

            crop = np.asarray(Image.fromarray(crop).resize((p, p), Image.BICUBIC, reducing_gap=3.0))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return {"content": image_to_tensor(crop)}


def _fit(img, max_side: int, min_side: int):
    """Downscale so the longer side <= max_side, upscale only if the shorter side < min_side."""
    from PIL import Image

    w, h = img.size
    scale = min(1.0, max_side / max(w, h))
    scale = max(scale, min_side / min(w, h))
    if abs(scale - 1.0) < 1e-9:
        return img
    return img.resize((max(min_side, round(w * scale)), max(min_side, round(h * scale))), Image.BICUBIC)


def batch_for_step(dataset, step: int, seed: int, batch_size: int) -> torch.Tensor:
    """The batch of step ``step``: a pure function of (seed, step), so a resumed run sees the same."""
    rng = np.random.default_rng([seed, step])
    indices = rng.integers(0, len(dataset), size=batch_size)
    return torch.stack([dataset.get(int(i), rng)["content"] for i in indices])  # [N,3,P,P]


# ------------------------------------------------------------------------------------ features


class FeatureTap:
    """Forward hooks that keep the outputs of named submodules from the latest forward pass."""

    def __init__(self, modules: dict[str, nn.Module]):
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name: str):
        def keep(_module, _inputs, output):
            self.outputs[name] = output[0] if isinstance(output, (tuple, list)) else output
        return keep

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def pair_points(student_points: tuple[str, ...], teacher_points: tuple[str, ...]) -> list[tuple[str, str]]:
    """Match each student point to the teacher point at the same relative depth."""
    if not student_points or not teacher_points:
        return []
    if len(student_points) == 1:
        return [(student_points[0], teacher_points[len(teacher_points) // 2])]
    last_s, last_t = len(student_points) - 1, len(teacher_points) - 1
    return [(s, teacher_points[round(k * last_t / last_s)]) for k, s in enumerate(student_points)]


class FeatureAdapters(nn.Module):
    """Learned 1x1 convs mapping student features to the teacher's channel counts (GAN Compression).

    ``forward(student_feats, teacher_feats)`` -> scalar: the mean over pairs of
    ``mse(adapter(s), resize(t, s.shape[-2:]))``; ``s`` is ``[N, Cs, h, w]``, ``t`` ``[N, Ct, H, W]``.
    """

    def __init__(self, pairs: list[tuple[str, str]], student_channels: list[int], teacher_channels: list[int]):
        super().__init__()
        self.pairs = list(pairs)
        self.convs = nn.ModuleList(nn.Conv2d(cs, ct, kernel_size=1) for cs, ct in zip(student_channels, teacher_channels))

    def forward(self, student_feats: dict[str, torch.Tensor], teacher_feats: dict[str, torch.Tensor]) -> torch.Tensor:
        losses = []
        for (s_name, t_name), conv in zip(self.pairs, self.convs):
            s = conv(student_feats[s_name])
            t = teacher_feats[t_name].detach()
            if t.shape[-2:] != s.shape[-2:]:
                t = F.interpolate(t, size=s.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
            losses.append(F.mse_loss(s, t))
        return torch.stack(losses).mean()


def build_adapters(student: nn.Module, teacher: TeacherWrapper, patch_size: int) -> tuple[FeatureAdapters, dict]:
    """Pair distill points and size the adapters from one probe forward pass on a zero image."""
    s_points = tuple(getattr(student, "distill_points", ()))
    pairs = pair_points(s_points, teacher.distill_points)
    if not pairs:
        return FeatureAdapters([], [], []), {"pairs": [], "reason": "teacher or student has no distill_points"}
    s_modules, t_modules = dict(student.named_modules()), teacher.feature_modules()
    s_tap = FeatureTap({s: s_modules[s] for s, _ in pairs})
    t_tap = FeatureTap({t: t_modules[t] for _, t in pairs})
    probe = torch.zeros(1, 3, patch_size, patch_size, device=next(student.parameters()).device)
    try:
        with torch.no_grad():
            student(probe)
            teacher(probe)
    finally:
        s_tap.close()
        t_tap.close()
    s_ch = [s_tap.outputs[s].shape[1] for s, _ in pairs]
    t_ch = [t_tap.outputs[t].shape[1] for _, t in pairs]
    info = {"pairs": [[s, t, cs, ct] for (s, t), cs, ct in zip(pairs, s_ch, t_ch)]}
    return FeatureAdapters(pairs, s_ch, t_ch), info


# -------------------------------------------------------------------------------------- losses


def structural_loss(kind: str, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` (or MS-SSIM) between two [-1, 1] batches, computed on [0, 1] values."""
    try:
        from pytorch_msssim import ms_ssim, ssim
    except ImportError:
        raise DistillError("the structural loss needs pytorch-msssim: pip install pytorch-msssim "
                           "(or set structural=none)") from None

    a, b = (student_out + 1.0) * 0.5, (teacher_out + 1.0) * 0.5
    if kind == "ms-ssim":
        return 1.0 - ms_ssim(a, b, data_range=1.0)
    win = 11 if min(a.shape[-2:]) >= 11 else (min(a.shape[-2:]) // 2) * 2 - 1
    return 1.0 - ssim(a, b, data_range=1.0, win_size=win)


def lr_at(step: int, cfg: DistillConfig, base_lr: float) -> float:
    """Constant for the first half, then linear decay to 10% (CycleGAN's schedule, shortened)."""
    half = cfg.steps / 2
    if step < half:
        return base_lr
    return base_lr * (1.0 - 0.9 * (step - half) / max(1.0, half))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    # Warm-up (as in TF's ExponentialMovingAverage num_updates): early averages do not drag in init noise.
    d = min(decay, (1.0 + step) / (10.0 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - d)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


# ---------------------------------------------------------------------------------------- loop


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DistillError("device 'cuda' requested but torch sees no CUDA GPU")
    return torch.device(name)


class StudentParts(nn.Module):
    """The trainable side of a run: student (+ EMA copy), feature adapters, optional PatchGAN."""

    def __init__(self, cfg: DistillConfig, teacher: TeacherWrapper, device: torch.device):
        super().__init__()
        from styleforge.train.models.registry import build_discriminator, build_generator

        torch.manual_seed(cfg.seed)  # the same seed builds the same student, adapters and critic
        self.student = build_generator("mobile", preset=cfg.student).to(device)
        stride = int(getattr(self.student, "stride", 1))
        if cfg.patch_size % stride:
            raise DistillError(f"patch_size {cfg.patch_size} is not a multiple of the {cfg.student} student's stride {stride}")
        adapters, self.adapter_info = build_adapters(self.student, teacher, cfg.patch_size)
        self.adapters = adapters.to(device)
        self.use_features = cfg.feature_weight > 0 and bool(adapters.pairs)
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = build_generator("mobile", **self.student.config).to(device).eval()
            self.ema.load_state_dict(self.student.state_dict())
            self.ema.requires_grad_(False)
        self.critic = None
        if cfg.adv_weight > 0:
            ndf = 8 if cfg.patch_size <= 64 else 32
            self.critic = build_discriminator("patchgan", ndf=ndf, n_layers=2 if cfg.patch_size <= 64 else 3).to(device)

    def final_student(self) -> nn.Module:
        return self.ema if self.ema is not None else self.student

    def state_dicts(self) -> dict[str, dict]:
        out = {"generator": self.student.state_dict()}
        if self.ema is not None:
            out["generator_ema"] = self.ema.state_dict()
        if self.adapters.pairs:
            out["adapters"] = self.adapters.state_dict()
        if self.critic is not None:
            out["discriminator"] = self.critic.state_dict()
        return out

    def load_state_dicts(self, state_dicts: dict[str, dict]) -> None:
        self.student.load_state_dict(state_dicts["generator"])
        if self.ema is not None:
            self.ema.load_state_dict(state_dicts.get("generator_ema", state_dicts["generator"]))
        if self.adapters.pairs:
            self.adapters.load_state_dict(state_dicts["adapters"])
        if self.critic is not None:
            self.critic.load_state_dict(state_dicts["discriminator"])


def fixed_sample_inputs(dataset: ContentCrops, count: int = 3) -> torch.Tensor:
    """Centre crops of the first photos: the same inputs for every sample grid of a run."""
    crops = []
    for img in dataset.images[:count]:
        p = dataset.patch_size
        top, left = (img.shape[0] - p) // 2, (img.shape[1] - p) // 2
        crops.append(image_to_tensor(img[top:top + p, left:left + p]))
    return torch.stack(crops)


@torch.no_grad()
def save_samples(path: Path, inputs: torch.Tensor, teacher: nn.Module, student: nn.Module) -> Path:
    from styleforge.train.runlog import save_image_grid

    was_training = student.training
    student.eval()
    t_out, s_out = teacher(inputs), student(inputs)
    student.train(was_training)
    rows = [[x, t, s] for x, t, s in zip(inputs.cpu(), t_out.cpu(), s_out.cpu())]
    return save_image_grid(rows, path, col_labels=["input", "teacher", "student"])


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
    from tqdm.auto import tqdm

    from styleforge.train.checkpoint import (
        latest_checkpoint,
        load_checkpoint,
        save_checkpoint,
        step_name,
    )
    from styleforge.train.runlog import RunLogger, plot_losses, read_log
    from styleforge.train.trainer import git_commit

    out = Path(out)
    device = resolve_device(cfg.device)
    dataset = ContentCrops(content_dir, cfg.patch_size, cfg.max_side)
    teacher = teacher.to(device)
    parts = StudentParts(cfg, teacher, device)
    student, adapters, critic = parts.student, parts.adapters, parts.critic
    opt_g = torch.optim.Adam([*student.parameters(), *adapters.parameters()], lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.d_lr, betas=(0.5, 0.999)) if critic is not None else None
    gan = None
    if critic is not None:
        from styleforge.train.losses import GANLoss

        gan = GANLoss(cfg.gan_loss)

    start = 0
    checkpoint = latest_checkpoint(out) if out.exists() else None
    if checkpoint is not None and not resume:
        if not force:
            raise DistillError(f"{out} already holds checkpoints (newest {checkpoint.name}); "
                               "pass --resume to continue it or --force to start over")
        for stale in ("checkpoints", "samples"):
            shutil.rmtree(out / stale, ignore_errors=True)
        (out / "report.json").unlink(missing_ok=True)
        checkpoint = None
    if resume and checkpoint is not None:
        state_dicts, meta, train_state = load_checkpoint(checkpoint)
        parts.load_state_dicts(state_dicts)
        opt_g.load_state_dict(train_state["opt_g"])
        if opt_d is not None:
            opt_d.load_state_dict(train_state["opt_d"])
        start = int(meta["step"])
    _write_config(out, cfg)
    logger = RunLogger(out, resume_from=start if start else None)

    meta = {
        "generator": {"arch": student.arch_name, "config": dict(student.config)},
        "style": teacher_info.get("style", ""),
        "input_range": [-1.0, 1.0],
        "mode": "distill",
        "config": config_to_dict(cfg),
        "adapters": parts.adapter_info,
        "run": {
            "kind": "distill",
            "mode": "distill",
            "student": cfg.student,
            "seed": cfg.seed,
            "steps": cfg.steps,
            "content_dir": str(Path(content_dir).resolve()),
            "dataset_size": len(dataset),
            "git_commit": git_commit(),
            "versions": {"styleforge": styleforge.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            "teacher": {k: teacher_info.get(k) for k in
                        ("kind", "spec", "weights", "input_range", "arch", "config", "style", "step", "run")},
        },
    }
    s_tap = FeatureTap({s: dict(student.named_modules())[s] for s, _ in adapters.pairs}) if parts.use_features else None
    t_tap = FeatureTap({t: teacher.feature_modules()[t] for _, t in adapters.pairs}) if parts.use_features else None
    sample_inputs = fixed_sample_inputs(dataset).to(device)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    student.train()
    begun = time.perf_counter()

    def save(step: int) -> None:
        train_state = {"opt_g": opt_g.state_dict(), **({"opt_d": opt_d.state_dict()} if opt_d else {})}
        save_checkpoint(out, step, parts.state_dicts(), meta, train_state, keep=cfg.keep_checkpoints)

    bar = tqdm(range(start, end), total=end - start, desc="distill", disable=not show_progress, dynamic_ncols=True)
    for step in bar:
        lr = lr_at(step, cfg, cfg.lr)
        for group in opt_g.param_groups:
            group["lr"] = lr
        x = batch_for_step(dataset, step, cfg.seed, cfg.batch_size).to(device)  # [N,3,P,P]
        with torch.no_grad():
            target = teacher(x)  # [N,3,P,P]; features land in t_tap
        student_out = student(x)
        losses = {"l1": F.l1_loss(student_out, target)}
        total = cfg.l1_weight * losses["l1"]
        if cfg.structural != "none" and cfg.structural_weight > 0:
            losses["structural"] = structural_loss(cfg.structural, student_out, target)
            total = total + cfg.structural_weight * losses["structural"]
        if parts.use_features:
            losses["feature"] = adapters(s_tap.outputs, t_tap.outputs)
            total = total + cfg.feature_weight * losses["feature"]
        if critic is not None:
            critic.requires_grad_(False)
            losses["adv_g"] = gan.g_loss(critic(student_out))
            total = total + cfg.adv_weight * losses["adv_g"]
            critic.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        if critic is not None:
            opt_d.zero_grad(set_to_none=True)
            losses["adv_d"] = gan.d_loss(critic(target), critic(student_out.detach()))
            losses["adv_d"].backward()
            opt_d.step()
        if parts.ema is not None:
            ema_update(parts.ema, student, cfg.ema_decay, step)

        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:  # not at stop_at: resumed logs read as one
            scalars = {k: float(v.detach()) for k, v in losses.items()}
            logger.log(done, total=float(total.detach()), lr=lr, **scalars)
            bar.set_postfix({k: f"{v:.4f}" for k, v in scalars.items()}, refresh=False)
        if done % cfg.sample_every == 0 or done == cfg.steps:
            save_samples(out / "samples" / f"{step_name(done)}.png", sample_inputs, teacher, parts.final_student())
        if done % cfg.checkpoint_every == 0 or done == end:
            save(done)
    bar.close()
    for tap in (s_tap, t_tap):
        if tap is not None:
            tap.close()
    plot_losses(out / "log.jsonl", out / "loss.png")
    if end < cfg.steps:
        return None

    from styleforge.train.distill_report import build_report, write_report

    report = build_report(
        teacher, teacher_info, parts.final_student().eval(), cfg, content_dir, dataset.paths, heldout, device,
    )
    log_rows = read_log(out / "log.jsonl")
    report["train"] = {
        "steps": cfg.steps,
        "resumed_from": start,
        "seconds_this_session": round(time.perf_counter() - begun, 2),
        "final_losses": log_rows[-1] if log_rows else {},
        "skipped_photos": [[str(p), why] for p, why in dataset.skipped],
    }
    write_report(out / "report.json", report)
    return report


def _write_config(out: Path, cfg: DistillConfig) -> None:
    import yaml

    write_text(out / "config.yaml", yaml.safe_dump({"distill": config_to_dict(cfg)}, sort_keys=False))


def read_run_config(out: Path) -> Optional[DistillConfig]:
    """The config a distillation run was started with (``RUN/config.yaml``), or None."""
    path = Path(out) / "config.yaml"
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "distill" not in data:
        raise DistillError(f"{path} is not a distillation run's config")
    return config_from_dict(data["distill"])
