"""PatchGAN discriminator (pix2pix / CycleGAN ``NLayerDiscriminator``).

With ``n_layers=3`` each output logit sees a 70x70 patch of the input. Layout::

    conv 4x4 s2 (C -> ndf), LeakyReLU 0.2                      # [N, ndf, H/2, W/2]
    (n_layers - 1) x conv 4x4 s2, norm, LeakyReLU 0.2          # width doubles, capped at 8 ndf
    conv 4x4 s1, norm, LeakyReLU 0.2
    conv 4x4 s1 (-> 1)                                         # [N, 1, H/8 - 2, W/8 - 2] logits
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from styleforge.train.models.resnet import NORMS, norm_layer


class PatchGANDiscriminator(nn.Module):
    """Patch-wise real/fake critic.

    ``forward(x)``: ``x`` float32 ``[N, in_channels, H, W]`` in ``[-1, 1]`` (``in_channels=6``
    for a conditional pix2pix critic fed ``cat(input, output)``); returns raw logits
    ``[N, 1, h, w]`` (for 256x256 and ``n_layers=3``: 30x30). No sigmoid: the loss applies it.

    Args:
        ndf: width of the first layer.
        n_layers: number of stride-2 layers (3 -> 70x70 receptive field).
        norm: ``"instance"`` (CycleGAN default), ``"batch"`` or ``"none"`` (use ``"none"`` with
            WGAN-GP or R1, whose penalties are per-sample and break with batch statistics).
        spectral_norm: wrap every conv in spectral normalisation (SNGAN-style Lipschitz control).
    """

    arch_name = "patchgan"

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.config = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm,
                           spectral_norm=spectral_norm)
        use_bias = norm != "batch"

        def conv(cin: int, cout: int, stride: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=bias)
            return _spectral_norm(layer) if spectral_norm else layer

        layers = [conv(in_channels, ndf, 2), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [conv(width, out, stride, use_bias), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            width = out
        layers.append(conv(width, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C, H, W]`` in ``[-1, 1]`` -> logits ``[N, 1, h, w]``."""
        return self.model(x)
