"""Parameter and multiply-accumulate (MAC) counts, measured with forward hooks.

One MAC is one multiply-add. Counted layers: ``Conv2d`` (including grouped and depthwise),
``ConvTranspose2d`` and ``Linear``. Activations, normalisation, residual adds, resizes and
biases are ignored: they are a rounding error next to the convolutions and are what every
published GMAC figure ignores too.

Two conventions for transposed convolutions are offered because published numbers differ:

- ``"exact"`` (default): each input element is multiplied by each kernel tap once,
  ``MACs = in_elements * (out_channels / groups) * kh * kw``. This is the real arithmetic.
- ``"torchprofile"``: ``MACs = out_elements * (in_channels / groups) * kh * kw``, i.e. a
  direct convolution over the zero-stuffed input. GAN Compression uses this (via the
  ``torchprofile`` package) for its "CycleGAN 56.8 GMAC at 256x256" figure; the exact count
  of the same network is 49.6 GMAC. Use this convention only to compare with such tables.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

CONVENTIONS = ("exact", "torchprofile")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (unique) parameters in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def example_input(model: nn.Module, size: tuple[int, int] = (256, 256), batch: int = 1) -> torch.Tensor:
    """A zero input of the right shape for ``model``.

    Noise-to-image generators (those with a ``latent_dim``) get ``[batch, latent_dim]``;
    image models get ``[batch, C, H, W]`` with ``C = model.config["in_channels"]`` (default 3).
    """
    try:
        ref = next(model.parameters())
        device, dtype = ref.device, ref.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim:
        return torch.zeros(batch, int(latent_dim), device=device, dtype=dtype)
    in_channels = int(getattr(model, "config", {}).get("in_channels", 3))
    height, width = size
    return torch.zeros(batch, in_channels, int(height), int(width), device=device, dtype=dtype)


def _layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor, convention: str) -> int:
    x = inputs[0]
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        if convention == "exact":
            per_sample = x[0].numel()
            return per_sample * (module.out_channels // module.groups) * kh * kw
        per_sample = output[0].numel()
        return per_sample * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output[0].numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        # Every output element is a dot product of length in_features.
        rows = output.numel() // output.shape[0] if output.dim() > 1 else output.numel()
        return rows * module.in_features
    return 0


@torch.no_grad()
def count_macs(
    model: nn.Module,
    size: tuple[int, int] = (256, 256),
    convention: str = "exact",
) -> int:
    """Multiply-accumulates of one forward pass on a single ``size`` = ``(H, W)`` input.

    Shapes are all the count needs, so the forward pass runs on a copy of the model on the
    ``meta`` device (no arithmetic: milliseconds even for a 50 GMAC teacher), in eval mode;
    ``model`` itself is not touched. Models with an op that has no meta kernel fall back to a
    real forward pass on zeros. For noise-to-image generators ``size`` is ignored and a latent
    vector is used. Errors from the model (e.g. a size off its stride) propagate.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    try:
        shadow = copy.deepcopy(model).to("meta")
    except (NotImplementedError, RuntimeError):
        shadow = None
    if shadow is not None:
        try:
            return _count(shadow, size, convention)
        except NotImplementedError:
            pass  # an op without a meta kernel: count on the real model below
    return _count(model, size, convention)


def _count(model: nn.Module, size: tuple[int, int], convention: str) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += _layer_macs(module, inputs, output, convention)

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    was_training = model.training
    try:
        model.eval()
        model(example_input(model, size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return int(total)


def profile(model: nn.Module, size: tuple[int, int] = (256, 256), convention: str = "exact") -> dict[str, Any]:
    """``{"params", "macs", "gmacs", "size"}`` for ``model`` at ``size`` = ``(H, W)``."""
    macs = count_macs(model, size, convention=convention)
    return {
        "params": count_params(model),
        "macs": macs,
        "gmacs": macs / 1e9,
        "size": [int(size[0]), int(size[1])],
    }
