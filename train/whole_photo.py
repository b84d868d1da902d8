"""The one whole-photo runner: an image generator on a photo of any size, padded and cropped back.

Training's report, the degeneracy checks, distillation's held-out report and the benchmarks all
run generators through :func:`run_padded` (tensors) or :func:`stylize_array` (uint8 arrays).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from styleforge.train.tensors import image_to_tensor, tensor_to_image

PAD_MODES = ("reflect", "replicate")


def pad_multiple(generator: nn.Module) -> int:
    """The size multiple a generator needs: its ``stride``, a wrapped teacher's (``.inner``), else 16."""
    for module in (generator, getattr(generator, "inner", None)):
        if module is not None and hasattr(module, "stride"):
            return int(module.stride)
    return 16


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` padded at the bottom and right to a multiple of ``multiple``.

    ``mode="reflect"`` mirrors the edge (and replicates it where the pad is as large as the photo,
    which reflection cannot do); ``"replicate"`` repeats the edge pixels.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, not {mode!r}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and not (ph < h and pw < w):
        mode = "replicate"
    return nn.functional.pad(x, (0, pw, 0, ph), mode=mode)


@torch.no_grad()
def run_padded(model: nn.Module, x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """``model`` on ``x`` ``[N, 3, H, W]`` in [-1, 1]: padded to ``multiple``, run, cropped back."""
    h, w = x.shape[-2:]
    return model(pad_to_multiple(x, multiple, mode))[..., :h, :w]


@torch.no_grad()
def stylize_array(generator: nn.Module, rgb: np.ndarray, device="cpu", multiple: int = 0,
                  mode: str = "reflect") -> np.ndarray:
    """Run an image generator on a uint8 ``[H, W, 3]`` array; returns uint8 ``[H, W, 3]``.

    The photo is padded to ``multiple`` (default :func:`pad_multiple` of the generator) and
    cropped back, so any size works.
    """
    x = image_to_tensor(np.asarray(rgb, dtype=np.uint8))[None].to(device)  # [1,3,H,W] in [-1, 1]
    y = run_padded(generator, x, multiple or pad_multiple(generator), mode)
    return tensor_to_image(y[0])
