"""Random looks drawn from a seed: the looks a learner is tuned on, so no choice is fitted to the
built-in looks' formulas.

``random_look(17, "tone")`` is ``random-tone-17``: a pointwise grade (a channel mix near the
identity, per-channel monotone curves, a hue-selective shift, a saturation change, split toning).
``random_look(17, "local")`` is ``random-local-17``: the same tone grade followed by one to three
local operators (edge-aware smoothing, clarity, sharpening, bloom, haze, vignette) with random
strengths and radii. :func:`styleforge.photo.looks.get_look` accepts both names.

Every parameter is drawn with ``np.random.default_rng(seed)`` from the ranges in the ``draw_*``
functions below, chosen to resemble real photographic looks rather than extremes (on the album
photos the identity PSNR of a random look lies between about 17 and 33 dB; see
``tests/test_random_looks.py``). Values are rounded to three decimals when drawn, so the printed
recipe (:func:`describe`) is the look exactly. Radii are in units of 1 % of the photo's short
side (:func:`styleforge.photo.look_blocks.scale`), so a look reads the same at any resolution.
Grain is left out on purpose: PSNR against a noise pattern measures the noise, not the look.

Operators are written here, independently of any learner's operator implementations, so a learner
evaluated on these looks never scores against its own formulas. Pure numpy; scipy is imported
lazily by the blur helpers in :mod:`styleforge.photo.look_blocks`.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, fields

import numpy as np

from styleforge.photo.look_blocks import (
    LUMA,
    Look,
    blur,
    luma,
    scale,
    screen,
    smoothstep,
    vignette_mask,
)

KINDS = ("tone", "local")
_NAME = re.compile(r"random-(tone|local)-(\d+)")

# YCbCr (Rec.601, as JPEG): hue-selective shifts and tints work on the chroma plane.
_CB = np.array([-0.168736, -0.331264, 0.5], dtype=np.float32)
_CR = np.array([0.5, -0.418688, -0.081312], dtype=np.float32)
_FROM_CBCR = np.array([[0.0, -0.344136, 1.772], [1.402, -0.714136, 0.0]], dtype=np.float32)  # [2, 3]


def _r(x) -> float | tuple:
    """Round a drawn value (or nested sequence of them) to 3 decimals, as plain Python floats."""
    if np.ndim(x) == 0:
        return round(float(x), 3)
    return tuple(_r(v) for v in x)


def _chroma_rgb(hue_deg: float, amount: float) -> np.ndarray:
    """An RGB offset [3] of zero luma that pushes colours toward ``hue_deg`` (angle in the CbCr plane)."""
    angle = np.deg2rad(hue_deg)
    return (amount * np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)) @ _FROM_CBCR


# ---------------------------------------------------------------------------------------------
# Operators: each a frozen dataclass of its parameters, called on float32 [H, W, 3] in [0, 1]
# with the neighbourhood unit (pixels per 1 % of the short side).


@dataclass(frozen=True)
class ChannelMix:
    """Each output channel a mix of the inputs; rows sum to 1, so greys stay grey."""

    matrix: tuple  # 3x3, rows = output R, G, B

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        return rgb @ np.asarray(self.matrix, dtype=np.float32).T


@dataclass(frozen=True)
class Curves:
    """Per-channel monotone curve: ``black + (white - black) * s_curve(x ** gamma, contrast)``."""

    black: tuple  # [3] output at input 0 (lifted blacks)
    white: tuple  # [3] output at input 1 (rolled-off whites)
    gamma: tuple  # [3] < 1 brightens the channel's mid-tones
    contrast: float  # S-curve strength, negative = flatter; in (-1, 1) the curve stays monotone

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        x = np.clip(rgb, 0.0, 1.0) ** np.asarray(self.gamma, dtype=np.float32)
        x = (1.0 - self.contrast) * x + self.contrast * (x * x * (3.0 - 2.0 * x))
        black, white = np.asarray(self.black, np.float32), np.asarray(self.white, np.float32)
        return black + (white - black) * x


@dataclass(frozen=True)
class HueShift:
    """Hue-selective grade: colours within ``width`` degrees of ``centre`` (CbCr hue angle) are
    rotated by ``rotate`` degrees, their chroma scaled by ``saturation`` and luma by ``lightness``;
    the selection fades out over 25 degrees and on near-grey pixels."""

    centre: float
    width: float
    rotate: float
    saturation: float
    lightness: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        y, cb, cr = rgb @ LUMA, rgb @ _CB, rgb @ _CR
        hue = np.rad2deg(np.arctan2(cr, cb))
        distance = np.abs((hue - self.centre + 180.0) % 360.0 - 180.0)
        weight = (1.0 - smoothstep(self.width, self.width + 25.0, distance)) * smoothstep(
            0.01, 0.05, np.hypot(cb, cr))
        angle = np.deg2rad(self.rotate) * weight
        gain = 1.0 + (self.saturation - 1.0) * weight
        cos, sin = np.cos(angle) * gain, np.sin(angle) * gain
        chroma = np.stack([cos * cb - sin * cr, sin * cb + cos * cr], axis=-1)  # [H, W, 2]
        y = y * (1.0 + (self.lightness - 1.0) * weight)
        return y[..., None] + chroma @ _FROM_CBCR


@dataclass(frozen=True)
class Saturation:
    """Distance from grey scaled by ``amount`` (1 = unchanged)."""

    amount: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        grey = luma(rgb)[..., None]
        return grey + self.amount * (rgb - grey)


@dataclass(frozen=True)
class SplitTone:
    """Shadows tinted toward hue ``shadow_hue``, highlights toward ``highlight_hue`` (CbCr degrees);
    ``balance`` moves the crossover (positive: more of the frame counts as highlights)."""

    shadow_hue: float
    shadow_amount: float
    highlight_hue: float
    highlight_amount: float
    balance: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        lum = np.clip(luma(rgb), 0.0, 1.0)
        mid = 0.5 - self.balance
        shadows = (1.0 - smoothstep(0.0, mid + 0.1, lum))[..., None]
        highlights = smoothstep(mid - 0.1, 1.0, lum)[..., None]
        return (rgb + shadows * _chroma_rgb(self.shadow_hue, self.shadow_amount)
                + highlights * _chroma_rgb(self.highlight_hue, self.highlight_amount))


@dataclass(frozen=True)
class Smoothing:
    """Edge-aware smoothing: a guided filter (He et al. 2010) with Gaussian windows of ``radius``
    units steered by the luma, blended in at ``strength`` (skin and flat areas smooth, edges kept)."""

    radius: float
    eps: float
    strength: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        sigma = self.radius * unit
        g = luma(rgb)[..., None]
        mean_g, mean_s = blur(g, sigma), blur(rgb, sigma)
        a = (blur(g * rgb, sigma) - mean_g * mean_s) / (blur(g * g, sigma) - mean_g * mean_g + self.eps)
        b = mean_s - a * mean_g
        smooth = blur(a, sigma) * g + blur(b, sigma)
        return rgb + self.strength * (smooth - rgb)


@dataclass(frozen=True)
class Clarity:
    """Local contrast: luma detail above a Gaussian of ``radius`` units, times ``amount``, weighted
    toward the mid-tones (as Lightroom's Clarity) so deep shadows and highlights do not halo."""

    amount: float
    radius: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        lum = luma(rgb)
        detail = lum - blur(lum, self.radius * unit)
        mids = 4.0 * np.clip(lum, 0.0, 1.0) * (1.0 - np.clip(lum, 0.0, 1.0))
        return rgb + (self.amount * (0.3 + 0.7 * mids) * detail)[..., None]


@dataclass(frozen=True)
class Sharpen:
    """Unsharp mask on the luma at a small ``radius`` (units), ``amount`` of the detail added."""

    amount: float
    radius: float

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        lum = luma(rgb)
        return rgb + (self.amount * (lum - blur(lum, self.radius * unit)))[..., None]


@dataclass(frozen=True)
class Bloom:
    """Light above ``threshold`` (luma, soft) blurred over ``radius`` units, tinted, screened on."""

    threshold: float
    radius: float
    strength: float
    tint: tuple  # [3] multiplies the halo's colour

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        x = np.clip(rgb, 0.0, 1.0)
        bright = x * smoothstep(self.threshold, min(1.0, self.threshold + 0.3), luma(x))[..., None]
        halo = blur(bright, self.radius * unit) * np.asarray(self.tint, np.float32)
        return screen(x, np.clip(self.strength * halo, 0.0, 1.0))


@dataclass(frozen=True)
class Haze:
    """Atmospheric veil: a pull toward a tinted ``colour`` scaled by the surroundings' brightness
    (a Gaussian of the luma over ``radius`` units), so bright areas fog more than dark ones."""

    amount: float
    radius: float
    colour: tuple  # [3] the veil's colour at full brightness

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        around = blur(np.clip(luma(rgb), 0.0, 1.0), self.radius * unit)[..., None]
        veil = np.asarray(self.colour, np.float32) * (0.35 + 0.65 * around)
        return rgb + self.amount * (veil - rgb)


@dataclass(frozen=True)
class Vignette:
    """Corners darkened by up to ``amount``: no change inside ``midpoint`` (radius in half-frame
    units from ``centre``), full over ``feather``; ``roundness`` 0 = an oval following the frame,
    1 = a circle."""

    amount: float
    midpoint: float
    feather: float
    roundness: float
    centre: tuple  # (x, y) offset from the middle, fractions of the half width / height

    def __call__(self, rgb: np.ndarray, unit: float) -> np.ndarray:
        mask = vignette_mask(rgb.shape, self.midpoint, self.feather, self.roundness, self.centre)
        return rgb * (1.0 - self.amount * mask)[..., None]


# ---------------------------------------------------------------------------------------------
# Drawing the parameters (the documented ranges)


def draw_tone(rng: np.random.Generator) -> tuple:
    """The pointwise part of a random look, in the order it is applied."""
    mix = np.eye(3) + rng.uniform(-0.12, 0.12, (3, 3)) * (1.0 - np.eye(3))  # off-diagonal +-0.12
    mix = mix / mix.sum(axis=1, keepdims=True)  # greys stay grey; colour casts come from the curves
    gamma = np.exp(rng.uniform(-0.25, 0.25)) * np.exp(rng.uniform(-0.1, 0.1, 3))  # master x per channel
    curves = Curves(
        black=_r(rng.uniform(0.0, 0.07, 3)),
        white=_r(rng.uniform(0.9, 1.0, 3)),
        gamma=_r(gamma),
        contrast=_r(rng.uniform(-0.25, 0.5)),
    )
    hue = HueShift(
        centre=_r(rng.uniform(-180.0, 180.0)),
        width=_r(rng.uniform(15.0, 45.0)),
        rotate=_r(rng.uniform(-30.0, 30.0)),
        saturation=_r(rng.uniform(0.6, 1.5)),
        lightness=_r(rng.uniform(0.85, 1.1)),
    )
    split = SplitTone(
        shadow_hue=_r(rng.uniform(-180.0, 180.0)),
        shadow_amount=_r(rng.uniform(0.0, 0.06)),
        highlight_hue=_r(rng.uniform(-180.0, 180.0)),
        highlight_amount=_r(rng.uniform(0.0, 0.06)),
        balance=_r(rng.uniform(-0.15, 0.15)),
    )
    return (ChannelMix(_r(mix)), curves, hue, Saturation(_r(rng.uniform(0.7, 1.3))), split)


def _draw_smoothing(rng):
    return Smoothing(radius=_r(rng.uniform(1.0, 3.0)), eps=_r(np.exp(rng.uniform(np.log(0.001), np.log(0.01)))),
                     strength=_r(rng.uniform(0.4, 0.9)))


def _draw_clarity(rng):
    return Clarity(amount=_r(rng.uniform(0.3, 1.0)), radius=_r(rng.uniform(3.0, 12.0)))


def _draw_sharpen(rng):
    return Sharpen(amount=_r(rng.uniform(0.3, 1.0)), radius=_r(rng.uniform(0.5, 1.5)))


def _draw_bloom(rng):
    return Bloom(threshold=_r(rng.uniform(0.45, 0.8)), radius=_r(rng.uniform(2.0, 10.0)),
                 strength=_r(rng.uniform(0.3, 0.9)), tint=_r(rng.uniform(0.75, 1.0, 3)))


def _draw_haze(rng):
    veil = rng.uniform(0.8, 1.0) * (1.0 + rng.uniform(-0.05, 0.05, 3))  # a light grey, slightly tinted
    return Haze(amount=_r(rng.uniform(0.08, 0.25)), radius=_r(rng.uniform(5.0, 20.0)), colour=_r(np.minimum(veil, 1.0)))


def _draw_vignette(rng):
    return Vignette(amount=_r(rng.uniform(0.15, 0.5)), midpoint=_r(rng.uniform(0.4, 0.8)),
                    feather=_r(rng.uniform(0.3, 0.8)), roundness=_r(rng.uniform(0.0, 1.0)),
                    centre=_r(rng.uniform(-0.15, 0.15, 2)))


# In the order they are applied (a retoucher's order: smooth, add detail, light, veil, frame).
LOCAL_OPS = {
    "smoothing": _draw_smoothing,
    "clarity": _draw_clarity,
    "sharpen": _draw_sharpen,
    "bloom": _draw_bloom,
    "haze": _draw_haze,
    "vignette": _draw_vignette,
}


def draw_local(rng: np.random.Generator) -> tuple:
    """One to three distinct local operators, in :data:`LOCAL_OPS` order."""
    count = int(rng.integers(1, 4))
    picked = set(rng.choice(len(LOCAL_OPS), size=count, replace=False).tolist())
    return tuple(draw(rng) for i, draw in enumerate(LOCAL_OPS.values()) if i in picked)


# ---------------------------------------------------------------------------------------------
# The looks


@dataclass(frozen=True)
class RandomRecipe:
    """Ordered operators; called on float32 ``[H, W, 3]`` in [0, 1], returns the same (unclipped)."""

    ops: tuple

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        unit = scale(rgb)
        x = np.asarray(rgb, dtype=np.float32)
        for op in self.ops:
            x = np.clip(op(x, unit), 0.0, 1.0).astype(np.float32, copy=False)
        return x


def recipe(seed: int, kind: str) -> RandomRecipe:
    """The operators of ``random-KIND-SEED``. A local look's tone part is ``random-tone-SEED``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} or 'any', got {kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    ops = draw_tone(rng)
    return RandomRecipe(ops + draw_local(rng) if kind == "local" else ops)


def _op_text(op) -> str:
    def fmt(v):
        return "(" + ", ".join(fmt(x) for x in v) + ")" if isinstance(v, tuple) else f"{v:g}"

    values = ", ".join(f"{f.name}={fmt(v)}" for f, v in zip(fields(op), astuple(op)))
    return f"{type(op).__name__.lower()}({values})"


def describe(seed: int, kind: str = "any") -> str:
    """The drawn recipe of ``random_look(seed, kind)``, one operator a line (radii in % of the
    short side, hues as CbCr angles in degrees)."""
    kind = _any_kind(seed) if kind == "any" else kind
    return "\n".join([f"random-{kind}-{seed}:"] + ["  " + _op_text(op) for op in recipe(seed, kind).ops])


def _any_kind(seed: int) -> str:
    # Its own stream, so random_look(N, "any") equals random_look(N, <the kind it picked>).
    return KINDS[int(np.random.default_rng([int(seed), 1]).integers(len(KINDS)))]


def random_look(seed: int, kind: str = "any") -> Look:
    """The look ``random-{kind}-{seed}`` (``kind="any"``: tone or local, picked by the seed).

    Deterministic for a seed; its description names the operators and their drawn parameters.
    """
    if kind == "any":
        kind = _any_kind(seed)
    ops = recipe(seed, kind).ops
    return Look(f"random-{kind}-{seed}", "random look: " + "; ".join(_op_text(op) for op in ops),
                RandomRecipe(ops), kind=kind)


def random_look_named(name: str) -> Look:
    """The look called ``random-tone-N`` or ``random-local-N``; ``ValueError`` for other names."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"unknown look {name!r}: random looks are named random-tone-N or random-local-N "
                         "(N a non-negative integer seed)")
    return random_look(int(match.group(2)), match.group(1))
