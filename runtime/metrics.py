"""Image fidelity metrics shared by distillation reports, the export gate, benchmarks and evaluation.

All functions take two images of the same shape ``[H, W, 3]`` (HWC, RGB). ``data_range`` is the
span of the values: 255 for uint8 / [0, 255] floats, 2.0 for [-1, 1] tensors.

PSNR is plain numpy so the torch-free runtime can use it. SSIM and CIEDE2000 come from
scikit-image (a maintained library), imported only when called.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0  # identical images report this instead of +inf so JSON stays finite


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every element, in the images' own units squared."""
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2, dtype=np.float64))


def psnr_from_mse(mean_squared_error: float, data_range: float = 255.0) -> float:
    """``10 log10(range^2 / mse)`` in dB, capped at :data:`PSNR_CAP_DB` (identical images)."""
    if not np.isfinite(mean_squared_error):  # NaN/inf outputs: no PSNR (and never the cap)
        return float("nan")
    if mean_squared_error <= 0.0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mean_squared_error)))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB, capped at :data:`PSNR_CAP_DB` for identical inputs."""
    return psnr_from_mse(mse(a, b), data_range)


def pooled_psnr(psnrs_db, data_range: float = 255.0) -> float:
    """PSNR of a set of images: the PSNR of their pooled (mean) MSE, from per-image PSNRs in dB.

    This is the summary to report over several images: averaging dB values instead would let
    one identical (capped at 100 dB) image dominate the mean.
    """
    values = [float(v) for v in psnrs_db]
    if not values:
        raise ValueError("pooled_psnr needs at least one PSNR value")
    pooled = float(np.mean([data_range**2 / 10 ** (v / 10.0) for v in values]))
    return psnr_from_mse(pooled, data_range)


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute per-element difference, in the images' own units."""
    a, b = _pair(a, b)
    return float(np.max(np.abs(a - b)))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Structural similarity (scikit-image, Gaussian-weighted as in Wang et al. 2004) of HWC RGB images."""
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    return float(
        structural_similarity(
            a, b, data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
    )


def delta_e2000(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean CIEDE2000 colour difference between two sRGB images (scikit-image)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    a, b = _pair(a, b)
    lo = 0.0 if data_range == 255.0 else -1.0
    a01 = np.clip((a - lo) / data_range, 0.0, 1.0)
    b01 = np.clip((b - lo) / data_range, 0.0, 1.0)
    return float(np.mean(deltaE_ciede2000(rgb2lab(a01), rgb2lab(b01))))


def all_metrics(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> dict[str, float]:
    """PSNR, SSIM, CIEDE2000 and max abs error in one dict (needs scikit-image)."""
    return {
        "psnr": psnr(a, b, data_range),
        "ssim": ssim(a, b, data_range),
        "delta_e2000": delta_e2000(a, b, data_range),
        "max_abs": max_abs_error(a, b),
    }
