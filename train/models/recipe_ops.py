"""Differentiable twins of the runtime's look operators, and a learnable look recipe.

Each function here computes what its namesake in :mod:`styleforge.runtime.look_ops` computes
(the docstrings there give every parameter's meaning, unit and range), on float32 NCHW tensors
``[N, 3, H, W]`` of sRGB-encoded values in [0, 1], with every continuous parameter a tensor (or a
float) that gradients flow into. ``tests/train/test_recipe_ops.py`` holds the two to 1e-4.

The blur follows the runtime's pyramid schedule exactly (:mod:`styleforge.runtime.look_blur`):
the level and the kernel radius come from the *value* of sigma (detached), the Gaussian taps
from sigma as a tensor, so a learnable radius gets a gradient. The grain field is the runtime's
numpy noise, a constant here; grain amount, size (through its blur) and luma dependence stay
differentiable.

:class:`OpModule` holds one op's parameters unconstrained (``raw``) and maps them into the
schema's range, starting at the identity; :class:`RecipeStack` applies a list of them in order
and clips once at the end, as ``look_ops.apply_recipe`` does. The schema (``PARAMS``) is the
runtime's: ranges are written once.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge.runtime import look_blur, look_ops
from styleforge.runtime.look_ops import BLOOM_KNEE, DETAIL_BANDS, PARAMS
from styleforge.runtime.lut import identity_table

Scalar = Union[float, Tensor]


def _t(value: Scalar, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def luma(x: Tensor) -> Tensor:
    """Rec.709 luma of ``[N, 3, H, W]`` -> ``[N, 1, H, W]``."""
    w = look_blur.LUMA
    return x[:, 0:1] * w[0] + x[:, 1:2] * w[1] + x[:, 2:3] * w[2]


def midtones(value: Tensor) -> Tensor:
    v = value.clamp(0.0, 1.0)
    return 4.0 * v * (1.0 - v)


# ------------------------------------------------------------------------------ pyramid blur


def _downsample2(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def _gaussian_taps(sigma: Tensor, radius: int) -> Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    s = sigma.clamp(min=look_blur.MIN_SIGMA_PX)
    taps = torch.exp(-(offsets * offsets) / (2.0 * s * s))
    taps = taps / taps.sum()
    if float(sigma.detach()) < look_blur.MATCH_VARIANCE_BELOW:  # as look_blur.gaussian_kernel
        shortfall = (s * s - (offsets * offsets * taps).sum()).clamp(min=0.0)
        pattern = torch.zeros_like(taps)
        pattern[radius - 1], pattern[radius], pattern[radius + 1] = 0.5, -1.0, 0.5
        taps = taps + shortfall * pattern
    return taps


def _blur_axis(x: Tensor, sigma: Tensor, axis: int) -> Tensor:
    """Separable Gaussian along H (``axis=2``) or W (``axis=3``) with reflect padding."""
    channels, size = x.shape[1], x.shape[axis]
    radius = look_blur.kernel_radius(float(sigma.detach()), size)
    if radius == 0:
        return x
    taps = _gaussian_taps(sigma, radius)
    if axis == 2:
        padded = F.pad(x, (0, 0, radius, radius), mode="reflect")
        weight = taps.view(1, 1, -1, 1)
    else:
        padded = F.pad(x, (radius, radius, 0, 0), mode="reflect")
        weight = taps.view(1, 1, 1, -1)
    return F.conv2d(padded, weight.expand(channels, 1, *weight.shape[2:]), groups=channels)


def blur_separable(x: Tensor, sigma: Tensor) -> Tensor:
    """The separable Gaussian of ``sigma`` px of ``x``'s grid, rows then columns (look_blur's)."""
    return _blur_axis(_blur_axis(x, sigma, 2), sigma, 3)


def blur_to_level(x: Tensor, sigma_frac: Scalar) -> tuple[Tensor, int, Tensor]:
    """``[N, C, H, W]`` -> ``(small, level, sigma)``: 2x2 means down to the blur's level and the
    Gaussian there (``look_blur.blur_to_level``); ``sigma`` (px of the level) keeps the gradient."""
    height, width = x.shape[-2:]
    sigma_px = _t(sigma_frac, x) * min(height, width)
    level = look_blur.pyramid_level(float(sigma_px.detach()), height, width)
    small = x
    for _ in range(level):
        small = _downsample2(small)
    sigma = look_blur.level_sigma(sigma_px, level)
    return blur_separable(small, sigma), level, sigma


def upsample_from_level(small: Tensor, level: int, height: int, width: int) -> Tensor:
    """Level ``level`` bilinearly up by ``2**level`` (half-pixel centres), cropped to ``height, width``."""
    if level == 0:
        return small
    up = F.interpolate(small, scale_factor=2.0**level, mode="bilinear", align_corners=False)
    return up[..., :height, :width]


def gaussian_blur(x: Tensor, sigma_frac: Scalar) -> Tensor:
    """Pyramid Gaussian blur of ``[N, C, H, W]`` by ``sigma_frac`` of the short side (differentiable in it)."""
    height, width = x.shape[-2:]
    small, level, _ = blur_to_level(x, sigma_frac)
    return upsample_from_level(small, level, height, width)


# ------------------------------------------------------------------------------ operators


def colour_lut(x: Tensor, table: Tensor) -> Tensor:
    """3D LUT ``table [S, S, S, 3]`` indexed ``[r, g, b]`` (the runtime's layout), trilinear."""
    n, _, h, w = x.shape
    volume = table.permute(3, 0, 1, 2).unsqueeze(0).expand(n, -1, -1, -1, -1)  # [N, 3, r(D), g(H), b(W)]
    coords = x.clamp(0.0, 1.0).permute(0, 2, 3, 1) * 2.0 - 1.0  # [N, H, W, (r, g, b)]
    grid = coords.flip(-1).reshape(n, 1, h, w, 3)  # grid_sample wants (x=W=b, y=H=g, z=D=r)
    out = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0]


def clarity(x: Tensor, amount: Scalar, radius: Scalar) -> Tensor:
    lum = luma(x)
    base = gaussian_blur(lum, radius)
    return x + _t(amount, x) * midtones(base) * (lum - base)


def detail(x: Tensor, fine: Scalar, medium: Scalar, coarse: Scalar) -> Tensor:
    lum = luma(x)
    b0, b1, b2 = (gaussian_blur(lum, sigma) for sigma in DETAIL_BANDS)
    return x + _t(fine, x) * (lum - b0) + _t(medium, x) * (b0 - b1) + _t(coarse, x) * (b1 - b2)


def smooth_skin(x: Tensor, amount: Scalar, radius: Scalar, edge: Scalar) -> Tensor:
    """The fast guided filter on the blur's level (``look_ops.smooth_skin`` states it)."""
    lum = luma(x)
    height, width = x.shape[-2:]
    edge = _t(edge, x)
    eps = edge * edge
    moments, level, sigma = blur_to_level(torch.cat([lum, lum * lum], dim=1), radius)
    mean = moments[:, 0:1]
    var = (moments[:, 1:2] - mean * mean).clamp(min=0.0)
    r = eps / (var + eps)
    fields = upsample_from_level(blur_separable(torch.cat([r, mean * r], dim=1), sigma), level, height, width)
    return x + _t(amount, x) * (fields[:, 1:2] - fields[:, 0:1] * lum)


def sharpen(x: Tensor, amount: Scalar, radius: Scalar) -> Tensor:
    lum = luma(x)
    return x + _t(amount, x) * (lum - gaussian_blur(lum, radius))


def vignette_mask(x: Tensor, midpoint: Scalar, roundness: Scalar, feather: Scalar,
                  center_x: Scalar, center_y: Scalar) -> Tensor:
    """``[1, 1, H, W]`` weight in [0, 1], as ``look_ops.vignette_mask``."""
    height, width = x.shape[-2:]
    u = (torch.arange(width, dtype=x.dtype, device=x.device) + 0.5) / width
    v = (torch.arange(height, dtype=x.dtype, device=x.device) + 0.5) / height
    px = ((u - _t(center_x, x)) * width).view(1, -1)
    py = ((v - _t(center_y, x)) * height).view(-1, 1)
    circle = 0.5 * (width**2 + height**2) ** 0.5
    roundness = _t(roundness, x)
    toward_circle = roundness.clamp(min=0.0)
    power = 2.0 + 6.0 * (-roundness).clamp(min=0.0)
    axis_x = (1.0 - toward_circle) * (width / 2**0.5) + toward_circle * circle
    axis_y = (1.0 - toward_circle) * (height / 2**0.5) + toward_circle * circle
    ax = (px.abs() / axis_x).clamp(min=1e-6)
    ay = (py.abs() / axis_y).clamp(min=1e-6)
    dist = (ax**power + ay**power) ** (1.0 / power) * 2.0 ** (0.5 - 1.0 / power)
    s = ((dist - _t(midpoint, x)) / (0.02 + 0.98 * _t(feather, x)) + 0.5).clamp(0.0, 1.0)
    return (s * s * (3.0 - 2.0 * s)).view(1, 1, height, width)


def vignette(x: Tensor, amount: Scalar, midpoint: Scalar, roundness: Scalar, feather: Scalar,
             center_x: Scalar, center_y: Scalar) -> Tensor:
    weight = vignette_mask(x, midpoint, roundness, feather, center_x, center_y)
    amount = _t(amount, x)
    return x * (1.0 + amount.clamp(max=0.0) * weight) + amount.clamp(min=0.0) * weight * (1.0 - x)


def bloom(x: Tensor, threshold: Scalar, radius: Scalar, strength: Scalar, r: Scalar = 1.0, g: Scalar = 1.0,
          b: Scalar = 1.0) -> Tensor:
    gate = torch.sigmoid((luma(x).clamp(0.0, 1.0) - _t(threshold, x)) / BLOOM_KNEE)
    tint = torch.stack([_t(r, x), _t(g, x), _t(b, x)]).view(1, 3, 1, 1)
    glow = gaussian_blur(x.clamp(0.0, 1.0) * gate, radius) * tint
    return x + _t(strength, x) * glow * (1.0 - x)


def fade(x: Tensor, amount: Scalar, r: Scalar, g: Scalar, b: Scalar) -> Tensor:
    colour = torch.stack([_t(r, x), _t(g, x), _t(b, x)]).view(1, 3, 1, 1)
    return x + _t(amount, x) * colour * (1.0 - x)


def grain(x: Tensor, amount: Scalar, size: Scalar, luma_dependence: Scalar, seed: int = 0) -> Tensor:
    """Film grain; the same batch-wide field for every image of the batch (the runtime's noise)."""
    height, width = x.shape[-2:]
    size = _t(size, x)
    noise = look_ops.grain_noise(height, width, float(size.detach()), seed)
    field = gaussian_blur(torch.from_numpy(noise).to(x).view(1, 1, height, width), size / 2.0)
    field = (field - field.mean()) / (field.std(unbiased=False) + 1e-6)
    k = _t(luma_dependence, x)
    return x + _t(amount, x) * ((1.0 - k) + k * midtones(luma(x))) * field


OPS = {"colour_lut": colour_lut, "clarity": clarity, "detail": detail, "smooth_skin": smooth_skin,
       "sharpen": sharpen, "vignette": vignette, "bloom": bloom, "fade": fade, "grain": grain}


# ------------------------------------------------------------------------------ learnable recipe


class OpModule(nn.Module):
    """One look operator with learnable parameters, initialised at the identity.

    Each schema parameter ``(lo, hi, default)`` is ``raw`` (unconstrained, 0 at init) mapped to
    ``default + (hi - lo) * (sigmoid(raw + c) - sigmoid(c))`` with ``c = logit((default - lo) /
    (hi - lo))``: a sigmoid onto ``(lo, hi)`` that gives ``default`` exactly at ``raw = 0``.
    ``colour_lut`` holds its table ``[S, S, S, 3]`` as a plain parameter (identity at init);
    ``grain`` holds its ``seed`` as a constant.
    """

    def __init__(self, name: str, seed: int = 0, lut_size: int = 17):
        super().__init__()
        if name not in OPS:
            raise look_ops.LookOpError(f"unknown look operator {name!r}; known: {', '.join(OPS)}")
        self.name = name
        self.seed = seed
        self.raw = nn.ParameterDict({key: nn.Parameter(torch.zeros(())) for key in PARAMS[name]})
        self._centre = {key: math.log((d - lo) / (hi - d)) for key, (lo, hi, d) in PARAMS[name].items()}
        self.table = nn.Parameter(torch.from_numpy(identity_table(lut_size))) if name == "colour_lut" else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A checkpoint written before an optional parameter existed (look_ops.OPTIONAL, e.g.
        bloom's tint) loads with that parameter at its default (raw 0)."""
        for key in look_ops.OPTIONAL.get(self.name, ()):
            state_dict.setdefault(f"{prefix}raw.{key}", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def value(self, key: str) -> Tensor:
        lo, hi, default = PARAMS[self.name][key]
        centre = self._centre[key]
        start = torch.sigmoid(torch.full((), centre))
        return default + (hi - lo) * (torch.sigmoid(self.raw[key] + centre) - start)

    def set_params(self, **values: float) -> None:
        """Set ``raw`` so the constrained values are ``values`` (clamped just inside the range)."""
        for key, value in values.items():
            lo, hi, _ = PARAMS[self.name][key]
            margin = 1e-6 * (hi - lo)
            v = min(max(float(value), lo + margin), hi - margin)
            with torch.no_grad():  # the centre's own formula: the default gives raw = 0 exactly
                self.raw[key].fill_(math.log((v - lo) / (hi - v)) - self._centre[key])

    def values(self) -> dict[str, Tensor]:
        return {key: self.value(key) for key in self.raw}

    def params(self) -> dict[str, float]:
        """The constrained parameter values, as the runtime recipe takes them (in the schema's order,
        as a person reads them in ``recipe.json``)."""
        return {key: float(self.value(key).detach()) for key in PARAMS[self.name]}

    def recipe_entry(self) -> tuple[str, dict[str, Any]]:
        """``(name, params)`` for ``look_ops.apply_recipe`` (with the table / seed where the op has one)."""
        params: dict[str, Any] = self.params()
        if self.name == "colour_lut":
            params["table"] = self.table.detach().clamp(0.0, 1.0).cpu().numpy().astype(np.float32)
        if self.name == "grain":
            params["seed"] = self.seed
        return self.name, params

    def forward(self, x: Tensor) -> Tensor:  # [N, 3, H, W] -> [N, 3, H, W], not clipped
        if self.name == "colour_lut":  # the table a .cube can hold: [0, 1] (the runtime reads it back)
            return colour_lut(x, self.table.clamp(0.0, 1.0))
        extra = {"seed": self.seed} if self.name == "grain" else {}
        return OPS[self.name](x, **self.values(), **extra)


class RecipeStack(nn.Module):
    """Operators applied in order, clipped to [0, 1] once at the end; the identity at init."""

    def __init__(self, ops: list[str], seed: int = 0, lut_size: int = 17):
        super().__init__()
        self.ops = nn.ModuleList(OpModule(name, seed=seed, lut_size=lut_size) for name in ops)

    def recipe(self) -> list[tuple[str, dict[str, Any]]]:
        """The runtime recipe (``look_ops.apply_recipe``) these parameters stand for."""
        return [op.recipe_entry() for op in self.ops]

    def forward(self, x: Tensor) -> Tensor:  # [N, 3, H, W] sRGB in [0, 1] -> the same
        for op in self.ops:
            x = op(x)
        return x.clamp(0.0, 1.0)
