"""A history of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN's pool).

The discriminator judges a mix of this step's fakes and fakes the generator made earlier, so it
cannot chase only the generator's latest move (``loss.pool_size``: CycleGAN uses 50; 0, the
default, turns it off). Each image of a batch is, until the pool is full, stored and passed on;
once it is full, with probability 1/2 it replaces a random stored image and the stored one is
judged instead, else it is judged itself. Draws come from the step's ``torch.Generator``, and the
stored images travel in the checkpoint, so a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class ImagePool:
    """``query(images [N, C, H, W], generator) -> [N, C, H, W]``: same shape, dtype and device.

    ``images`` are generated images, detached by the pool (the discriminator's fakes); stored
    images are kept on the device they came from and move to the CPU only in :meth:`state`.
    """

    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: list[Tensor] = []  # each [C, H, W]

    def query(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=generator)) < 0.5:
                k = int(torch.randint(len(self.images), (), generator=generator))
                stored = self.images[k].to(device=image.device, dtype=image.dtype)
                self.images[k] = image.clone()
                out.append(stored)
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> list[Tensor]:
        """The stored images, on the CPU (plain tensors: checkpoints load with ``weights_only``)."""
        return [image.detach().cpu() for image in self.images]

    def load(self, images: list[Tensor]) -> None:
        self.images = [image.clone() for image in images][: self.size]
