"""The student: a small encoder-decoder built only from ops every mobile runtime and NPU runs.

Why it looks like this:

- **Op set.** Conv (full, pointwise, depthwise), ReLU / ReLU6 (ONNX ``Clip``), Add, Resize
  (nearest or bilinear, ``align_corners=False``) and a final ``Clip``. No normalisation layers
  (so nothing to fold and nothing that breaks int8), no ConvTranspose (checkerboards, poor NPU
  support), no PixelShuffle, no reflection padding: zero padding only. ``MOBILE_OPS`` lists
  the ONNX op types the exported graph may contain and the tests enforce it.
- **Global residual.** The network predicts a correction ``delta`` and returns
  ``clip(x + delta, -1, 1)``. Photo looks are mostly tone/colour changes of the input, so the
  identity is the right starting point: the head is zero-initialised and an untrained student
  returns its input. During training the clip passes gradients straight through so that
  saturated pixels can still be pulled back into range; eval/export use a plain ``Clip``.
- **U-Net with Add skips.** Full-resolution features keep edges sharp (toon looks); the trunk of
  MobileNetV2 inverted-residual blocks at 1/8 resolution gives context (exposure, glow).
  Decoder stages project channels *before* upsampling (a 1x1 conv commutes with resizing) so
  the expensive full-resolution layers stay thin.

Presets (MACs measured with :func:`styleforge.train.models.profile.count_macs`):
``nano`` for tests, ``small`` (<= 1 GMAC at 512x512) and ``medium`` (~2-3 GMAC at 512x512).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ONNX op types a mobile-friendly graph may contain. The last group is the constant/shape
# plumbing that torch.onnx emits around Resize (scales) and Clip (min/max); the converters fold it.
MOBILE_OPS = frozenset(
    {
        "Conv", "Relu", "Clip", "Add", "Concat", "Resize", "Tanh",
        "Constant", "Identity", "Shape", "Gather", "Slice", "Unsqueeze", "Cast",
    }
)

# width_mult scales BASE_WIDTHS, depth_mult scales BASE_BLOCKS, expand is the inverted-residual
# expansion ratio.
BASE_WIDTHS = (16, 24, 32, 56)  # channels at H, H/2, H/4, H/8
BASE_BLOCKS = (0, 1, 3)  # inverted-residual blocks after the downsampling to H/2, H/4, H/8
PRESETS = {
    "nano": dict(width_mult=0.5, depth_mult=0.5, expand=2),
    "small": dict(width_mult=1.0, depth_mult=1.0, expand=4),
    "medium": dict(width_mult=1.5, depth_mult=1.5, expand=4),
}
UPSAMPLE_MODES = ("nearest", "bilinear")


def _round_channels(channels: float, divisor: int = 8) -> int:
    """Channel counts in multiples of 8 map well onto SIMD lanes and NPU tiles."""
    return max(divisor, int(channels + divisor / 2) // divisor * divisor)


def conv_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups),
        nn.ReLU(inplace=True),
    )


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (optionally strided) + ReLU, pointwise 1x1 + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(conv_relu(cin, cin, 3, stride, groups=cin), conv_relu(cin, cout, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + ReLU6, depthwise 3x3 + ReLU6, 1x1 project, add input."""

    def __init__(self, channels: int, expand: int):
        super().__init__()
        hidden = channels * expand
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UpStage(nn.Module):
    """Project ``deep`` to the skip's width, upsample x2, add the skip, then fuse.

    ``deep [N, Cd, h, w]``, ``skip [N, Cs, 2h, 2w]`` -> ``[N, Cs, 2h, 2w]``.
    """

    def __init__(self, deep: int, skip: int, fuse: nn.Module, mode: str):
        super().__init__()
        self.project = nn.Conv2d(deep, skip, 1)
        self.fuse = fuse
        self.mode = mode

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(self.project(deep), scale_factor=2.0, mode=self.mode,
                           **({} if self.mode == "nearest" else {"align_corners": False}))
        return self.fuse(torch.relu(up + skip))


class MobileGenerator(nn.Module):
    """Distillation student generator.

    ``forward(x)``: ``x`` float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]`` with H and W multiples of
    ``model.stride`` (8); returns ``[N, 3, H, W]`` RGB in ``[-1, 1]``.

    Args:
        preset: ``"nano"``, ``"small"`` or ``"medium"``; the fields below override it.
        width_mult: multiplies the base widths (16, 24, 32, 64) at H, H/2, H/4, H/8.
        depth_mult: multiplies the base block counts (0, 1, 4) at H/2, H/4, H/8.
        expand: inverted-residual expansion ratio.
        upsample: ``"bilinear"`` (smoother tone transitions; default) or ``"nearest"``
            (accepted by the oldest NPU delegates).

    ``distill_points``: ``"enc2"`` (encoder ``[N, C2, H/4, W/4]``), ``"trunk"``
    (``[N, C3, H/8, W/8]``) and ``"dec2"`` (decoder ``[N, C2, H/4, W/4]``); the spatial stride
    of each is in ``model.distill_strides``.
    """

    arch_name = "mobile"
    stride = 8

    def __init__(
        self,
        preset: str = "small",
        width_mult: Optional[float] = None,
        depth_mult: Optional[float] = None,
        expand: Optional[int] = None,
        upsample: str = "bilinear",
    ):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"unknown MobileGenerator preset {preset!r}; choose from {sorted(PRESETS)}")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
        settings = dict(PRESETS[preset])
        for key, value in (("width_mult", width_mult), ("depth_mult", depth_mult), ("expand", expand)):
            if value is not None:
                settings[key] = value
        self.config = dict(preset=preset, width_mult=width_mult, depth_mult=depth_mult,
                           expand=expand, upsample=upsample)
        self.resolved = settings  # what was actually built, for logs and `styleforge info`

        c0, c1, c2, c3 = (_round_channels(w * settings["width_mult"]) for w in BASE_WIDTHS)
        b1, b2, b3 = (int(b * settings["depth_mult"] + 0.5) for b in BASE_BLOCKS)
        b3 = max(1, b3)  # the trunk always has at least one block
        t = int(settings["expand"])
        self.widths = (c0, c1, c2, c3)

        def stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
            return nn.Sequential(SeparableConv(cin, cout, stride=2), *(InvertedResidual(cout, t) for _ in range(blocks)))

        self.stem = conv_relu(3, c0, 3)  # [N, c0, H, W]
        self.enc1 = stage(c0, c1, b1)  # [N, c1, H/2, W/2]
        self.enc2 = stage(c1, c2, b2)  # [N, c2, H/4, W/4]
        self.trunk = stage(c2, c3, b3)  # [N, c3, H/8, W/8]
        self.dec2 = UpStage(c3, c2, SeparableConv(c2, c2), upsample)  # [N, c2, H/4, W/4]
        self.dec1 = UpStage(c2, c1, SeparableConv(c1, c1), upsample)  # [N, c1, H/2, W/2]
        self.dec0 = UpStage(c1, c0, SeparableConv(c0, c0), upsample)  # [N, c0, H, W]
        self.head = nn.Conv2d(c0, 3, 1)  # delta, [N, 3, H, W]
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

        self.distill_points = ("enc2", "trunk", "dec2")
        self.distill_strides = {"enc2": 4, "trunk": 8, "dec2": 4}

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"MobileGenerator expects [N, 3, H, W], got shape {tuple(x.shape)}")
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height % self.stride or width % self.stride:
            raise ValueError(
                f"MobileGenerator needs H and W to be multiples of {self.stride}, got {height}x{width}; "
                f"pad or resize the input (e.g. to {height // self.stride * self.stride or self.stride}"
                f"x{width // self.stride * self.stride or self.stride})"
            )

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 3, H, W]`` in ``[-1, 1]`` -> ``[N, 3, H, W]`` in ``[-1, 1]``."""
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            self.check_input(x)  # python-side check; tracing would bake it in with warnings
        s0 = self.stem(x)
        s1 = self.enc1(s0)
        s2 = self.enc2(s1)
        deep = self.trunk(s2)
        y = self.dec2(deep, s2)
        y = self.dec1(y, s1)
        y = self.dec0(y, s0)
        return residual_clip(x + self.head(y), self.training)


def residual_clip(out: Tensor, training: bool) -> Tensor:
    """Clip a global-residual output ``x + delta`` to ``[-1, 1]``.

    In training the clip is straight-through (forward value clipped, gradient the identity's) so
    saturated pixels can still be pulled back into range; eval/export get a plain ``Clip``.
    """
    if training:
        return out + (out.clamp(-1.0, 1.0) - out).detach()
    return out.clamp(-1.0, 1.0)
