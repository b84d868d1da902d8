"""The colour generator: a look as a smooth, monotone colour function (plus an optional local branch).

A photo look is mostly a function of the pixel's colour. This generator is exactly that, built
from parts that stay well-behaved when learned from a few dozen unpaired photos:

``x [-1,1] -> u = (x+1)/2 -> pre-curves (per channel) -> 3x3 matrix + bias -> + 3D LUT residual
-> post-curves (per channel) -> + local residual -> [-1,1]``

* **Curves**: piecewise-linear with ``curve_knots`` knots over [0, 1], strictly increasing by
  construction (softplus increments), one per channel, before and after the matrix.
* **Matrix**: a 3x3 colour matrix with a bias (a white-balance / cross-channel mix).
* **LUT residual**: a ``lut_size``³ lattice of RGB offsets, zero at init, trilinearly interpolated
  (``grid_sample`` on ``[1, 3, S, S, S]`` indexed ``[c, b, g, r]``, ``align_corners=True`` so lattice
  nodes are exact). Its lattices (:meth:`lattices`) are regularised for smoothness and monotonicity
  by the objectives (:func:`styleforge.train.losses.lut_regulariser`).
* **Image-adaptive** (``adaptive > 0``): a tiny CNN on a 32x32 thumbnail predicts per-photo
  weights of ``adaptive`` basis LUT residuals and a per-channel gain/offset before the curves, so
  exposure and white-balance differences between photos are handled (Zeng et al., TPAMI 2020).
  Its last layer is zero-initialised (the bases are small and random): at init every photo gets
  the same transform.
* **Local branch** (``local > 0``): a small conv net adding a residual for looks that are not a
  colour function (glow, toon); its last layer is zero-initialised and the objective penalises
  its output (``forward(x, with_local=True)`` returns it), so it stays off when the look is global.

:meth:`colour` evaluates the colour part alone on any ``[..., 3]`` tensor in [0, 1]: that is what
a ``.cube`` LUT bakes (the model is a :class:`~styleforge.train.models.protocols.ColourModel`, and
an :class:`~styleforge.train.models.protocols.AdaptiveColourModel`, adaptive when ``adaptive > 0``). :meth:`init_from` sets the curves and matrix from a classical fit (the fits live in
:mod:`styleforge.photo.baselines`; the unpaired start in
:mod:`styleforge.train.objectives.colour`) so training starts where classical colour transfer ends;
:meth:`set_lut_residual` sets the LUT from a paired fit (``PairedObjective.prepare``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

THUMB = 32  # side of the thumbnail the adaptive branch sees


def _inv_softplus(y: Tensor) -> Tensor:
    return y + torch.log(-torch.expm1(-y))


class MonotoneCurves(nn.Module):
    """Per-channel piecewise-linear, strictly increasing curves on [0, 1] with ``knots`` knots.

    ``forward(u [N, 3, ...] or [..., 3] via channel_dim)`` interpolates each channel's curve; values
    outside [0, 1] are clamped first. The curve of channel ``c`` has values
    ``start[c] + cumsum(softplus(steps[c]))`` at ``linspace(0, 1, knots)``.
    """

    def __init__(self, knots: int = 32):
        super().__init__()
        if knots < 2:
            raise ValueError(f"curve knots must be >= 2, got {knots}")
        self.knots = knots
        self.start = nn.Parameter(torch.zeros(3))
        self.steps = nn.Parameter(_inv_softplus(torch.full((3, knots - 1), 1.0 / (knots - 1))))

    def values(self) -> Tensor:
        """``[3, knots]`` curve values at the knots."""
        increments = F.softplus(self.steps)
        return torch.cat([self.start[:, None], self.start[:, None] + increments.cumsum(1)], dim=1)

    @torch.no_grad()
    def set_values(self, values: Tensor) -> None:
        """Set the curves to ``values [3, knots]`` (made strictly increasing if they are not)."""
        values = torch.as_tensor(values, dtype=torch.float32).reshape(3, self.knots)
        increments = (values[:, 1:] - values[:, :-1]).clamp_min(1e-4)
        self.start.copy_(values[:, 0])
        self.steps.copy_(_inv_softplus(increments))

    def forward(self, rgb: Tensor, offset: Optional[Tensor] = None) -> Tensor:
        """``rgb [M, 3]`` in [0, 1] -> ``[M, 3]``; ``offset [M, 3]`` shifts the curve values (adaptive)."""
        table = self.values()  # [3, K]
        pos = rgb.clamp(0.0, 1.0) * (self.knots - 1)
        lo = pos.floor().clamp(max=self.knots - 2)
        frac = pos - lo
        idx = lo.long()
        cols = []
        for c in range(3):
            t = table[c]
            cols.append(t[idx[:, c]] * (1 - frac[:, c]) + t[idx[:, c] + 1] * frac[:, c])
        out = torch.stack(cols, dim=1)
        return out if offset is None else out + offset


def identity_lattice(size: int) -> Tensor:
    """``[3, S, S, S]`` lattice indexed ``[c, b, g, r]`` whose value is the node's own RGB in [0, 1]."""
    axis = torch.linspace(0.0, 1.0, size)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([r, g, b])


def apply_lattice(lattice: Tensor, rgb: Tensor) -> Tensor:
    """Trilinear lookup: ``lattice [B, 3, S, S, S]`` (``[c, b, g, r]``), ``rgb [B, M, 3]`` in [0, 1] -> ``[B, M, 3]``."""
    grid = rgb.clamp(0.0, 1.0).mul(2.0).sub(1.0)[:, :, None, None, :]  # [B, M, 1, 1, 3] as (x=r, y=g, z=b)
    out = F.grid_sample(lattice, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, :, 0, 0].transpose(1, 2)  # [B, M, 3]


class ColourGenerator(nn.Module):
    """Curves + matrix + 3D LUT residual (+ adaptive basis, + local branch); ``[-1,1]`` NCHW in and out.

    ``forward(x [N, 3, H, W]) -> [N, 3, H, W]``, any ``H, W`` (the colour part is pointwise; the
    local branch is fully convolutional with stride 1). Implements the
    :class:`~styleforge.train.models.protocols.AdaptiveColourModel` protocol (``colour``,
    ``adaptive``, ``adaptive_params``).
    """

    arch_name = "colour"
    stride = 1

    def __init__(self, curve_knots: int = 32, lut_size: int = 17, adaptive: int = 0, local: int = 0):
        super().__init__()
        if lut_size < 2:
            raise ValueError(f"lut_size must be >= 2, got {lut_size}")
        self.config = {"curve_knots": curve_knots, "lut_size": lut_size, "adaptive": adaptive, "local": local}
        self.pre = MonotoneCurves(curve_knots)
        self.post = MonotoneCurves(curve_knots)
        self.matrix = nn.Parameter(torch.eye(3))
        self.bias = nn.Parameter(torch.zeros(3))
        self.lut = nn.Parameter(torch.zeros(1, 3, lut_size, lut_size, lut_size))  # residual, [1, c, b, g, r]
        self.adaptive = int(adaptive)
        if self.adaptive:
            # Small random bases, zero mixing weights: identity at init, and both get gradients
            # (with both at zero neither would ever move).
            self.basis = nn.Parameter(0.01 * torch.randn(self.adaptive, 3, lut_size, lut_size, lut_size))
            self.predictor = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),  # 16
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),  # 8
                nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),  # 4
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(32, self.adaptive + 6),
            )
            nn.init.zeros_(self.predictor[-1].weight)
            nn.init.zeros_(self.predictor[-1].bias)
        self.local_channels = int(local)
        if self.local_channels:
            c = self.local_channels
            self.local = nn.Sequential(
                nn.Conv2d(6, c, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c, c, 3, padding=2, dilation=2), nn.LeakyReLU(0.2),
                nn.Conv2d(c, c, 3, padding=4, dilation=4), nn.LeakyReLU(0.2),
                nn.Conv2d(c, 3, 3, padding=1),
            )
            nn.init.zeros_(self.local[-1].weight)
            nn.init.zeros_(self.local[-1].bias)

    # -- the colour part -----------------------------------------------------------------------
    def adaptive_params(self, u: Tensor) -> Optional[Tensor]:
        """``u [N, 3, H, W]`` in [0, 1] -> ``[N, adaptive + 6]`` (basis weights, gain, offset), or None."""
        if not self.adaptive:
            return None
        thumb = F.interpolate(u, size=(THUMB, THUMB), mode="area") if u.shape[-1] != THUMB or u.shape[-2] != THUMB else u
        return self.predictor(thumb * 2.0 - 1.0)

    def colour(self, rgb: Tensor, params: Optional[Tensor] = None) -> Tensor:
        """The colour function: ``rgb [N, M, 3]`` (or ``[M, 3]``) in [0, 1] -> same shape, in [0, 1].

        ``params [N, adaptive + 6]`` from :meth:`adaptive_params` (None = the base transform, which
        is what a single .cube LUT holds for a non-adaptive model).
        """
        squeeze = rgb.dim() == 2
        if squeeze:
            rgb = rgb[None]
        n, m, _ = rgb.shape
        flat = rgb.reshape(n * m, 3)
        lattice = self.lut.expand(n, -1, -1, -1, -1)
        if params is not None:
            weights, gain, offset = params[:, : self.adaptive], params[:, self.adaptive: self.adaptive + 3], params[:, -3:]
            flat = (flat.reshape(n, m, 3) * (1.0 + 0.5 * torch.tanh(gain))[:, None] + 0.2 * torch.tanh(offset)[:, None]).reshape(n * m, 3)
            lattice = lattice + torch.einsum("nk,kcbgr->ncbgr", weights, self.basis)
        y = self.pre(flat)
        y = y @ self.matrix.T + self.bias
        y = y.reshape(n, m, 3)
        y = y + apply_lattice(lattice, y)
        y = self.post(y.reshape(n * m, 3)).reshape(n, m, 3)
        y = y.clamp(0.0, 1.0)
        return y[0] if squeeze else y

    # -- the network ---------------------------------------------------------------------------
    def forward(self, x: Tensor, with_local: bool = False):
        """``x [N, 3, H, W]`` in [-1, 1] -> the styled ``[N, 3, H, W]`` in [-1, 1].

        ``with_local=True`` (training: the objective penalises the local branch) returns
        ``(output, local residual [N, 3, H, W] or None without a local branch)`` instead: a keyword
        of ``forward``, so the call goes through the engine's DDP / compile wrapper like any other.
        The default, the output alone, is what export traces.
        """
        n, _, h, w = x.shape
        u = (x.float() + 1.0) * 0.5  # [N, 3, H, W] in [0, 1]
        params = self.adaptive_params(u)
        rgb = u.permute(0, 2, 3, 1).reshape(n, h * w, 3)
        y = self.colour(rgb, params).reshape(n, h, w, 3).permute(0, 3, 1, 2)  # [N, 3, H, W] in [0, 1]
        residual = None
        if self.local_channels:
            residual = self.local(torch.cat([u, y], dim=1))
            y = y + residual
        out = y * 2.0 - 1.0
        if self.training:  # straight-through clip: forward value clipped, gradient kept
            out = out + (out.clamp(-1.0, 1.0) - out).detach()
        else:
            out = out.clamp(-1.0, 1.0)
        return (out, residual) if with_local else out

    # -- the lattices and initialisation --------------------------------------------------------
    def lattices(self) -> list[Tensor]:
        """Every LUT residual lattice, ``[3, S, S, S]`` indexed ``[c, b, g, r]``: the base one, then
        the adaptive bases (what :func:`styleforge.train.losses.lut_regulariser` regularises)."""
        return [self.lut[0]] + ([self.basis[k] for k in range(self.adaptive)] if self.adaptive else [])

    @torch.no_grad()
    def set_lut_residual(self, lattice_rgb) -> None:
        """Set the LUT residual from ``[S, S, S, 3]`` indexed ``[r, g, b]`` (e.g. :func:`~styleforge.photo.baselines.lattice_fit`)."""
        lattice = torch.as_tensor(lattice_rgb, dtype=torch.float32).permute(3, 2, 1, 0)  # -> [c, b, g, r]
        if lattice.shape != self.lut.shape[1:]:
            raise ValueError(f"LUT residual must be {tuple(self.lut.shape[1:])} as [c, b, g, r], got {tuple(lattice.shape)}")
        self.lut.copy_(lattice[None])

    @torch.no_grad()
    def init_from(self, matrix, bias, post_curve_values=None, pre_curve_values=None) -> None:
        """Start from a classical fit: ``matrix [3,3]``, ``bias [3]`` on [0,1] RGB, curves ``[3, knots]``."""
        self.matrix.copy_(torch.as_tensor(matrix, dtype=torch.float32))
        self.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        if post_curve_values is not None:
            self.post.set_values(torch.as_tensor(post_curve_values, dtype=torch.float32))
        if pre_curve_values is not None:
            self.pre.set_values(torch.as_tensor(pre_curve_values, dtype=torch.float32))
