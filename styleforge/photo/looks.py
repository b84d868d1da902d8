"""Built-in photo looks: deterministic image -> image functions used as demo styles and ground truth.

Every look takes ``uint8 [H, W, 3]`` RGB of any size and returns ``uint8 [H, W, 3]``. Internally
they work on ``float32`` in ``[0, 1]``. Three kinds, from easy to hard for a small CNN:

* ``tone``: pointwise colour transforms (each output pixel depends only on the same input pixel),
  learnable exactly by 1x1 convolutions: ``film-warm``, ``noir``, ``teal-orange``.
* ``local``: smoothing, glow, clarity and vignettes over neighbourhoods that scale with the image:
  ``glow``, ``portrait-retouch``, ``dreamy-bloom``.
* ``structure``: flat colour regions and drawn edges: ``toon``.

Neighbourhood sizes are fractions of the short side, so a look reads the same at any resolution.
Besides these, :func:`get_look` accepts ``random-tone-N`` and ``random-local-N``: looks drawn from a
seed (:mod:`styleforge.photo.random_looks`), the set a learner is tuned on.
"""

from __future__ import annotations

import numpy as np

from styleforge.photo.look_blocks import (
    LUMA as LUMA,  # re-exported: callers import it from here
)
from styleforge.photo.look_blocks import (
    Look,
    blur,
    guided_filter,
    luma,
    s_curve,
    saturate,
    scale,
    screen,
    smoothstep,
    vignette_mask,
)

# ---------------------------------------------------------------------------------------------
# The looks


def film_warm(rgb: np.ndarray) -> np.ndarray:
    """Warm film grade: gentle S-curve, lifted (faded) blacks, rolled-off whites, warm balance."""
    x = s_curve(rgb, 0.6)
    x = 0.10 + 0.84 * x  # fade: blacks never reach 0, whites never reach 1
    r = 0.03 + 0.97 * x[..., 0] ** 0.82  # warm: lift red, hold green, pull blue down
    g = x[..., 1] ** 0.96
    b = 0.86 * x[..., 2] ** 1.12
    return saturate(np.stack([r, g, b], axis=-1), 0.85)


def noir(rgb: np.ndarray) -> np.ndarray:
    """High-contrast black & white through a red-leaning channel mix (bright skin, dark skies)."""
    grey = rgb @ np.array([0.55, 0.37, 0.08], dtype=np.float32)
    grey = np.clip((grey - 0.04) / 0.9, 0.0, 1.0)  # crush the blacks a little
    grey = s_curve(s_curve(grey, 0.8), 0.4)
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
    lum = luma(rgb)
    shadows = (1.0 - smoothstep(0.05, 0.65, lum))[..., None]
    highlights = smoothstep(0.35, 1.0, lum)[..., None]
    teal = np.array([-0.14, 0.03, 0.13], dtype=np.float32)
    orange = np.array([0.13, 0.03, -0.12], dtype=np.float32)
    protect = 1.0 - 0.75 * _skin_weight(rgb)[..., None]
    x = rgb + protect * (shadows * teal + highlights * orange)
    return saturate(s_curve(np.clip(x, 0.0, 1.0), 0.3), 1.1)


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
    band = smoothstep(145.0, 170.0, hue) * (1.0 - smoothstep(250.0, 275.0, hue))
    weight = (band * smoothstep(0.04, 0.15, chroma))[..., None]
    grey = luma(rgb)[..., None]
    teal = grey + 1.35 * (rgb - grey)  # more saturated...
    teal = teal + np.array([-0.06, 0.03, -0.02], dtype=np.float32)  # ...and shifted toward teal
    teal = 0.92 * teal  # a little deeper
    return rgb + weight * (teal - rgb)


def bleach_bypass(rgb: np.ndarray) -> np.ndarray:
    """Bleach bypass: the photo overlaid on its own black-and-white copy, then desaturated.

    Every output channel depends on all three inputs (through the luma overlay), so per-channel
    curves cannot express it; a colour matrix with curves, or a 3D LUT, can.
    """
    grey = luma(rgb)[..., None]
    overlay = np.where(grey < 0.5, 2.0 * rgb * grey, 1.0 - 2.0 * (1.0 - rgb) * (1.0 - grey))
    x = 0.4 * rgb + 0.6 * overlay
    return saturate(np.clip(x, 0.0, 1.0), 0.55)


def glow(rgb: np.ndarray) -> np.ndarray:
    """Soft glow: edge-preserving smoothing (skin) plus blurred highlights screened back on top."""
    unit = scale(rgb)
    lum = luma(rgb)
    smooth = guided_filter(lum, rgb, radius=max(1, round(1.5 * unit)), eps=0.004)
    x = 0.35 * rgb + 0.65 * smooth  # keep some texture so skin does not look plastic
    bright = x * smoothstep(0.45, 1.0, luma(x))[..., None]
    halo = blur(bright, sigma=4.0 * unit)
    x = screen(np.clip(x, 0.0, 1.0), 0.9 * np.clip(halo, 0.0, 1.0))
    return 0.03 + 0.97 * x  # a touch of haze


def toon(rgb: np.ndarray) -> np.ndarray:
    """Cartoon: flattened colour regions, quantised luminance bands, dark outlines."""
    unit = scale(rgb)
    x = rgb
    for _ in range(2):  # repeated edge-preserving smoothing flattens texture but keeps edges
        x = guided_filter(luma(x), x, radius=max(1, round(2 * unit)), eps=0.01)
    x = np.clip(x, 0.0, 1.0)
    lum = luma(x)
    levels = 7
    # Luminance bands with short soft steps between them (hard steps alias into blotches).
    scaled = lum * levels
    step = np.floor(scaled)
    banded = (step + smoothstep(0.75, 1.0, scaled - step) + 0.25) / (levels + 0.5)
    x = x * (banded / np.maximum(lum, 1e-3))[..., None]
    x = saturate(np.clip(x, 0.0, 1.0), 1.25)
    # Outlines: difference of Gaussians on the smoothed luminance (dark side of each edge).
    sigma = 0.6 * unit
    dog = blur(lum, sigma) - blur(lum, 1.6 * sigma)
    edge = np.clip((-dog - 0.008) / 0.02, 0.0, 1.0)
    return x * (1.0 - 0.85 * edge)[..., None]


def portrait_retouch(rgb: np.ndarray) -> np.ndarray:
    """Portrait retouch: skin smoothed edge-aware, mid-tone clarity, warm split tone, oval vignette."""
    unit = scale(rgb)
    lum = luma(rgb)
    # Skin smoothing: a guided filter keeps eyes, lips and hair edges; the mask (blurred so its
    # border does not show) smooths skin most and everything else a little.
    smooth = guided_filter(lum, rgb, radius=max(1, round(3.0 * unit)), eps=0.004)
    skin = blur(_skin_weight(rgb), sigma=2.0 * unit)
    x = rgb + (0.25 + 0.7 * skin)[..., None] * (smooth - rgb)
    # Clarity: a band of luminance detail between 1.5 and 8 units (the shape of faces and
    # clothes, not pores, so the smoothing above survives), boosted in the mid-tones only so
    # highlights and shadows do not halo.
    lum = luma(x)
    detail = blur(lum, sigma=1.5 * unit) - blur(lum, sigma=8.0 * unit)
    mids = 4.0 * lum * (1.0 - lum)
    x = x + (0.8 * mids * detail)[..., None]
    # Warm split tone: rose shadows, golden highlights, a gentle S-curve.
    lum = np.clip(luma(x), 0.0, 1.0)
    shadows = (1.0 - smoothstep(0.0, 0.55, lum))[..., None]
    highlights = smoothstep(0.45, 1.0, lum)[..., None]
    x = x + shadows * np.array([0.035, -0.005, 0.01], np.float32)
    x = x + highlights * np.array([0.05, 0.02, -0.05], np.float32)
    x = s_curve(np.clip(x, 0.0, 1.0), 0.25)
    # Soft oval vignette: the corners 30 % darker, the face untouched.
    return x * (1.0 - 0.3 * vignette_mask(x.shape, midpoint=0.55, feather=0.8))[..., None]


def dreamy_bloom(rgb: np.ndarray) -> np.ndarray:
    """Dreamy bloom: warm halos around highlights at two radii, matte blacks, muted colour, crisp detail."""
    unit = scale(rgb)
    lum = luma(rgb)
    # Bloom: what is bright spills light over a small and a wide radius, tinted warm, screened on.
    bright = rgb * smoothstep(0.5, 0.95, lum)[..., None]
    halo = 0.55 * blur(bright, sigma=3.0 * unit) + 0.45 * blur(bright, sigma=12.0 * unit)
    halo = np.clip(1.2 * halo * np.array([1.0, 0.82, 0.58], np.float32), 0.0, 1.0)
    x = screen(rgb, halo)
    # Light sharpening after the bloom, so eyes and lashes stay crisp inside the soft light.
    detail = luma(x) - blur(luma(x), sigma=0.8 * unit)
    x = np.clip(x + 0.6 * detail[..., None], 0.0, 1.0)
    # Matte: blacks lifted to a warm grey, whites rolled off; colour muted a little.
    x = np.array([0.11, 0.095, 0.085], np.float32) + np.array([0.87, 0.88, 0.86], np.float32) * x
    return saturate(x, 0.8)


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
        Look("portrait-retouch", "skin smoothing, mid-tone clarity, warm split tone, oval vignette (local)",
             portrait_retouch, kind="local"),
        Look("dreamy-bloom", "warm highlight bloom, matte lifted blacks, muted colour, crisp detail (local)",
             dreamy_bloom, kind="local"),
    )
}


def get_look(name: str) -> Look:
    """The look called ``name``: a built-in one, or ``random-tone-N`` / ``random-local-N`` (a look
    drawn from seed ``N``, :mod:`styleforge.photo.random_looks`); ``ValueError`` otherwise."""
    if name in LOOKS:
        return LOOKS[name]
    if name.startswith("random-"):
        from styleforge.photo.random_looks import random_look_named  # imports this module's helpers

        return random_look_named(name)
    raise ValueError(f"unknown look {name!r}; choose from {', '.join(LOOKS)}, random-tone-N or random-local-N")


def apply_look(name: str, rgb_uint8_hwc: np.ndarray) -> np.ndarray:
    """Apply look ``name`` to ``uint8 [H, W, 3]`` RGB; returns a new ``uint8 [H, W, 3]`` array."""
    look = get_look(name)
    rgb = np.asarray(rgb_uint8_hwc)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] RGB, got {rgb.dtype} {list(rgb.shape)}")
    x = rgb.astype(np.float32) / np.float32(255.0)
    y = look.fn(x)
    return np.clip(np.rint(np.asarray(y, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
