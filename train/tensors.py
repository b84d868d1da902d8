"""uint8 photos <-> torch tensors in the generators' ``[-1, 1]`` range: the one torch conversion pair.

Both functions go through :func:`styleforge.runtime.tensors.pixels_to_range` /
:func:`~styleforge.runtime.tensors.range_to_pixels`, so training, distillation, reports and the
torch-free runtime scale pixels identically.
"""

from __future__ import annotations

import numpy as np
import torch

from styleforge.runtime.tensors import pixels_to_range, range_to_pixels, to_uint8


def image_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]``, or ``[N, H, W, 3]`` -> ``[N, 3, H, W]``, in [-1, 1]."""
    x = torch.from_numpy(pixels_to_range(np.asarray(rgb)))
    return x.permute(2, 0, 1).contiguous() if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """float ``[3, H, W]`` (or ``[N, 3, H, W]``) in [-1, 1] -> uint8 ``[H, W, 3]`` (``[N, H, W, 3]``), rounded."""
    y = t.detach().float().cpu()
    y = y.permute(1, 2, 0) if y.ndim == 3 else y.permute(0, 2, 3, 1)
    return to_uint8(range_to_pixels(y.numpy()))
