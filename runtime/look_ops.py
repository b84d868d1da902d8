"""Photographic look operators for the torch-free runtime: a look recipe is an ordered list of them.

numpy + Pillow only. Every operator is a pure function ``op(rgb, **params) -> rgb`` on float32
``[H, W, 3]`` sRGB-encoded values (the photo as stored, not linear light), nominally in [0, 1].
Its twin in ``styleforge.train.models.recipe_ops`` (torch, NCHW, differentiable in every
continuous parameter) computes the same numbers; ``tests/train/test_recipe_ops.py`` holds them
to 1e-4.

**Units.** Every length is a fraction of the photo's short side (0.01 = 1% of it) and every
position a fraction of the width/height, so a recipe reads the same at any resolution (blurs run
on the pyramid of :mod:`styleforge.runtime.look_blur`). Detail far below a pixel cannot be
rendered: a band or radius under ~1 px of the photo at hand has (nearly) no effect there.

**Clipping.** Operators do *not* clip: detail ops may leave [0, 1] by a little and the next op
takes any finite value (its masks are computed from clipped luma, so they stay in range).
:func:`apply_recipe` clips once, at the end, as the torch ``RecipeStack`` does; that keeps
gradients alive in the middle of a recipe and the result the same in both.

**Schema.** :data:`PARAMS` gives each op's continuous parameters as ``(min, max, default)``; the
default of every parameter is a valid value and the default of the op's strength makes the op
the identity (the other defaults are sensible starting points). The strength's identity lies
strictly inside its range, so a sigmoid-mapped training parameter can start there and move
either way. :data:`OPS` maps names to functions. Two non-continuous arguments live outside the
schema: ``colour_lut``'s ``table`` and ``grain``'s integer ``seed``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.runtime.look_blur import (
    bilinear_resize,
    blur_separable,
    blur_to_level,
    gaussian_blur,
    luma,
    upsample_from_level,
)
from styleforge.runtime.lut import trilinear

DETAIL_BANDS = (0.002, 0.01, 0.04)  # blur sigmas (fractions of the short side) between detail's bands
BLOOM_KNEE = 0.1  # width of bloom's soft threshold (a logistic in luma; 0.05 made it 4 dB less size-stable)
GRAIN_CELLS = 2.0  # noise samples per grain size: the field is white noise on a grid of cell size/2


class LookOpError(StyleforgeError, ValueError):
    """An unknown operator or parameter, or a value outside its range."""


def midtones(value: np.ndarray) -> np.ndarray:
    """``4 v (1 - v)`` of ``v`` clipped to [0, 1]: 1 at mid-grey, 0 at black and white."""
    v = np.clip(value, 0.0, 1.0)
    return np.float32(4.0) * v * (np.float32(1.0) - v)


def _f(value: float) -> np.float32:
    return np.float32(value)


def _add_luma(rgb: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add a luma change ``[H, W]`` to every channel: hue-stable and well-behaved near black."""
    return rgb + delta[..., None]


# ------------------------------------------------------------------------------ colour


def colour_lut(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The recipe's colour: a 3D LUT ``table`` float32 ``[S, S, S, 3]`` indexed ``[r, g, b]``.

    Trilinear, input clipped to [0, 1] (see :mod:`styleforge.runtime.lut`); the identity table
    (``lut.identity_table``) gives the input back to ~1e-7.
    """
    table = np.asarray(table, dtype=np.float32)
    return trilinear(table, rgb.reshape(-1, 3)).reshape(rgb.shape)


# ------------------------------------------------------------------------------ local contrast


def clarity(rgb: np.ndarray, amount: float, radius: float) -> np.ndarray:
    """Mid-tone local contrast (Lightroom's Clarity) on Rec.709 luma ``L``.

    ``detail = L - blur(L, radius)``; ``L' = L + amount * 4 B (1 - B) * detail`` with ``B`` the
    blurred luma (so the weight is smooth and spares shadows and highlights); the luma change is
    added to every channel.

    - ``amount`` in [-1, 2], identity 0: > 0 adds punch, < 0 smooths (-1 = fully blurred luma in
      the mid-tones).
    - ``radius`` in [0.005, 0.1] of the short side: the size of the "local" in local contrast.
    """
    lum = luma(rgb)
    base = gaussian_blur(lum, radius)
    return _add_luma(rgb, _f(amount) * midtones(base) * (lum - base))


def detail(rgb: np.ndarray, fine: float, medium: float, coarse: float) -> np.ndarray:
    """Gains on three luma bands of a Laplacian-like pyramid (darktable's "local contrast" bands).

    With ``B_i`` = luma blurred by ``DETAIL_BANDS[i]`` of the short side (0.002, 0.01, 0.04):
    fine = ``L - B_0``, medium = ``B_0 - B_1``, coarse = ``B_1 - B_2``; the output adds
    ``gain * band`` to every channel. Each gain in [-1, 2], identity 0 (-1 removes the band).
    The fine band is sub-pixel below a ~500 px short side and has little effect there.
    """
    lum = luma(rgb)
    b0, b1, b2 = (gaussian_blur(lum, sigma) for sigma in DETAIL_BANDS)
    return _add_luma(rgb, _f(fine) * (lum - b0) + _f(medium) * (b0 - b1) + _f(coarse) * (b1 - b2))


def smooth_skin(rgb: np.ndarray, amount: float, radius: float, edge: float) -> np.ndarray:
    """Edge-aware smoothing: a self-guided filter (He et al. 2010) on luma ``L``, in the *fast*
    form (He & Sun 2015): its statistics are computed on the blur's pyramid level.

    ``eps = edge**2``. With ``level`` the pyramid level the blur of ``radius`` runs on
    (:func:`~styleforge.runtime.look_blur.blur_to_level`) and every "mean" the Gaussian at that
    level (the level's narrowed sigma):

    1. ``m, m2`` = the means of ``[L, L^2]`` (2x2-pooled to the level, blurred there, *not*
       upsampled);
    2. at the level: ``v = max(m2 - m^2, 0)``, ``r = eps / (v + eps)`` (``= 1 - a`` with He's
       ``a = v / (v + eps)``) and the pair ``[r, m r]`` (``= [1 - a, b]``) blurred again;
    3. ``R, B`` = the pair bilinearly up to full size (the blur's half-pixel upsampling);
       ``L' = L + amount * (B - R L)`` (``= L + amount * (mean(a) L + mean(b) - L)``: the blurs
       keep constants), the change added to every channel.

    At level 0 (a radius under ~4 px of the photo at hand) this is He's filter at full
    resolution; above, the full-resolution work is the pooling of ``[L, L^2]``, one two-field
    upsampling and a multiply-add. The blurs are the pyramid Gaussian of ``radius`` (not He's
    box), so the filter is resolution independent and cheap at any radius.

    - ``amount`` in [-1, 1], identity 0: 1 = the smoothed luma; < 0 boosts the fine detail the
      filter would remove (edge-aware detail enhancement).
    - ``radius`` in [0.002, 0.05] of the short side.
    - ``edge`` in [0.005, 0.3]: a luma standard deviation; local variation well below it is smoothed,
      edges well above it are kept.
    """
    lum = luma(rgb)
    height, width = lum.shape
    eps = _f(edge) * _f(edge)
    moments, level, sigma = blur_to_level(np.stack([lum, lum * lum], axis=-1), radius)
    r, mr = guided_terms(moments[..., 0], moments[..., 1], eps)
    fields = upsample_from_level(blur_separable(np.stack([r, mr], axis=-1), sigma), level, height, width)
    return _add_luma(rgb, _f(amount) * (fields[..., 1] - fields[..., 0] * lum))


def guided_terms(mean: np.ndarray, second: np.ndarray, eps: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """smooth_skin's step 2 before its second blur, element-wise on the blurred ``L`` and ``L^2``
    (any shape): ``(r, m r)`` with ``r = eps / (max(m2 - m^2, 0) + eps)`` in (0, 1]."""
    var = np.maximum(second - mean * mean, _f(0.0))
    r = eps / (var + eps)
    return r, mean * r


def sharpen(rgb: np.ndarray, amount: float, radius: float) -> np.ndarray:
    """Unsharp mask on luma: ``L' = L + amount * (L - blur(L, radius))``, added to every channel.

    - ``amount`` in [-1, 3], identity 0; < 0 softens (-1 = the blurred luma).
    - ``radius`` in [0.0005, 0.01] of the short side (2-40 px on a 4000 px short side; below
      ~0.5 px of the photo at hand it does next to nothing).
    """
    lum = luma(rgb)
    return _add_luma(rgb, _f(amount) * (lum - gaussian_blur(lum, radius)))


# ------------------------------------------------------------------------------ frame and light


def vignette_terms(height: int, width: int, midpoint: float, roundness: float, feather: float,
                   center_x: float, center_y: float) -> tuple:
    """The vignette's geometry, computed once per photo size: ``(cols [1, W], rows [H, 1], 1 / p,
    scale, midpoint, edge width)`` with ``cols = |dx / axis_x| ** p`` and ``rows = |dy / axis_y| ** p``
    (the superellipse's two terms, see :func:`vignette`); :func:`vignette_weight` turns any rows of
    them into the weight."""
    u = (np.arange(width, dtype=np.float32) + _f(0.5)) / _f(width)
    v = (np.arange(height, dtype=np.float32) + _f(0.5)) / _f(height)
    px = ((u - _f(center_x)) * _f(width))[None, :]  # [1, W] pixels from the centre
    py = ((v - _f(center_y)) * _f(height))[:, None]  # [H, 1]
    circle = _f(0.5 * (width**2 + height**2) ** 0.5)  # the half diagonal
    toward_circle = _f(max(roundness, 0.0))
    power = _f(2.0 + 6.0 * max(-roundness, 0.0))
    axis_x = (_f(1.0) - toward_circle) * _f(width / 2**0.5) + toward_circle * circle
    axis_y = (_f(1.0) - toward_circle) * _f(height / 2**0.5) + toward_circle * circle
    ax = np.maximum(np.abs(px) / axis_x, _f(1e-6))
    ay = np.maximum(np.abs(py) / axis_y, _f(1e-6))
    inv_power = _f(1.0) / power
    return (ax**power, ay**power, inv_power, _f(2.0) ** (_f(0.5) - inv_power), _f(midpoint),
            _f(0.02) + _f(0.98) * _f(feather))


def vignette_weight(cols: np.ndarray, rows: np.ndarray, inv_power: np.float32, scale: np.float32,
                    midpoint: np.float32, edge: np.float32) -> np.ndarray:
    """The weight ``[h, W]`` in [0, 1] of rows ``rows [h, 1]`` of :func:`vignette_terms`."""
    total = cols + rows
    dist = (np.sqrt(total) if inv_power == _f(0.5) else total**inv_power) * scale  # sqrt: the same, faster
    s = np.clip((dist - midpoint) / edge + _f(0.5), 0.0, 1.0)
    return s * s * (_f(3.0) - _f(2.0) * s)


def vignette_mask(height: int, width: int, midpoint: float, roundness: float, feather: float,
                  center_x: float, center_y: float) -> np.ndarray:
    """Vignette weight ``[H, W]`` in [0, 1]: 0 inside, 1 towards the corners (see :func:`vignette`)."""
    return vignette_weight(*vignette_terms(height, width, midpoint, roundness, feather, center_x, center_y))


def vignette(rgb: np.ndarray, amount: float, midpoint: float, roundness: float, feather: float,
             center_x: float, center_y: float) -> np.ndarray:
    """Post-crop vignette (Lightroom's Effects panel), the same at any size and aspect.

    Distance ``d`` from the centre is a superellipse norm in which the frame's corners sit at
    ``d = 1`` when centred: roundness 0 is the ellipse of the frame's aspect, +1 a circle
    (axes = the half diagonal), -1 a rounded rectangle (exponent 8). The weight rises from 0 to
    1 across ``d`` in ``midpoint -+ (0.02 + 0.98 feather) / 2`` (smoothstep). On sRGB values:
    ``amount < 0`` multiplies by ``1 + amount * weight`` (darkens; -1 = black corners),
    ``amount > 0`` screens toward white, ``x + amount * weight * (1 - x)``.

    - ``amount`` in [-1, 1], identity 0.
    - ``midpoint`` in [0, 1.2]: where the transition is centred (larger = only the corners).
    - ``roundness`` in [-1, 1]; ``feather`` in [0, 1] (0 = a hard edge, 1 = a soft ramp).
    - ``center_x``, ``center_y`` in [0, 1] of the width/height (0.5 = the middle).
    """
    height, width = rgb.shape[:2]
    weight = vignette_mask(height, width, midpoint, roundness, feather, center_x, center_y)[..., None]
    darken, lighten = _f(min(amount, 0.0)), _f(max(amount, 0.0))
    return rgb * (_f(1.0) + darken * weight) + lighten * weight * (_f(1.0) - rgb)


def bloom(rgb: np.ndarray, threshold: float, radius: float, strength: float, r: float = 1.0, g: float = 1.0,
          b: float = 1.0) -> np.ndarray:
    """Glow around highlights: ``glow = blur(clip(x) * sigmoid((L - threshold) / 0.1), radius) * (r, g, b)``.

    Added with a screen blend, ``1 - (1 - x)(1 - strength * glow)`` (written
    ``x + strength * glow * (1 - x)``, exact at 0).

    - ``threshold`` in [0.3, 0.98]: luma where highlights glow at half strength (the
      logistic rises over about -+0.2 around it).
    - ``radius`` in [0.005, 0.15] of the short side.
    - ``strength`` in [-0.5, 1], identity 0; < 0 darkens around highlights (an "inverse glow",
      kept so that the identity lies inside the range).
    - ``r``, ``g``, ``b`` in [0, 2]: the glow's tint, a gain per channel of the blurred
      highlights; (1, 1, 1), the default, glows in the highlights' own colour, (1, 0.8, 0.6) warm.
      Optional (:data:`OPTIONAL`): a recipe written before the tint existed glows untinted.
    """
    glow = gaussian_blur(bloom_source(rgb, threshold), radius)
    glow *= np.array([r, g, b], dtype=np.float32)
    return rgb + _f(strength) * glow * (_f(1.0) - rgb)


def bloom_source(rgb: np.ndarray, threshold: float) -> np.ndarray:
    """What bloom blurs: ``clip(x) * sigmoid((clip(L) - threshold) / BLOOM_KNEE)``, ``[H, W, 3]``."""
    lum = np.clip(luma(rgb), 0.0, 1.0)
    gate = _f(1.0) / (_f(1.0) + np.exp(-(lum - _f(threshold)) / _f(BLOOM_KNEE)))
    return np.clip(rgb, 0.0, 1.0) * gate[..., None]


def fade(rgb: np.ndarray, amount: float, r: float, g: float, b: float) -> np.ndarray:
    """Faded / lifted blacks toward a colour: ``x + amount * colour * (1 - x)`` per channel.

    Black goes to ``amount * (r, g, b)``, white stays white, the tone curve stays straight.

    - ``amount`` in [-0.3, 0.6], identity 0; < 0 crushes the shadows instead (a dehaze-like
      black point; values below 0 are clipped at the end of the recipe).
    - ``r``, ``g``, ``b`` in [0, 1] (sRGB): the tint of the lifted blacks; 0.5 each = neutral.
    """
    colour = np.asarray([r, g, b], dtype=np.float32)
    return rgb + _f(amount) * colour * (_f(1.0) - rgb)


def grain_noise(height: int, width: int, size: float, seed: int) -> np.ndarray:
    """The raw grain field ``[H, W]``: white noise on a grid tied to the photo, bilinear to pixels.

    The grid has ``GRAIN_CELLS / size`` cells per short side (at most one per pixel), so the same
    seed gives the same pattern at any resolution. Generated with ``np.random.default_rng(seed)``;
    the torch twin calls this very function, so both see identical noise.
    """
    noise = grain_grid(height, width, size, seed)
    grid_h, grid_w = noise.shape
    return bilinear_resize(noise, height, width, grid_h / height, grid_w / width)


def grain_grid(height: int, width: int, size: float, seed: int) -> np.ndarray:
    """The white noise ``[grid_h, grid_w]`` float32 behind :func:`grain_noise`, before it is resized."""
    short = min(height, width)
    cells = GRAIN_CELLS / float(size)
    grid_h = int(min(height, max(1, round(cells * height / short))))
    grid_w = int(min(width, max(1, round(cells * width / short))))
    return np.random.default_rng(int(seed)).standard_normal((grid_h, grid_w), dtype=np.float32)


def grain(rgb: np.ndarray, amount: float, size: float, luma_dependence: float, seed: int = 0) -> np.ndarray:
    """Monochrome film grain, deterministic per ``seed``, the same at any resolution.

    ``field = blur(grain_noise(size, seed), size / 2)`` normalised to zero mean and unit standard
    deviation; ``x + amount * ((1 - k) + k * 4 L (1 - L)) * field`` with ``k`` the luma dependence
    (grain strongest in the mid-tones, as in film).

    - ``amount`` in [-0.2, 0.2], identity 0: the standard deviation of the grain in mid-grey
      (the sign only flips the pattern; negative values keep the identity inside the range).
    - ``size`` in [0.0005, 0.02] of the short side (the grid is chosen from its value; the blur
      makes the output smooth in it).
    - ``luma_dependence`` in [0, 1]: 0 = the same everywhere, 1 = none in black and white.
    - ``seed``: any integer (not in :data:`PARAMS`).
    """
    height, width = rgb.shape[:2]
    field = gaussian_blur(grain_noise(height, width, size, seed), float(size) / 2.0)
    field = (field - field.mean()) / (field.std() + _f(1e-6))
    k = _f(luma_dependence)
    amplitude = _f(amount) * ((_f(1.0) - k) + k * midtones(luma(rgb)))
    return _add_luma(rgb, amplitude * field)


# ------------------------------------------------------------------------------ registry

OPS = {"colour_lut": colour_lut, "clarity": clarity, "detail": detail, "smooth_skin": smooth_skin,
       "sharpen": sharpen, "vignette": vignette, "bloom": bloom, "fade": fade, "grain": grain}

PARAMS: dict[str, dict[str, tuple[float, float, float]]] = {  # (min, max, default); strength first
    "colour_lut": {},  # its table is data: the identity table is the identity
    "clarity": {"amount": (-1.0, 2.0, 0.0), "radius": (0.005, 0.1, 0.02)},
    "detail": {"fine": (-1.0, 2.0, 0.0), "medium": (-1.0, 2.0, 0.0), "coarse": (-1.0, 2.0, 0.0)},
    "smooth_skin": {"amount": (-1.0, 1.0, 0.0), "radius": (0.002, 0.05, 0.01), "edge": (0.005, 0.3, 0.05)},
    "sharpen": {"amount": (-1.0, 3.0, 0.0), "radius": (0.0005, 0.01, 0.002)},
    "vignette": {"amount": (-1.0, 1.0, 0.0), "midpoint": (0.0, 1.2, 0.5), "roundness": (-1.0, 1.0, 0.0),
                 "feather": (0.0, 1.0, 0.5), "center_x": (0.0, 1.0, 0.5), "center_y": (0.0, 1.0, 0.5)},
    "bloom": {"strength": (-0.5, 1.0, 0.0), "threshold": (0.3, 0.98, 0.75), "radius": (0.005, 0.15, 0.03),
              "r": (0.0, 2.0, 1.0), "g": (0.0, 2.0, 1.0), "b": (0.0, 2.0, 1.0)},
    "fade": {"amount": (-0.3, 0.6, 0.0), "r": (0.0, 1.0, 0.5), "g": (0.0, 1.0, 0.5), "b": (0.0, 1.0, 0.5)},
    "grain": {"amount": (-0.2, 0.2, 0.0), "size": (0.0005, 0.02, 0.002), "luma_dependence": (0.0, 1.0, 0.5)},
}
STRENGTH = {name: next(iter(schema), None) for name, schema in PARAMS.items()}  # the identity knob per op
EXTRA_ARGS = {"colour_lut": ("table",), "grain": ("seed",)}  # arguments outside the schema
# Parameters added after recipes were first written: a recipe without them gets their default
# (which leaves the op as it was), so bundles made before still load and render the same.
OPTIONAL = {"bloom": ("r", "g", "b")}


def defaults(name: str) -> dict[str, float]:
    """The default (identity) parameters of op ``name``."""
    return {key: spec[2] for key, spec in PARAMS[name].items()}


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`LookOpError` for an unknown op, a missing/unknown parameter or one out of range
    (a missing :data:`OPTIONAL` parameter is its default)."""
    if name not in OPS:
        raise LookOpError(f"unknown look operator {name!r}; known: {', '.join(OPS)}")
    schema, extra = PARAMS[name], EXTRA_ARGS.get(name, ())
    unknown = set(params) - set(schema) - set(extra)
    missing = set(schema) - set(params) - set(OPTIONAL.get(name, ()))
    if unknown or missing:
        raise LookOpError(f"{name}: unknown parameters {sorted(unknown)}, missing {sorted(missing)}")
    for key, (lo, hi, default) in schema.items():
        value = float(params.get(key, default))
        if not lo - 1e-6 <= value <= hi + 1e-6:
            raise LookOpError(f"{name}.{key} = {value:g} is outside [{lo:g}, {hi:g}]")


def apply_recipe(rgb: np.ndarray, recipe: Sequence[tuple[str, Mapping[str, Any]]]) -> np.ndarray:
    """Apply ``[(op name, params), ...]`` in order to float ``[H, W, 3]`` in [0, 1]; clip at the end."""
    out = np.asarray(rgb, dtype=np.float32)
    for name, params in recipe:
        check_params(name, params)
        out = OPS[name](out, **params)
    return np.clip(out, 0.0, 1.0)
