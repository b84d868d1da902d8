"""uint8 RGB pixels <-> an artifact's input/output tensors, as its TensorSpec describes them.

Works on one tile (or a small batch of tiles) at a time, in float32: the whole photo is never
converted to floats here. Quantised tensors use the scale / zero point the *interpreter*
reports for the loaded model (see :func:`effective_spec`), not a copy that could be stale.

:func:`pixels_to_range` / :func:`range_to_pixels` are the one uint8 <-> ``[-1, 1]`` conversion
pair of the project (torch-free); ``styleforge.train.tensors`` wraps them for torch tensors.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from styleforge.runtime.contract import BundleError, TensorSpec

_QUANT_LIMITS = {"int8": (-128, 127), "uint8": (0, 255)}


MODEL_RANGE = (-1.0, 1.0)  # what every styleforge generator takes and returns


def pixels_to_range(pixels: np.ndarray, value_range: tuple[float, float] = MODEL_RANGE) -> np.ndarray:
    """uint8 pixels (any shape) -> float32 in ``value_range``; the one pixel -> model conversion.

    For the default ``[-1, 1]`` this is ``pixel * 2/255 - 1`` (i.e. ``pixel / 127.5 - 1``).
    """
    lo, hi = value_range
    x = np.asarray(pixels).astype(np.float32, order="C")
    x *= np.float32((hi - lo) / 255.0)
    x += np.float32(lo)
    return x


def range_to_pixels(y: np.ndarray, value_range: tuple[float, float] = MODEL_RANGE) -> np.ndarray:
    """float values in ``value_range`` -> float32 pixel values in [0, 255], clipped, *not* rounded.

    The one model -> pixel conversion; :func:`to_uint8` does the final rounding. Kept in float so
    overlapping tiles can be blended, and so fidelity metrics see differences below one level.
    """
    lo, hi = value_range
    y = (np.asarray(y, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(y, 0.0, 255.0)


def effective_spec(spec: TensorSpec, reported: Optional[dict[str, Any]], what: str) -> TensorSpec:
    """Check ``spec`` against what the interpreter reports and adopt its quantisation.

    ``reported`` is ``Backend.input_details()``/``output_details()``: ``shape`` (``-1`` or
    ``None`` for dynamic dims, ``None`` when unknown), ``dtype``, ``scale``, ``zero_point``.
    Raises :class:`BundleError` when the manifest and the model disagree.
    """
    if not reported:
        return spec
    dtype = reported.get("dtype")
    if dtype and dtype != spec.dtype:
        raise BundleError(f"{what}: manifest says dtype {spec.dtype} but the model's tensor is {dtype}")
    shape = reported.get("shape")
    if shape is not None:
        if len(shape) != len(spec.shape) or any(
            m is not None and r is not None and r >= 0 and m != r for m, r in zip(spec.shape, shape)
        ):
            raise BundleError(f"{what}: manifest says shape {tuple(spec.shape)} but the model's tensor is {tuple(shape)}")
    if spec.is_quantized:
        scale, zero_point = reported.get("scale"), reported.get("zero_point")
        if scale is None:
            scale, zero_point = spec.scale, spec.zero_point
        if not scale:
            raise BundleError(f"{what}: quantised {spec.dtype} tensor without a scale")
        spec = dataclasses.replace(spec, scale=float(scale), zero_point=int(zero_point or 0))
    return spec


def to_input(pixels: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` RGB -> the model input tensor (layout, range, dtype of ``spec``)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"expected uint8 [N, H, W, 3] pixels, got {pixels.dtype} {pixels.shape}")
    x = pixels_to_range(pixels, spec.value_range)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    if spec.is_quantized:
        qmin, qmax = _QUANT_LIMITS[spec.dtype]
        x = np.rint(x / np.float32(spec.scale)) + np.float32(spec.zero_point)
        return np.ascontiguousarray(np.clip(x, qmin, qmax).astype(spec.dtype))
    return np.ascontiguousarray(x.astype(spec.dtype, copy=False))


def from_output(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Model output tensor -> float32 ``[N, H, W, 3]`` pixel values in [0, 255] (not yet rounded).

    Kept in float so overlapping tiles can be blended before the one final rounding.
    """
    y = np.asarray(y)
    if y.ndim == 3:
        y = y[None]
    if spec.is_quantized:
        y = (y.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)
    else:
        y = y.astype(np.float32, copy=False)
    if spec.layout == "NCHW":
        y = y.transpose(0, 2, 3, 1)
    if y.shape[-1] != 3:
        raise BundleError(f"model output has shape {y.shape}; expected 3 colour channels ({spec.layout})")
    return range_to_pixels(y, spec.value_range)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float pixels in [0, 255] -> uint8, rounding to nearest."""
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
