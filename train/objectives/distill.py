"""Distillation as an objective: a tiny mobile student learns a teacher generator's look.

``DistillObjective`` is run by the same loop as every GAN objective (``engine.run_loop``:
seeding, EMA, schedule, logging, samples, checkpoints, resume). The teacher labels each batch of
content crops on the fly (``target = teacher(x)`` under ``torch.no_grad()``) and the student
learns with

* a pixel loss (L1) and a structural loss (1 - SSIM or MS-SSIM, ``pytorch_msssim``),
* a feature loss as in GAN Compression (Li et al. 2020): the student's features at its
  ``distill_points`` pass through learned 1x1 conv adapters and match the teacher's features at
  its ``distill_points`` (resized to the student's spatial size) in mean squared error,
* optionally an adversarial loss: a small PatchGAN judges student outputs against teacher outputs.

All tensors are float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]`` unless noted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge.errors import StyleforgeError
from styleforge.train.config import DistillConfig
from styleforge.train.engine import BaseObjective, Phases
from styleforge.train.losses import GANLoss
from styleforge.train.models.registry import build_discriminator, build_generator
from styleforge.train.teachers import TeacherWrapper

# ------------------------------------------------------------------------------------ features



class DistillError(StyleforgeError, ValueError):
    """A distillation setup that cannot run (bad config, empty folder, incompatible run folder)."""


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


# ----------------------------------------------------------------------------------- objective


class DistillObjective(BaseObjective):
    """``batch = {"content": [N,3,P,P]}`` in [-1, 1]; the teacher makes the targets.

    Networks (saved in checkpoints under these names): ``generator`` (the student),
    ``adapters`` (when the teacher and student have distill points) and ``discriminator`` (when
    ``adv_weight > 0``). Optimisers: ``g`` (student + adapters, Adam at ``lr``) and ``d``
    (critic, Adam at ``d_lr``). The teacher is frozen and never saved.
    """

    lr_log_key = "lr"

    def __init__(self, cfg: DistillConfig, teacher: TeacherWrapper, device: torch.device):

        super().__init__(cfg)
        self.teacher = teacher
        torch.manual_seed(cfg.seed)  # the same seed builds the same student, adapters and critic
        student = build_generator("mobile", preset=cfg.student).to(device)
        stride = int(getattr(student, "stride", 1))
        if cfg.patch_size % stride:
            raise DistillError(f"patch_size {cfg.patch_size} is not a multiple of the {cfg.student} student's stride {stride}")
        adapters, self.adapter_info = build_adapters(student, teacher, cfg.patch_size)
        self.adapters = adapters.to(device)
        self.networks = {"generator": student}
        if adapters.pairs:
            self.networks["adapters"] = self.adapters
        self.optimizers = {"g": torch.optim.Adam([*student.parameters(), *adapters.parameters()],
                                                 lr=cfg.lr, betas=cfg.betas)}
        if cfg.adv_weight > 0:
            small = cfg.patch_size <= 64
            critic = build_discriminator("patchgan", ndf=8 if small else 32, n_layers=2 if small else 3)
            self.networks["discriminator"] = critic.to(device)
            self.optimizers["d"] = torch.optim.Adam(critic.parameters(), lr=cfg.d_lr, betas=(0.5, 0.999))
            self.gan = GANLoss(cfg.gan_loss)
        self.taps: tuple[FeatureTap, FeatureTap] | None = None
        if cfg.feature_weight > 0 and adapters.pairs:
            s_modules = dict(student.named_modules())
            self.taps = (FeatureTap({s: s_modules[s] for s, _ in adapters.pairs}),
                         FeatureTap({t: teacher.feature_modules()[t] for _, t in adapters.pairs}))

    def lr_groups(self) -> dict[str, float]:
        return {"g": self.config.lr, "d": self.config.d_lr}

    def lr_scales(self, step: int) -> dict[str, float]:
        """The student's rate: constant for the first half, then linear decay to 10% (critic: constant)."""
        index, half = step - 1, self.config.steps / 2  # the schedule counts steps from 0
        scale = 1.0 if index < half else 1.0 - 0.9 * (index - half) / max(1.0, half)
        return {"g": scale, "d": 1.0}

    def phases(self, batch: dict[str, Tensor], noise=None) -> Phases:
        cfg, f = self.config, self.forward
        x = batch["content"]  # [N,3,P,P]
        with torch.no_grad():
            target = self.teacher(x)  # [N,3,P,P]; its features land in the teacher tap
        critic = self.networks.get("discriminator")
        with self.autocast():
            student_out = f["generator"](x)
            losses = {"l1": F.l1_loss(student_out, target)}
            total = cfg.l1_weight * losses["l1"]
            if cfg.structural != "none" and cfg.structural_weight > 0:
                losses["structural"] = structural_loss(cfg.structural, student_out.float(), target.float())
                total = total + cfg.structural_weight * losses["structural"]
            if self.taps is not None:
                losses["feature"] = self.adapters(self.taps[0].outputs, self.taps[1].outputs)
                total = total + cfg.feature_weight * losses["feature"]
            if critic is not None:
                critic.requires_grad_(False)  # the critic is judged through its raw module, no gradients
                losses["adv_g"] = self.gan.generator_loss(critic, student_out, target)
                total = total + cfg.adv_weight * losses["adv_g"]
                critic.requires_grad_(True)
        losses["total"] = total
        yield "g", total
        if critic is not None:
            with self.autocast():
                losses["adv_d"] = self.gan.d_loss(f["discriminator"](target), f["discriminator"](student_out.detach()))
            yield "d", losses["adv_d"]
        return {k: v.detach().float() for k, v in losses.items()}

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        inputs = batch["content"]
        was_training = generator.training
        generator.eval()
        t_out, s_out = self.teacher(inputs), generator(inputs)
        generator.train(was_training)
        rows = [[x, t, s] for x, t, s in zip(inputs.cpu(), t_out.cpu(), s_out.cpu())]
        return rows, ["input", "teacher", "student"]

    def close(self) -> None:
        """Remove the feature hooks from the student and the teacher."""
        for tap in self.taps or ():
            tap.close()
        self.taps = None
