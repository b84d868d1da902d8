"""Classical colour transfers a learned look must beat, and the colour fits that start one.

Per-image transfers (uint8 ``[H, W, 3]`` RGB in and out; with ``content_images`` they become
set to set: the content set's statistics mapped onto the style set's, one global grade):

* :func:`reinhard_transfer`: each CIELAB channel's mean and standard deviation matched to the
  style set's (Reinhard, Ashikhmin, Gooch & Shirley, "Color Transfer between Images", 2001;
  Lab instead of their lαβ, as most implementations do).
* :func:`histogram_match`: per-channel RGB histogram matching against the pooled style pixels
  (``skimage.exposure.match_histograms``).

Set-to-set transfers (content set -> style set, one function of colour for every image):
:func:`mkl_transfer` (Monge-Kantorovich linear map, Pitié & Kokaram 2007),
:func:`sliced_ot_transfer` (iterative sliced optimal transport, :class:`SlicedOTMap`) and
:func:`levels_transfer` (per-channel black and white points). :data:`BASELINES` names the five
transfers; :func:`classical_methods` gives the seven variants eval-looks reports
(:data:`CLASSICAL_NAMES`).

Fits on pooled pixels (float64 ``[N, 3]`` RGB in [0, 1], :func:`pixels01`), used by the transfers
above and to initialise the colour generator: :func:`mkl_fit`, :func:`affine_fit` (paired pixels,
least squares), :func:`levels_fit`, :func:`grey_levels_fit` (for monochrome looks),
:func:`quantile_curves` and :func:`sliced_ot_fit` (the paired LUT lattice is
:func:`styleforge.photo.lattice.lattice_regression`). Measures: :func:`tone_residual` / :func:`is_monochrome` (is a style set
black and white?) and :func:`sliced_wasserstein_lab` (distance between two pixel sets).

The style set is a list of ``uint8`` HWC arrays or image paths; to transfer many images to the
same style set, build a :class:`StyleReference` once (:func:`style_reference`).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from styleforge.photo.looks import LUMA
from styleforge.runtime.imageio import open_image, to_uint8_array

MAX_POOLED_PIXELS = 2_000_000  # enough for stable statistics, bounded memory for big style sets

StyleImage = Union[np.ndarray, str, os.PathLike]


@dataclass(frozen=True)
class StyleReference:
    """Statistics of a style set: Lab mean/std (for Reinhard) and pooled RGB pixels ``[N, 1, 3]``."""

    lab_mean: np.ndarray  # [3]
    lab_std: np.ndarray  # [3]
    pixels: np.ndarray  # uint8 [N, 1, 3]


# A style (or content) set: uint8 HWC arrays or image paths, or their pooled StyleReference.
StyleSet = Union[Sequence[StyleImage], StyleReference]


def _as_rgb(image: StyleImage) -> np.ndarray:
    if isinstance(image, np.ndarray):
        arr = image
    else:
        arr = to_uint8_array(open_image(image).rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] RGB, got {arr.dtype} {list(arr.shape)}")
    return arr


_CACHE: dict[bytes, StyleReference] = {}  # pooled-pixel digest -> reference; a few style sets
_CACHE_SIZE = 4


def style_reference(style_images: StyleSet) -> StyleReference:
    """Pool the pixels of ``style_images`` (evenly subsampled to :data:`MAX_POOLED_PIXELS`).

    Results are cached by the pooled pixels' digest, so calling the transfer functions with the
    same list of images for every test image costs the Lab conversion only once.
    """
    from skimage.color import rgb2lab

    if isinstance(style_images, StyleReference):
        return style_images
    images = [_as_rgb(img).reshape(-1, 3) for img in style_images]
    if not images:
        raise ValueError("style_images is empty")
    total = sum(len(img) for img in images)
    stride = max(1, int(np.ceil(total / MAX_POOLED_PIXELS)))
    pixels = np.ascontiguousarray(np.concatenate([img[::stride] for img in images])[:, None, :])  # [N,1,3]
    key = hashlib.blake2b(pixels.tobytes(), digest_size=16).digest()
    if key not in _CACHE:
        lab = rgb2lab(pixels).reshape(-1, 3)
        pixels.setflags(write=False)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = StyleReference(lab.mean(axis=0), lab.std(axis=0), pixels)
    return _CACHE[key]


def _check(img: np.ndarray) -> np.ndarray:
    return _as_rgb(np.asarray(img))


def reinhard_transfer(
    img: np.ndarray,
    style_images: StyleSet,
    content_images: Optional[StyleSet] = None,
) -> np.ndarray:
    """Shift and scale each CIELAB channel of ``img`` to the style set's mean and std. uint8 HWC.

    Per image (Reinhard et al.) by default: ``img``'s own statistics are mapped onto the style
    set's, which also carries over the style photos' *content* colours (a beach set turns a portrait
    blue). With ``content_images`` the mapping is set to set: the content set's statistics are
    mapped onto the style set's, the same shift and scale for every image: a global grade.
    """
    from skimage.color import lab2rgb, rgb2lab

    img = _check(img)
    ref = style_reference(style_images)
    lab = rgb2lab(img)
    if content_images is None:
        mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0)
    else:
        source = style_reference(content_images)
        mean, std = source.lab_mean, source.lab_std
    out = (lab - mean) * (ref.lab_std / np.maximum(std, 1e-6)) + ref.lab_mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "negative Z values clipped": out of gamut, expected
        rgb = lab2rgb(out)  # float in [0, 1]
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _cdf(values: np.ndarray) -> np.ndarray:
    """Mid-point empirical CDF of uint8 ``values`` at 0..255."""
    counts = np.bincount(values, minlength=256).astype(np.float64)
    return (np.cumsum(counts) - 0.5 * counts) / counts.sum()


def histogram_match(
    img: np.ndarray,
    style_images: StyleSet,
    content_images: Optional[StyleSet] = None,
) -> np.ndarray:
    """Match each RGB channel's histogram to the pooled style pixels. uint8 HWC.

    By default ``img``'s own histogram is matched (``skimage.exposure.match_histograms``). With
    ``content_images`` one per-channel curve is fitted from the content set's histogram to the
    style set's and applied to every image (a global 1D LUT per channel).
    """
    from skimage.exposure import match_histograms

    img = _check(img)
    ref = style_reference(style_images)
    if content_images is None:
        out = match_histograms(img, ref.pixels, channel_axis=-1)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    source = style_reference(content_images)
    levels = np.arange(256, dtype=np.float64)
    out = np.empty_like(img)
    for c in range(3):
        lut = np.interp(_cdf(source.pixels[:, 0, c]), _cdf(ref.pixels[:, 0, c]), levels)
        out[..., c] = np.clip(np.rint(lut), 0, 255).astype(np.uint8)[img[..., c]]
    return out


BASELINES = {"reinhard": reinhard_transfer, "histogram": histogram_match}


# ---------------------------------------------------------------------------------------------
# Set-to-set fits that are functions of colour (used as baselines and to initialise the colour
# generator). Pixels are float64 ``[N, 3]`` RGB in [0, 1].


def pixels01(images: StyleSet) -> np.ndarray:
    """Pooled pixels of ``images`` as float64 ``[N, 3]`` in [0, 1] (subsampled like :func:`style_reference`)."""
    return style_reference(images).pixels[:, 0, :].astype(np.float64) / 255.0


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def mkl_fit(source: np.ndarray, target: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Monge-Kantorovich linear map (Pitié & Kokaram 2007) from ``source`` to ``target`` pixels.

    Returns ``(A [3, 3], b [3])`` with ``y = A @ x + b`` mapping the source mean and covariance
    exactly onto the target's (the optimal-transport map between the two Gaussians).
    """
    mu_s, mu_t = source.mean(0), target.mean(0)
    cov_s = np.cov(source.T) + eps * np.eye(3)
    cov_t = np.cov(target.T) + eps * np.eye(3)
    half = _sqrtm_psd(cov_s)
    inv_half = np.linalg.inv(half)
    a = inv_half @ _sqrtm_psd(half @ cov_t @ half) @ inv_half
    return a, mu_t - a @ mu_s


def affine_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares colour matrix from *paired* pixels: ``target ≈ A @ source + b``.

    ``source``, ``target``: ``[N, 3]`` RGB in [0, 1], row ``i`` of both the same pixel before and
    after the look. Returns ``(A [3, 3], b [3])``: the start of a paired colour generator.
    """
    design = np.concatenate([source, np.ones((len(source), 1))], axis=1)  # [N, 4]
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)  # [4, 3]
    return solution[:3].T, solution[3]


ORACLE_BINS = 32  # bins per channel of the best global colour map


def colour_oracle(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray], bins: int = ORACLE_BINS):
    """The best global colour map for these pairs: ``E[target | input colour]`` on a ``bins``³ grid
    (nearest bin), fitted on the pairs it is then scored on. An **oracle**, not a method: no global
    colour function (LUT, curves, matrix) does better on these photos *by more than its bins cost*,
    so it is the ceiling of every colour learner on a look with a spatial part and the bar such a
    look must clear. On a smooth tone look the nearest-bin steps (256 / ``bins`` levels wide) cap it
    near 41-42 dB at 32 bins, and a LUT fitted on other photos can score above it. ``inputs`` /
    ``targets``: uint8 ``[H, W, 3]``, pairwise the same size; returns ``fn(uint8 [H, W, 3]) ->
    uint8 [H, W, 3]`` (a colour no pair showed maps to itself)."""
    def index(rgb: np.ndarray) -> np.ndarray:
        q = (np.asarray(rgb, dtype=np.int64).reshape(-1, 3) * bins) // 256
        return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]

    keys = np.concatenate([index(x) for x in inputs])
    values = np.concatenate([np.asarray(y, dtype=np.float64).reshape(-1, 3) for y in targets])
    count = np.bincount(keys, minlength=bins**3)
    mean = np.stack([np.bincount(keys, values[:, c], minlength=bins**3) for c in range(3)], axis=1)
    seen = count > 0
    mean[seen] /= count[seen, None]

    def apply(rgb: np.ndarray) -> np.ndarray:
        k = index(rgb)
        out = np.where(seen[k, None], mean[k], np.asarray(rgb, dtype=np.float64).reshape(-1, 3))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(np.shape(rgb))

    return apply


def quantile_curves(source: np.ndarray, target: np.ndarray, knots: int) -> np.ndarray:
    """Per-channel monotone curves ``[3, knots]`` mapping ``source``'s marginals onto ``target``'s,
    sampled at ``linspace(0, 1, knots)`` (histogram matching as a piecewise-linear curve)."""
    qs = np.linspace(0.0, 1.0, 257)
    grid = np.linspace(0.0, 1.0, knots)
    curves = np.empty((3, knots))
    for c in range(3):
        xs, ys = np.quantile(source[:, c], qs), np.quantile(target[:, c], qs)
        xs = np.maximum.accumulate(xs + np.arange(257) * 1e-9)  # strictly increasing for interp
        curves[c] = np.interp(grid, xs, ys)
    return curves


def levels_fit(source: np.ndarray, target: np.ndarray, low: float = 0.005, high: float = 0.995
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel levels (black and white points): ``y = scale * x + offset`` mapping the
    ``low``/``high`` quantiles of each ``source`` channel onto ``target``'s.

    Unlike mean/covariance or histogram matching, the extremes of a photo set hardly depend on
    *what* the photos show (most photos hold something near black and near white), while a
    look's lifted blacks, rolled-off whites and tinted extremes show up there directly; on the
    album's scene-disjoint splits this is the most robust of the classical fits.
    Returns ``(scale [3], offset [3])``.
    """
    src = np.quantile(source, [low, high], axis=0)
    tgt = np.quantile(target, [low, high], axis=0)
    scale = (tgt[1] - tgt[0]) / np.maximum(src[1] - src[0], 1e-3)
    scale = np.maximum(scale, 1e-3)  # a flat style set must not turn the curve around
    return scale, tgt[0] - src[0] * scale


MONOCHROME_RESIDUAL = 2.0  # CIELAB units; photos in colour sit at 10 and above, B&W and toned prints near 0
GREY = LUMA  # Rec.601 luma weights on [0, 1] RGB, the looks' own


def tone_residual(pixels: np.ndarray, max_samples: int = 200_000) -> float:
    """How much colour a pixel set ``[N, 3]`` (RGB in [0, 1]) holds beyond what its lightness explains.

    The RMS distance (CIELAB a*b* units) of each pixel's a*, b* from the mean a*, b* of pixels of
    the same lightness (5-unit L* bins). 0 for black-and-white and for toned monochrome (sepia,
    cyanotype: colour is a function of lightness); 10-20 for ordinary colour photos whatever they
    show, which makes it a test of the *look* rather than of the scenes.
    """
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    sample = pixels[rng.permutation(len(pixels))[:max_samples]]
    lab = rgb2lab(sample[:, None, :].clip(0, 1)).reshape(-1, 3)
    bins = np.clip((lab[:, 0] / 5.0).astype(int), 0, 19)
    count = np.maximum(np.bincount(bins, minlength=20), 1)
    sq = 0.0
    for c in (1, 2):
        mean = np.bincount(bins, lab[:, c], minlength=20) / count
        sq = sq + (lab[:, c] - mean[bins]) ** 2
    return float(np.sqrt(np.mean(sq)))


def is_monochrome(style: np.ndarray) -> bool:
    """True when the style pixels ``[N, 3]`` (RGB in [0, 1]) are (toned) black and white."""
    return tone_residual(style) < MONOCHROME_RESIDUAL


def grey_levels_fit(source: np.ndarray, target: np.ndarray, low: float = 0.005, high: float = 0.995
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Levels from the source's grey (Rec.601 luma) to each target channel, for monochrome looks.

    ``y_c = scale_c * (GREY . x) + offset_c`` maps the ``low``/``high`` quantiles of the source's
    luma onto those of target channel ``c``: black and white with the target's black and white
    points, and its tint at both ends for a toned print. Returns ``(scale [3], offset [3])``.
    """
    return levels_fit((source @ GREY)[:, None], target, low, high)  # one grey column broadcasts to three


def _apply_rows(img: np.ndarray, fn) -> np.ndarray:
    """``fn`` (float64 ``[N, 3]`` RGB in [0, 1] -> the same) applied to every pixel of uint8 HWC
    ``img``; rounded and clipped back to uint8 HWC. The one body of the set-to-set transfers."""
    flat = img.reshape(-1, 3).astype(np.float64) / 255.0
    return np.clip(np.rint(fn(flat) * 255.0), 0, 255).astype(np.uint8).reshape(img.shape)


def mkl_transfer(img: np.ndarray, style_images: StyleSet, content_images: StyleSet) -> np.ndarray:
    """Set-to-set MKL colour transfer (content set -> style set) applied to ``img``. uint8 HWC."""
    a, b = mkl_fit(pixels01(content_images), pixels01(style_images))
    return _apply_rows(_check(img), lambda x: x @ a.T + b)


def levels_transfer(img: np.ndarray, style_images: StyleSet, content_images: StyleSet) -> np.ndarray:
    """Set-to-set per-channel levels (:func:`levels_fit`) applied to ``img``. uint8 HWC."""
    scale, offset = levels_fit(pixels01(content_images), pixels01(style_images))
    return _apply_rows(_check(img), lambda x: x * scale + offset)


@dataclass(frozen=True)
class SlicedOTMap:
    """Iterative sliced optimal transport (Pitié et al. 2005; Rabin et al. 2011) as a function.

    ``rotations [K, 3, 3]`` and per-step per-axis quantile maps ``xs, ys [K, 3, Q]``: each step
    rotates, matches each projected axis monotonically, and rotates back.
    """

    rotations: np.ndarray
    xs: np.ndarray
    ys: np.ndarray

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = np.array(rgb, dtype=np.float64)
        for rot, xs, ys in zip(self.rotations, self.xs, self.ys):
            proj = x @ rot
            moved = np.stack([np.interp(proj[:, k], xs[k], ys[k]) for k in range(3)], axis=1)
            x = x + (moved - proj) @ rot.T
        return x


def sliced_ot_fit(source: np.ndarray, target: np.ndarray, steps: int = 20, seed: int = 0,
                  max_samples: int = 100_000) -> SlicedOTMap:
    """Fit :class:`SlicedOTMap` from ``source`` to ``target`` pixels ``[N, 3]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    src = source[rng.permutation(len(source))[:max_samples]].copy()
    tgt = target[rng.permutation(len(target))[:max_samples]]
    qs = np.linspace(0.0, 1.0, 129)
    rots, all_xs, all_ys = [], [], []
    for _ in range(steps):
        rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        ps, pt = src @ rot, tgt @ rot
        xs = np.stack([np.quantile(ps[:, k], qs) for k in range(3)])
        ys = np.stack([np.quantile(pt[:, k], qs) for k in range(3)])
        xs = np.maximum.accumulate(xs + np.arange(len(qs)) * 1e-9, axis=1)
        moved = np.stack([np.interp(ps[:, k], xs[k], ys[k]) for k in range(3)], axis=1)
        src = src + (moved - ps) @ rot.T
        rots.append(rot)
        all_xs.append(xs)
        all_ys.append(ys)
    return SlicedOTMap(np.stack(rots), np.stack(all_xs), np.stack(all_ys))


def sliced_ot_transfer(img: np.ndarray, style_images: StyleSet, content_images: StyleSet) -> np.ndarray:
    """Set-to-set sliced optimal-transport colour transfer applied to ``img``. uint8 HWC."""
    return _apply_rows(_check(img), sliced_ot_fit(pixels01(content_images), pixels01(style_images)))


def sliced_wasserstein_lab(a_rgb01: np.ndarray, b_rgb01: np.ndarray, projections: int = 64,
                           seed: int = 0, max_samples: int = 50_000) -> float:
    """Sliced Wasserstein-2 distance between two pixel sets ``[N, 3]`` (RGB in [0, 1]) in CIELAB units.

    Fixed random directions (``seed``) so scores of different candidates are comparable. Written
    here rather than taken from POT, whose import pulls in TensorFlow and PyTorch when installed.
    """
    from skimage.color import rgb2lab

    rng = np.random.default_rng(seed)
    a = a_rgb01[rng.permutation(len(a_rgb01))[:max_samples]]
    b = b_rgb01[rng.permutation(len(b_rgb01))[:max_samples]]
    la = rgb2lab(a[:, None, :].clip(0, 1)).reshape(-1, 3)
    lb = rgb2lab(b[:, None, :].clip(0, 1)).reshape(-1, 3)
    dirs = rng.normal(size=(projections, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    qs = np.linspace(0.0, 1.0, 201)
    pa = np.quantile(la @ dirs.T, qs, axis=0)
    pb = np.quantile(lb @ dirs.T, qs, axis=0)
    return float(np.sqrt(np.mean((pa - pb) ** 2)))


BASELINES.update({"mkl": mkl_transfer, "sliced-ot": sliced_ot_transfer, "levels": levels_transfer})


CLASSICAL_NAMES = (  # the keys of classical_methods, in its order
    "reinhard (Lab mean/std)",
    "histogram match",
    "reinhard (set-to-set)",
    "histogram match (set-to-set)",
    "MKL (set-to-set)",
    "sliced OT (set-to-set)",
    "levels (set-to-set)",
)


def classical_methods(style_images, content_images) -> dict:
    """The seven classical transfers a learned look is compared with, as ``uint8 HWC -> uint8 HWC``
    callables named as eval-looks reports them: Reinhard and histogram matching per image and set
    to set, and set-to-set MKL, sliced OT and levels."""
    style, content = style_reference(style_images), style_reference(content_images)
    return {
        "reinhard (Lab mean/std)": lambda x: reinhard_transfer(x, style),
        "histogram match": lambda x: histogram_match(x, style),
        "reinhard (set-to-set)": lambda x: reinhard_transfer(x, style, content),
        "histogram match (set-to-set)": lambda x: histogram_match(x, style, content),
        "MKL (set-to-set)": lambda x: mkl_transfer(x, style, content),
        "sliced OT (set-to-set)": lambda x: sliced_ot_transfer(x, style, content),
        "levels (set-to-set)": lambda x: levels_transfer(x, style, content),
    }
