"""Refuse degenerate generators before distilling or exporting them (``--allow-degenerate`` overrides).

A run trained by ``styleforge train`` carries its verdict (``RUN/verdict.json``, see
:mod:`styleforge.verdict`); older runs, ResNet runs and bring-your-own generators are judged here on
the photos at hand: the generator is run on a few of them and its outputs are checked for
collapse and lost structure (the do-nothing check needs the style folder, so it is skipped).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from styleforge.runtime.imageio import open_image, to_uint8_array
from styleforge.train.whole_photo import stylize_array
from styleforge.verdict import DegenerateModelError, Verdict, assess, read_verdict

CHECK_PHOTOS = 8  # photos the generator is run on when no stored verdict exists
CHECK_SHORT_SIDE = 256


@torch.no_grad()
def run_on(generator: nn.Module, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """uint8 HWC in -> uint8 HWC out, one photo at a time through the trainer's whole-photo runner
    (:func:`~styleforge.train.whole_photo.stylize_array`: padded to the generator's stride), on the
    generator's device, in eval mode."""
    param = next(generator.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = generator.training
    generator.eval()
    out = [stylize_array(generator, img, device) for img in images]
    generator.train(was_training)
    return out


def load_photos(photos, limit: int = CHECK_PHOTOS, short_side: int = CHECK_SHORT_SIDE) -> list[np.ndarray]:
    """Up to ``limit`` photos (paths, uint8 HWC arrays or PIL images) as uint8 HWC RGB, shrunk so
    the short side is at most ``short_side``."""
    from PIL import Image


    out = []
    for item in list(photos)[:limit]:
        if isinstance(item, np.ndarray):
            img = Image.fromarray(item)
        elif isinstance(item, Image.Image):
            img = item.convert("RGB")
        else:
            img = open_image(item).rgb
        scale = short_side / min(img.size)
        if scale < 1.0:
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.LANCZOS)
        out.append(to_uint8_array(img))
    return out


def check_generator(
    generator: nn.Module,
    photos: Sequence[Union[str, Path, np.ndarray]],
    *,
    run: Optional[Union[str, Path]] = None,
    allow: bool = False,
    where: str = "model",
) -> Verdict:
    """The stored verdict of ``run`` if it has one, else a fresh one on ``photos``.

    Raises :class:`~styleforge.verdict.DegenerateModelError` for a degenerate model unless
    ``allow``, in which case a warning goes to stderr.
    """
    verdict = read_verdict(Path(run)) if run is not None and Path(run).exists() else None
    if verdict is None:
        images = load_photos(photos)
        if len(images) < 2:
            return Verdict(1.0, 1.0, 0.0, None, len(images), notes=("fewer than 2 photos: not checked",))
        verdict = assess(images, run_on(generator, images))
    if not verdict.ok:
        if not allow:
            raise DegenerateModelError(verdict, where)
        print(f"warning: {verdict.message(where)} (--allow-degenerate given: going on)", file=sys.stderr)
    return verdict
