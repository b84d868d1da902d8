"""The adversarial step of an unpaired look recipe: a critic on crops of the photo, the recipe's
parameters as the generator, its freedom bounded by the statistics it started from.

After :func:`~styleforge.train.recipe_unpaired.fit_unpaired_recipe` (the statistics start), the
kept operators' parameters (the colour LUT stays the colour learner's) are moved by a least-squares GAN:

- **Crops at fixed fractions** of the photo's short side (:data:`CROP_FRACTIONS`), resized to
  :data:`CROP_PX` px, so the critic sees the same physical scale at any photo size: a halo 4 % of
  the short side is the same number of critic pixels in every photo.
- **Statistics channels** beside RGB (as Exposure, Hu et al. 2018, feeds its critic): the local
  detail magnitude ``|L - blur(L)|`` and the crop's distance from the frame's centre (where a
  vignette lives), so the critic can judge texture and position, not only colour.
- **DiffAugment** (Zhao et al. 2020) on real and fake alike: random translation and cutout, which
  keep a small folder's critic from memorising it; no colour augmentation (colour is the look).
- **An anchor**: the statistics distance of the start (:class:`~styleforge.train.recipe_unpaired._Target`)
  stays in the generator's loss with weight :data:`ANCHOR`, and the parameters are pulled toward
  their start by :data:`PRIOR` divided by the photos per side: the fewer the photos, the less the
  critic may move the recipe away from what the statistics said.

Images are torch ``[1, 3, H, W]`` in [0, 1] at the statistics' working size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from styleforge.train.recipe_unpaired import FIXED, look_statistics, radial_distance

CROP_FRACTIONS = (0.35, 0.7)  # crop sides as fractions of the short side
CROP_PX = 48  # the critic's crop size
CROPS_PER_PHOTO = 2  # per fraction
BATCH = 4  # photos per side per step
STEPS = 60
G_LR = 0.01  # Adam on the ops' unconstrained parameters
D_LR = 2e-4
ANCHOR = 1.0  # weight of the statistics distance in the generator's loss
PRIOR = 4.0  # pull toward the start, divided by the photos per side
DETAIL_SIGMA = 0.01  # the detail channel's blur (fraction of the short side)


def _critic(in_channels: int = 5, width: int = 32):
    """A small patch critic for :data:`CROP_PX` crops: 4 stride-2 convs, spectral norm, no
    normalisation layer (WGAN/LSGAN-safe), LeakyReLU 0.2 -> logits ``[N, 1, 3, 3]``."""
    from torch import nn
    from torch.nn.utils.parametrizations import spectral_norm

    layers, c = [], in_channels
    for out in (width, 2 * width, 4 * width):
        layers += [spectral_norm(nn.Conv2d(c, out, 4, 2, 1)), nn.LeakyReLU(0.2)]
        c = out
    layers.append(spectral_norm(nn.Conv2d(c, 1, 3, 1, 0)))
    return nn.Sequential(*layers)


def with_channels(x):
    """``x`` ``[1, 3, H, W]`` in [0, 1] -> ``[1, 5, H, W]``: RGB, detail magnitude (x 4), distance from
    the centre (0 middle, 1 corners), the critic's input before cropping."""
    import torch

    from styleforge.train.models.recipe_ops import gaussian_blur, luma

    lum = luma(x)
    detail = (lum - gaussian_blur(lum, DETAIL_SIGMA)).abs() * 4.0
    dist = radial_distance(x.shape[-2], x.shape[-1])[None, None]
    return torch.cat([x, detail, dist], dim=1)


def random_crops(x, rng: np.random.Generator):
    """Crops of ``x`` ``[1, C, H, W]`` at every fraction of :data:`CROP_FRACTIONS` (random places),
    each resized (area) to :data:`CROP_PX` -> ``[len(fractions) * CROPS_PER_PHOTO, C, CROP_PX, CROP_PX]``."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    out = []
    for fraction in CROP_FRACTIONS:
        side = max(CROP_PX // 2, int(round(fraction * min(h, w))))
        for _ in range(CROPS_PER_PHOTO):
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = x[..., top:top + side, left:left + side]
            out.append(F.interpolate(crop, size=(CROP_PX, CROP_PX), mode="area") if side != CROP_PX else crop)
    return torch.cat(out)


def diff_augment(x, generator):
    """DiffAugment's translation (up to 1/8 of the side, zero padding) and cutout (a square of half
    the side) on ``[N, C, S, S]``, differentiable in ``x``, one draw per sample."""
    import torch
    import torch.nn.functional as F

    n, _, s, _ = x.shape
    shift = s // 8
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s] for i in range(n)])
    cut = s // 2
    cy = torch.randint(0, s - cut + 1, (n,), generator=generator)
    cx = torch.randint(0, s - cut + 1, (n,), generator=generator)
    mask = torch.ones_like(x[:, :1])
    for i in range(n):
        mask[i, :, cy[i]:cy[i] + cut, cx[i]:cx[i] + cut] = 0.0
    return x * mask


@dataclass
class AdversarialReport:
    """What the adversarial step did: the statistics distance before and after, the critic's last
    losses, and how far each op's parameters moved."""

    start_z2: float
    end_z2: float
    d_loss: float = float("nan")
    g_loss: float = float("nan")
    moved: dict[str, dict[str, float]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


def adversarial_refine(stack, content: Sequence, style: Sequence, target, steps: int = STEPS, seed: int = 0,
                       frozen: Optional[dict[str, Sequence[str]]] = None,
                       progress: Optional[Callable[[int], None]] = None) -> AdversarialReport:
    """Refine ``stack`` (a :class:`~styleforge.train.models.recipe_ops.RecipeStack`, in place) against
    a critic on crops of ``style`` photos; ``target`` is the statistics target of the start (its
    ``distance`` anchors the step). ``frozen``: parameters per op not to move (``FIXED`` of the
    start). Returns what happened; ``progress(1)`` per step."""
    import torch

    from styleforge.train.losses import GANLoss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    frozen = frozen or {}
    params, start = [], []
    for op in stack.ops:
        for key, raw in op.raw.items():
            if key not in frozen.get(op.name, ()):
                raw.requires_grad_(True)
                params.append(raw)
                start.append(raw.detach().clone())
    before = {op.name: op.params() for op in stack.ops if op.name != "colour_lut"}
    critic = _critic()
    gan = GANLoss("lsgan")
    opt_g = torch.optim.Adam(params, lr=G_LR, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(critic.parameters(), lr=D_LR, betas=(0.5, 0.99))
    real_channels = [with_channels(y) for y in style]
    prior = PRIOR / max(1, min(len(content), len(style)))
    with torch.no_grad():
        report = AdversarialReport(start_z2=float(target.distance(stack, content)), end_z2=float("nan"))
    for _ in range(steps):
        xs = [content[i] for i in rng.choice(len(content), min(BATCH, len(content)), replace=False)]
        ys = [real_channels[i] for i in rng.choice(len(style), min(BATCH, len(style)), replace=False)]
        fakes = [stack(x) for x in xs]
        fake = torch.cat([random_crops(with_channels(f), rng) for f in fakes])
        real = torch.cat([random_crops(y, rng) for y in ys])
        opt_d.zero_grad()
        d_loss = gan.d_loss(critic(diff_augment(real, gen)), critic(diff_augment(fake.detach(), gen)))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = gan.g_loss(critic(diff_augment(fake, gen)))
        stats = torch.stack([look_statistics(f) for f in fakes]).mean(0)
        anchor = target.gap(stats)
        pull = sum(((p - s) ** 2).sum() for p, s in zip(params, start))
        (g_loss + ANCHOR * anchor + prior * pull).backward()
        opt_g.step()
        report.d_loss, report.g_loss = float(d_loss.detach()), float(g_loss.detach())
        if progress is not None:
            progress(1)
    with torch.no_grad():
        report.end_z2 = float(target.distance(stack, content))
    for op in stack.ops:
        if op.name in before:
            after = op.params()
            report.moved[op.name] = {k: round(after[k] - v, 4) for k, v in before[op.name].items() if after[k] != v}
    report.log.append(f"adversarial step: {steps} steps, statistics gap {report.start_z2:.3f} -> {report.end_z2:.3f}, "
                      f"critic loss {report.d_loss:.3f}, generator loss {report.g_loss:.3f}")
    for name, moved in report.moved.items():
        changes = ", ".join(f"{k} {v:+.3g}" for k, v in moved.items() if abs(v) >= 1e-3) or "nothing"
        report.log.append(f"  {name:<12} moved {changes}")
    return report


def refine_fit(fit, steps: int = STEPS, seed: int = 0, progress: Optional[Callable[[int], None]] = None):
    """Run the adversarial step on an :class:`~styleforge.train.recipe_unpaired.UnpairedFit` (in place):
    ``fit.steps`` becomes the refined recipe, ``fit.start_steps`` keeps the statistics start. A look
    that is a colour function (no local op kept) is left as it is. Returns the report or None."""
    if fit.stack is None or steps <= 0:
        return None
    report = adversarial_refine(fit.stack, fit.content, fit.style, fit.target, steps, seed, FIXED, progress)
    fit.steps = fit.stack.recipe()
    fit.log.extend(report.log)
    return report
