"""Building blocks of the looks: the :class:`Look` record and small image operators on
``float32 [H, W, 3]`` (or ``[H, W]``) in [0, 1], shared by the built-in looks
(:mod:`styleforge.photo.looks`) and the random ones (:mod:`styleforge.photo.random_looks`).

Neighbourhood sizes are given in units of :func:`scale` (1 % of the short side), so an operator
reads the same at any resolution. scipy is imported inside the functions that need it.
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


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def s_curve(x: np.ndarray, strength: float) -> np.ndarray:
    """Contrast S-curve around mid grey; ``strength`` 0 = identity, 1 = full smoothstep."""
    return (1.0 - strength) * x + strength * (x * x * (3.0 - 2.0 * x))


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMA  # [H, W]


def saturate(rgb: np.ndarray, amount: float) -> np.ndarray:
    """Scale the distance from grey: 0 = greyscale, 1 = unchanged, >1 = more saturated."""
    grey = luma(rgb)[..., None]
    return grey + amount * (rgb - grey)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sigmas = (sigma, sigma, 0.0) if img.ndim == 3 else (sigma, sigma)
    return gaussian_filter(img, sigmas, mode="reflect", truncate=3.0)


def box(img: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    size = (2 * radius + 1, 2 * radius + 1, 1) if img.ndim == 3 else 2 * radius + 1
    return uniform_filter(img, size=size, mode="reflect")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` [H,W,C] steered by the grey ``guide`` [H,W] (He et al. 2010)."""
    g = guide[..., None]
    mean_g = box(g, radius)
    mean_s = box(src, radius)
    cov_gs = box(g * src, radius) - mean_g * mean_s
    var_g = box(g * g, radius) - mean_g * mean_g
    a = cov_gs / (var_g + eps)
    b = mean_s - a * mean_g
    return box(a, radius) * g + box(b, radius)


def screen(base: np.ndarray, light: np.ndarray) -> np.ndarray:
    return 1.0 - (1.0 - base) * (1.0 - light)


def scale(rgb: np.ndarray) -> float:
    """Neighbourhood unit: 1% of the short side, at least one pixel."""
    return max(1.0, min(rgb.shape[:2]) / 100.0)


def vignette_mask(shape: tuple[int, ...], midpoint: float, feather: float, roundness: float = 0.0,
                   centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Vignette weight [H, W] in [0, 1]: 0 inside ``midpoint``, rising to 1 over ``feather``.

    The radius is measured from ``centre`` (fractions of the half width / half height, 0 = the
    middle) in units of the half frame: ``roundness`` 0 is an oval that follows the frame (the
    middle of each edge at radius 1), 1 a circle of radius half the short side. Pixel centres are
    used, so the mask is the same at any resolution.
    """
    h, w = shape[:2]
    half_short = min(h, w) / 2.0
    ax = (1.0 - roundness) * w / 2.0 + roundness * half_short  # ellipse half-axes in pixels
    ay = (1.0 - roundness) * h / 2.0 + roundness * half_short
    dx = (np.arange(w, dtype=np.float32) + 0.5 - w / 2.0 * (1.0 + centre[0])) / ax
    dy = (np.arange(h, dtype=np.float32) + 0.5 - h / 2.0 * (1.0 + centre[1])) / ay
    r = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    return smoothstep(midpoint, midpoint + feather, r)
