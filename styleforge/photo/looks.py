"""Built-in photo looks: deterministic image -> image functions used as demo styles and ground truth.

Every look takes ``uint8 [H, W, 3]`` RGB of any size and returns ``uint8 [H, W, 3]``. Internally
they work on ``float32`` in ``[0, 1]``. Three kinds, from easy to hard for a small CNN:

* ``tone``: pointwise colour transforms (each output pixel depends only on the same input pixel),
  learnable exactly by 1x1 convolutions: ``film-warm``, ``noir``, ``teal-orange``.
* ``local``: smoothing and glow over a neighbourhood that scales with the image: ``glow``.
* ``structure``: flat colour regions and drawn edges: ``toon``.

Neighbourhood sizes are fractions of the short side, so a look reads the same at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec.601, as in JPEG


@dataclass(frozen=True)
class Look:
    """A named look. ``fn`` maps ``float32 [H, W, 3]`` in [0, 1] to the same (clipping is done for it)."""

    name: str
    description: str
    fn: Callable[[np.ndarray], np.ndarray]
    kind: str = "tone"  # "tone" | "local" | "structure"


# ---------------------------------------------------------------------------------------------
# Building blocks (float32 HWC in [0, 1])


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _s_curve(x: np.ndarray, strength: float) -> np.ndarray:
    """Contrast S-curve around mid grey; ``strength`` 0 = identity, 1 = full smoothstep."""
    return (1.0 - strength) * x + strength * (x * x * (3.0 - 2.0 * x))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA  # [H, W]


def _saturate(rgb: np.ndarray, amount: float) -> np.ndarray:
    """Scale the distance from grey: 0 = greyscale, 1 = unchanged, >1 = more saturated."""
    grey = _luma(rgb)[..., None]
    return grey + amount * (rgb - grey)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigmas = (sigma, sigma, 0.0) if img.ndim == 3 else (sigma, sigma)
    return gaussian_filter(img, sigmas, mode="reflect", truncate=3.0)


def _box(img: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    size = (2 * radius + 1, 2 * radius + 1, 1) if img.ndim == 3 else 2 * radius + 1
    return uniform_filter(img, size=size, mode="reflect")


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` [H,W,C] steered by the grey ``guide`` [H,W] (He et al. 2010)."""
    g = guide[..., None]
    mean_g = _box(g, radius)
    mean_s = _box(src, radius)
    cov_gs = _box(g * src, radius) - mean_g * mean_s
    var_g = _box(g * g, radius) - mean_g * mean_g
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    return _box(a, radius) * g + _box(b, radius)


def _screen(base: np.ndarray, light: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 - base) * (1.0 - light)


def _scale(rgb: np.ndarray) -> float:
    """Neighbourhood unit: 1% of the short side, at least one pixel."""
    return max(1.0, min(rgb.shape[:2]) / 100.0)


# ---------------------------------------------------------------------------------------------
# The looks


def film_warm(rgb: np.ndarray) -> np.ndarray:
    """Warm film grade: gentle S-curve, lifted (faded) blacks, rolled-off whites, warm balance."""
    x = _s_curve(rgb, 0.6)
    x = 0.10 + 0.84 * x  # fade: blacks never reach 0, whites never reach 1
    r = 0.03 + 0.97 * x[..., 0] ** 0.82  # warm: lift red, hold green, pull blue down
    g = x[..., 1] ** 0.96
    b = 0.86 * x[..., 2] ** 1.12
    return _saturate(np.stack([r, g, b], axis=-1), 0.85)


def noir(rgb: np.ndarray) -> np.ndarray:
    """High-contrast black & white through a red-leaning channel mix (bright skin, dark skies)."""
    grey = rgb @ np.array([0.55, 0.37, 0.08], dtype=np.float32)
    grey = np.clip((grey - 0.04) / 0.9, 0.0, 1.0)  # crush the blacks a little
    grey = _s_curve(_s_curve(grey, 0.8), 0.4)
    return np.repeat(grey[..., None], 3, axis=-1)


def _skin_weight(rgb: np.ndarray) -> np.ndarray:
    """Soft skin-tone mask [H, W] in [0, 1] from the chroma (Cb, Cr) of the pixel."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b  # ~[-0.5, 0.5]
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    # Skin clusters around Cb ~ -0.10, Cr ~ +0.10 for all ethnicities (luma-independent).
    d2 = ((cb + 0.10) / 0.08) ** 2 + ((cr - 0.10) / 0.07) ** 2
    return np.exp(-0.5 * d2)


def teal_orange(rgb: np.ndarray) -> np.ndarray:
    """Split toning: teal shadows, orange highlights; skin tones are mostly spared."""
    lum = _luma(rgb)
    shadows = (1.0 - _smoothstep(0.05, 0.65, lum))[..., None]
    highlights = _smoothstep(0.35, 1.0, lum)[..., None]
    teal = np.array([-0.14, 0.03, 0.13], dtype=np.float32)
    orange = np.array([0.13, 0.03, -0.12], dtype=np.float32)
    protect = 1.0 - 0.75 * _skin_weight(rgb)[..., None]
    x = rgb + protect * (shadows * teal + highlights * orange)
    return _saturate(_s_curve(np.clip(x, 0.0, 1.0), 0.3), 1.1)


def _hue_degrees(rgb: np.ndarray) -> np.ndarray:
    """Hue angle [H, W] in degrees [0, 360) of RGB in [0, 1] (HSV hue)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, ((g - b) / delta) % 6.0, np.where(mx == g, (b - r) / delta + 2.0, (r - g) / delta + 4.0))
    return hue * 60.0


def sky_teal(rgb: np.ndarray) -> np.ndarray:
    """Hue-selective grade: blues and cyans (skies, water) turn deeper teal; other hues are kept."""
    hue = _hue_degrees(rgb)
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    # weight 1 for hues 170-250 degrees (cyan to blue), fading out over 25 degrees, only where
    # there is colour to select (grey pixels have no meaningful hue)
    band = _smoothstep(145.0, 170.0, hue) * (1.0 - _smoothstep(250.0, 275.0, hue))
    weight = (band * _smoothstep(0.04, 0.15, chroma))[..., None]
    grey = _luma(rgb)[..., None]
    teal = grey + 1.35 * (rgb - grey)  # more saturated...
    teal = teal + np.array([-0.06, 0.03, -0.02], dtype=np.float32)  # ...and shifted toward teal
    teal = 0.92 * teal  # a little deeper
    return rgb + weight * (teal - rgb)


def bleach_bypass(rgb: np.ndarray) -> np.ndarray:
    """Bleach bypass: the photo overlaid on its own black-and-white copy, then desaturated.

    Every output channel depends on all three inputs (through the luma overlay), so per-channel
    curves cannot express it; a colour matrix with curves, or a 3D LUT, can.
    """
    grey = _luma(rgb)[..., None]
    overlay = np.where(grey < 0.5, 2.0 * rgb * grey, 1.0 - 2.0 * (1.0 - rgb) * (1.0 - grey))
    x = 0.4 * rgb + 0.6 * overlay
    return _saturate(np.clip(x, 0.0, 1.0), 0.55)


def glow(rgb: np.ndarray) -> np.ndarray:
    """Soft glow: edge-preserving smoothing (skin) plus blurred highlights screened back on top."""
    unit = _scale(rgb)
    lum = _luma(rgb)
    smooth = _guided_filter(lum, rgb, radius=max(1, round(1.5 * unit)), eps=0.004)
    x = 0.35 * rgb + 0.65 * smooth  # keep some texture so skin does not look plastic
    bright = x * _smoothstep(0.45, 1.0, _luma(x))[..., None]
    halo = _blur(bright, sigma=4.0 * unit)
    x = _screen(np.clip(x, 0.0, 1.0), 0.9 * np.clip(halo, 0.0, 1.0))
    return 0.03 + 0.97 * x  # a touch of haze


def toon(rgb: np.ndarray) -> np.ndarray:
    """Cartoon: flattened colour regions, quantised luminance bands, dark outlines."""
    unit = _scale(rgb)
    x = rgb
    for _ in range(2):  # repeated edge-preserving smoothing flattens texture but keeps edges
        x = _guided_filter(_luma(x), x, radius=max(1, round(2 * unit)), eps=0.01)
    x = np.clip(x, 0.0, 1.0)
    lum = _luma(x)
    levels = 7
    # Luminance bands with short soft steps between them (hard steps alias into blotches).
    scaled = lum * levels
    step = np.floor(scaled)
    banded = (step + _smoothstep(0.75, 1.0, scaled - step) + 0.25) / (levels + 0.5)
    x = x * (banded / np.maximum(lum, 1e-3))[..., None]
    x = _saturate(np.clip(x, 0.0, 1.0), 1.25)
    # Outlines: difference of Gaussians on the smoothed luminance (dark side of each edge).
    sigma = 0.6 * unit
    dog = _blur(lum, sigma) - _blur(lum, 1.6 * sigma)
    edge = np.clip((-dog - 0.008) / 0.02, 0.0, 1.0)
    return x * (1.0 - 0.85 * edge)[..., None]


LOOKS: dict[str, Look] = {
    look.name: look
    for look in (
        Look("film-warm", "warm film grade: S-curve, faded blacks, warm shift (tone)", film_warm),
        Look("noir", "high-contrast black & white via a red-leaning channel mix (tone)", noir),
        Look("teal-orange", "split toning: teal shadows, orange highlights, skin kept (tone)", teal_orange),
        Look("sky-teal", "hue-selective: blue and cyan hues turn deeper teal, others kept (tone)", sky_teal),
        Look("bleach-bypass", "overlay on its own B&W copy, desaturated: channels mixed (tone)", bleach_bypass),
        Look("glow", "soft glow with edge-preserving skin smoothing (local)", glow, kind="local"),
        Look("toon", "cartoon: flat colours, luminance bands, dark outlines (structure)", toon, kind="structure"),
    )
}


def get_look(name: str) -> Look:
    """The look called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return LOOKS[name]
    except KeyError:
        raise ValueError(f"unknown look {name!r}; choose from {', '.join(LOOKS)}") from None


def apply_look(name: str, rgb_uint8_hwc: np.ndarray) -> np.ndarray:
    """Apply look ``name`` to ``uint8 [H, W, 3]`` RGB; returns a new ``uint8 [H, W, 3]`` array."""
    look = get_look(name)
    rgb = np.asarray(rgb_uint8_hwc)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] RGB, got {rgb.dtype} {list(rgb.shape)}")
    x = rgb.astype(np.float32) / np.float32(255.0)
    y = look.fn(x)
    return np.clip(np.rint(np.asarray(y, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
