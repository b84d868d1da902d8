"""What the LUT artifact writers share (the .cube/HALD writer, the per-photo LUT, the LUT graphs):
their error, their I/O contract and their fidelity score."""

from __future__ import annotations

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.runtime.contract import TensorSpec
from styleforge.runtime.metrics import max_abs_error, psnr


class LutExportError(StyleforgeError, RuntimeError):
    """The LUT cannot be exported faithfully; nothing was written. The message has the figures."""


def lut_tensor_spec(name: str) -> TensorSpec:
    """A LUT takes and returns any-size 8-bit (or 16-bit) sRGB images, NHWC."""
    return TensorSpec(name, (1, None, None, 3), dtype="uint8", layout="NHWC", value_range=(0.0, 255.0))


def score(reference01: np.ndarray, candidate01: np.ndarray) -> dict[str, float]:
    """PSNR (mean and worst image) and max abs error of ``[N, H, W, 3]`` images in [0, 1],
    measured on [0, 255] floats, not rounded."""
    ref, cand = reference01 * 255.0, candidate01 * 255.0
    scores = [psnr(a, b, 255.0) for a, b in zip(ref, cand)]
    return {
        "psnr": round(float(np.mean(scores)), 2),
        "psnr_min": round(float(np.min(scores)), 2),
        "max_abs": round(max(max_abs_error(a, b) for a, b in zip(ref, cand)), 3),
        "images": len(scores),
    }
