"""The design document's noise-to-image DCGAN, made to produce 64x64 images.

The document's generator (Dense -> reshape 8x8x128 -> two stride-2 ConvTranspose blocks ->
Conv 4x4 "same" -> tanh) ends at 32x32. We add one more ConvTranspose(64, k4, s2) + BN +
LeakyReLU block so the output is 64x64, the size the document asks for. Its discriminator is
kept as written and returns logits (the sigmoid lives in the BCE loss).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class DCGANGenerator(nn.Module):
    """Noise -> image generator.

    ``forward(z)``: ``z`` float32 ``[N, latent_dim]`` (standard normal); returns
    ``[N, 3, 64, 64]`` RGB in ``[-1, 1]`` (tanh)::

        Linear(latent_dim -> 128*8*8), reshape                 # [N, 128, 8, 8]
        ConvT(128, k4, s2), BN, LeakyReLU(0.01)                # [N, 128, 16, 16]
        ConvT(64, k4, s2), BN, LeakyReLU(0.01)                 # [N, 64, 32, 32]
        ConvT(64, k4, s2), BN, LeakyReLU(0.01)   (added)       # [N, 64, 64, 64]
        Conv(3, k4, "same"), tanh                              # [N, 3, 64, 64]
    """

    arch_name = "dcgan"

    def __init__(self, latent_dim: int = 100, negative_slope: float = 0.01):
        super().__init__()
        self.config = dict(latent_dim=latent_dim, negative_slope=negative_slope)
        self.latent_dim = latent_dim
        self.image_size = 64
        self.distill_points: tuple[str, ...] = ()  # not an image-to-image model

        def up(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(negative_slope, True),
            ]

        self.project = nn.Linear(latent_dim, 128 * 8 * 8)
        self.body = nn.Sequential(*up(128, 128), *up(128, 64), *up(64, 64))
        # Keras "same" for an even 4x4 kernel pads 1 before and 2 after; done explicitly in forward.
        self.to_rgb = nn.Conv2d(64, 3, 4)

    def forward(self, z: Tensor) -> Tensor:
        """``[N, latent_dim]`` -> ``[N, 3, 64, 64]`` in ``[-1, 1]``."""
        x = self.project(z).view(-1, 128, 8, 8)
        x = self.body(x)  # [N, 64, 64, 64]
        return self.to_rgb(F.pad(x, (1, 2, 1, 2))).tanh()


class DCGANDiscriminator(nn.Module):
    """The document's critic: ``forward(x [N, 3, S, S] in [-1, 1]) -> logits [N, 1]``::

        Conv(64, k4, s2), LeakyReLU(0.2)                       # [N, 64, S/2, S/2]
        Conv(128, k4, s2), BN, LeakyReLU(0.2)                  # [N, 128, S/4, S/4]
        Flatten, Linear(1)
    """

    arch_name = "dcgan"

    def __init__(self, image_size: int = 64, in_channels: int = 3, negative_slope: float = 0.2):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.config = dict(image_size=image_size, in_channels=in_channels, negative_slope=negative_slope)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 4, stride=2, padding=1),
            nn.LeakyReLU(negative_slope, True),
            nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(negative_slope, True),
        )
        self.classify = nn.Linear(128 * (image_size // 4) ** 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 3, S, S]`` in ``[-1, 1]`` -> logits ``[N, 1]``."""
        return self.classify(self.features(x).flatten(1))
