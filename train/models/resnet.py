"""The teacher: the CycleGAN / pix2pix ResNet generator (Johnson et al. 2016, Zhu et al. 2017).

Layout (``ngf=64, n_blocks=9`` is CycleGAN's ``resnet_9blocks``, 11.38 M parameters,
49.6 GMAC exact / 56.8 GMAC in GAN Compression's convention at 256x256)::

    reflect-pad 3, conv 7x7 (3 -> ngf), norm, ReLU            # [N, ngf,   H,   W]
    conv 3x3 s2 (ngf -> 2 ngf), norm, ReLU                     # [N, 2ngf,  H/2, W/2]
    conv 3x3 s2 (2 ngf -> 4 ngf), norm, ReLU                   # [N, 4ngf,  H/4, W/4]
    n_blocks x residual block (reflect-pad, conv 3x3, norm, ReLU, reflect-pad, conv 3x3, norm)
    convT 3x3 s2 (4 ngf -> 2 ngf), norm, ReLU                  # [N, 2ngf,  H/2, W/2]
    convT 3x3 s2 (2 ngf -> ngf), norm, ReLU                    # [N, ngf,   H,   W]
    reflect-pad 3, conv 7x7 (ngf -> 3), tanh                   # [N, 3,     H,   W]

With ``residual=True`` the head has no tanh: it predicts a correction and the output is
``clip(x + delta, -1, 1)`` (as in :class:`~styleforge.train.models.mobile.MobileGenerator`), with
the last conv zero-initialised so the untrained generator is the identity. Photo looks are mostly
tone/colour shifts of the input; starting from the identity, an unpaired (CycleGAN) teacher only
has to learn the shift instead of first re-learning to reproduce the photo, which on a small CPU
budget is the difference between beating and losing to the untouched input.

H and W must be multiples of 4 (``model.stride``) for the output to match the input size.
"""

from __future__ import annotations

from torch import Tensor, nn

from styleforge.train.models.mobile import residual_clip

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """CycleGAN's norms: InstanceNorm without affine/running stats, BatchNorm, or nothing."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` with reflection padding. ``[N,C,H,W] -> [N,C,H,W]``."""

    def __init__(self, channels: int, norm: str, use_bias: bool, dropout: float):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=use_bias),
            norm_layer(norm, channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=use_bias),
            norm_layer(norm, channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator (the teacher).

    ``forward(x)``: ``x`` float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]``, H and W multiples of 4;
    returns ``[N, 3, H, W]`` RGB in ``[-1, 1]`` (tanh, or ``clip(x + delta)`` if ``residual``).

    Args:
        ngf: width of the first layer; the trunk has ``4 * ngf`` channels.
        n_blocks: number of residual blocks in the trunk (depth).
        norm: ``"instance"`` (CycleGAN default), ``"batch"`` or ``"none"``.
        dropout: dropout probability inside residual blocks (pix2pix uses 0.5; CycleGAN 0).
        in_channels, out_channels: image channels.
        residual: predict ``delta`` and return ``clip(x + delta, -1, 1)``, identity at init
            (needs ``in_channels == out_channels``). False keeps the exact CycleGAN network.

    ``distill_points`` name three trunk-resolution ``[N, 4 ngf, H/4, W/4]`` features: the end
    of the downsampling stem, the middle and the end of the residual trunk.
    """

    arch_name = "resnet"
    stride = 4

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        in_channels: int = 3,
        out_channels: int = 3,
        residual: bool = False,
    ):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        if residual and in_channels != out_channels:
            raise ValueError(f"residual=True needs in_channels == out_channels, got {in_channels} and {out_channels}")
        self.config = dict(
            ngf=ngf, n_blocks=n_blocks, norm=norm, dropout=dropout,
            in_channels=in_channels, out_channels=out_channels, residual=residual,
        )
        self.residual = residual
        # With BatchNorm the conv bias is redundant; InstanceNorm(affine=False) needs it.
        use_bias = norm != "batch"

        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        )
        down = []
        for i in range(2):
            c = ngf * 2**i
            down += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=use_bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        self.down = nn.Sequential(*down)

        width = 4 * ngf
        self.trunk = nn.Sequential(*(ResnetBlock(width, norm, use_bias, dropout) for _ in range(n_blocks)))

        up = []
        for i in range(2):
            c = width // 2**i
            up += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                norm_layer(norm, c // 2),
                nn.ReLU(True),
            ]
        self.up = nn.Sequential(*up)
        if residual:
            last = nn.Conv2d(ngf, out_channels, 7)  # delta; zero so the untrained model is the identity
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.head = nn.Sequential(nn.ReflectionPad2d(3), last)
        else:
            self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())

        self.distill_points = ("down", f"trunk.{n_blocks // 2}", f"trunk.{n_blocks - 1}")

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 3, H, W]`` in ``[-1, 1]`` -> ``[N, 3, H, W]`` in ``[-1, 1]``."""
        y = self.down(self.stem(x))  # [N, 4ngf, H/4, W/4]
        y = self.head(self.up(self.trunk(y)))
        if self.residual:
            return residual_clip(x + y, self.training)
        return y
