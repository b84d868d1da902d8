"""GAN objectives and penalties, kept apart from the networks (StyleGAN3-style).

Every function takes raw critic outputs (logits / scores, any shape: a PatchGAN map ``[N,1,h,w]``
or a vector ``[N,1]``) and returns a scalar tensor averaged over all elements. A list of
outputs (multi-scale critics) is accepted too and averaged over the scales.

Conventions: the discriminator loss is the *sum* of its real and fake terms (DCGAN / hinge /
WGAN practice); CycleGAN halves it, which the trainer may do with its loss weight.

Besides the critic's losses: the structure term (:func:`structure_loss`) and the 3D LUT's
smoothness and monotonicity regulariser (:func:`lut_regulariser`, on the colour generator's
lattices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

Logits = Union[Tensor, Sequence[Tensor]]
KINDS = ("bce", "lsgan", "hinge", "wgan-gp", "ralsgan", "rahinge")
RELATIVISTIC = ("ralsgan", "rahinge")


def _per_scale(fn: Callable[..., Tensor], *outputs: Logits) -> Tensor:
    if isinstance(outputs[0], Tensor):
        return fn(*outputs)
    terms = [fn(*scale) for scale in zip(*outputs)]
    return torch.stack(terms).mean()


class GANLoss:
    """Adversarial loss of one kind.

    - ``bce``: the design document's binary cross-entropy GAN loss, on logits (numerically
      stable), with the non-saturating generator loss ``-log D(G(z))``.
    - ``lsgan``: least squares (Mao et al.), real target 1, fake target 0 (CycleGAN default).
    - ``hinge``: ``relu(1 - real) + relu(1 + fake)`` for D, ``-fake`` for G (SAGAN/BigGAN).
    - ``wgan-gp``: Wasserstein critic ``fake - real``; add :func:`gradient_penalty` (x10).
    - ``ralsgan`` / ``rahinge``: relativistic average (Jolicoeur-Martineau 2019; UEGAN's
      relativistic hinge): the critic judges whether a real image is *more* real than the fakes
      on average (``real - mean(fake)``) and a fake *less* real than the reals
      (``fake - mean(real)``), and the generator loss is the same game with the roles swapped,
      so it needs the critic's outputs on real images too.

    ``d_loss(real_logits, fake_logits)`` is low when real logits are high and fake ones low;
    ``g_loss(fake_logits, real_logits)`` is low when fake logits are high (``real_logits`` only
    for the relativistic kinds, where it is required; pass them detached). Pass ``fake_logits``
    computed on detached fakes to ``d_loss``.
    """

    def __init__(self, kind: str = "lsgan"):
        if kind not in KINDS:
            raise ValueError(f"GAN loss kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.relativistic = kind in RELATIVISTIC

    def __repr__(self) -> str:
        return f"GANLoss({self.kind!r})"

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> Tensor:
        """Discriminator/critic loss (scalar)."""
        return _per_scale(self._d, real_logits, fake_logits)

    def g_loss(self, fake_logits: Logits, real_logits: Optional[Logits] = None) -> Tensor:
        """Generator loss (scalar) given the critic's outputs on generated (and, relativistic: real) images."""
        if self.relativistic:
            if real_logits is None:
                raise ValueError(f"the {self.kind} generator loss needs the critic's outputs on real images")
            return _per_scale(self._relativistic, fake_logits, real_logits)
        return _per_scale(self._g, fake_logits)

    def generator_loss(self, critic: Callable[[Tensor], Logits], fake: Tensor, real: Tensor) -> Tensor:
        """The generator's loss on ``fake`` images under ``critic`` (images in, logits out); the
        relativistic kinds also run the critic on ``real`` images (no gradient). The one place a
        generator phase asks a critic for its verdict."""
        real_logits = None
        if self.relativistic:
            with torch.no_grad():
                real_logits = critic(real)
        return self.g_loss(critic(fake), real_logits)

    def _relativistic(self, high: Tensor, low: Tensor) -> Tensor:
        """Low when ``high`` beats ``low``'s mean and ``low`` trails ``high``'s mean (both terms)."""
        up, down = high - low.mean(), low - high.mean()
        if self.kind == "ralsgan":
            return ((up - 1.0) ** 2).mean() + ((down + 1.0) ** 2).mean()
        return F.relu(1.0 - up).mean() + F.relu(1.0 + down).mean()  # rahinge

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        if self.relativistic:
            return self._relativistic(real, fake)
        if self.kind == "bce":
            return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if self.kind == "lsgan":
            return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
        if self.kind == "hinge":
            return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        return fake.mean() - real.mean()  # wgan-gp

    def _g(self, fake: Tensor) -> Tensor:
        if self.kind == "bce":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.kind == "lsgan":
            return F.mse_loss(fake, torch.ones_like(fake))
        return -fake.mean()  # hinge and wgan-gp


def _input_gradients(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``d sum(D(x)) / dx`` with the graph kept so the penalty can be back-propagated."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    outputs = out if isinstance(out, (list, tuple)) else [out]
    total = sum(o.sum() for o in outputs)
    if not total.requires_grad:  # D ignores its input entirely: the gradient is zero
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(total, x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def gradient_penalty(
    D: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """WGAN-GP penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` at random interpolates (Gulrajani 2017).

    ``real``, ``fake``: ``[N, C, H, W]``; one mixing weight per sample. The weight (lambda,
    usually 10) is applied by the caller. For a PatchGAN the gradient is that of the summed
    output map, as in the reference implementations.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device,
                       dtype=real.dtype, generator=generator)
    mixed = alpha * real.detach() + (1 - alpha) * fake.detach()
    grad = _input_gradients(D, mixed)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def r1_penalty(D: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 penalty ``E[||grad D(real)||_2^2]`` (Mescheder 2018). Caller applies ``gamma / 2``."""
    grad = _input_gradients(D, real)
    return grad.pow(2).flatten(1).sum(1).mean()


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """CycleGAN cycle-consistency: L1 between ``F(G(x))`` and ``x`` (weight by the caller)."""
    return F.l1_loss(reconstructed, original)


def identity_loss(mapped: Tensor, original: Tensor) -> Tensor:
    """CycleGAN identity loss: L1 between ``G(y)`` and ``y`` for a target-domain ``y``."""
    return F.l1_loss(mapped, original)


def _luma(x: Tensor) -> Tensor:
    """Rec.601 luma ``[N, 1, H, W]`` of RGB ``[N, 3, H, W]`` (any range)."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def structure_loss(output: Tensor, source: Tensor, window: int = 7, eps: float = 1e-4) -> Tensor:
    """``1 - local correlation`` of output and source luma (SSIM's structure term), mean over pixels.

    Invariant to any local brightness and contrast change, so tone curves, colour grades and
    black-and-white conversions are free, while smearing, noise and invented edges are not.
    ``output``, ``source``: ``[N, 3, H, W]`` in the same range.
    """
    a, b = _luma(output), _luma(source)

    def mean(z: Tensor) -> Tensor:
        return F.avg_pool2d(z, window, 1, window // 2, count_include_pad=False)

    ma, mb = mean(a), mean(b)
    va = (mean(a * a) - ma * ma).clamp_min(0.0)
    vb = (mean(b * b) - mb * mb).clamp_min(0.0)
    cov = mean(a * b) - ma * mb
    corr = (cov + eps) / ((va * vb).clamp_min(1e-10).sqrt() + eps)
    return (1.0 - corr).mean()


def lut_regulariser(lattices: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(total variation, monotonicity violation) of 3D LUT residual lattices, two scalars summed
    over the lattices (e.g. :meth:`~styleforge.train.models.colour.ColourGenerator.lattices`).

    Each lattice is ``[3, S, S, S]`` indexed ``[c, b, g, r]``, a residual added to the node's own
    RGB in [0, 1]. Smoothness: mean squared difference of neighbouring offsets along r, g and b.
    Monotonicity: the full map ``node + offset`` must not decrease along its own axis
    (``relu(-(step + d offset))``), as in Zeng et al.'s regulariser.
    """
    first = lattices[0]
    step = 1.0 / (first.shape[-1] - 1)
    tv = first.new_zeros(())
    mono = first.new_zeros(())
    for lat in lattices:  # [3, b, g, r]
        for dim, channel in ((3, 0), (2, 1), (1, 2)):  # along r (channel r), g, b
            diff = lat.diff(dim=dim)
            tv = tv + diff.pow(2).mean()
            mono = mono + F.relu(-(step + diff[channel])).mean()
    return tv, mono
