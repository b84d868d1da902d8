"""Refuse degenerate generators before distilling or exporting them (``--allow-degenerate`` overrides).

A run trained by ``styleforge train`` carries its verdict (``RUN/verdict.json``, see
:mod:`styleforge.photo.verdict`), bound to the sha256 of the weights file it judged. That verdict is
trusted only while the file is unchanged: a run whose weights changed after ``train`` (or whose
verdict records no hash: older runs) is judged again here, says so on one line, and gets the fresh
verdict written back. Runs without a verdict, ResNet runs and bring-your-own generators are judged
on the photos at hand: the generator is run on a few of them and its outputs are checked for
collapse and lost structure (the do-nothing check needs the style folder, so it is skipped).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from styleforge.photo.photos import load_photos
from styleforge.photo.verdict import (
    DegenerateModelError,
    Verdict,
    assess,
    bound_verdict,
    write_verdict,
)
from styleforge.train.whole_photo import stylize_array

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


def check_generator(
    generator: nn.Module,
    photos: Sequence[Union[str, Path, np.ndarray]],
    *,
    run: Optional[Union[str, Path]] = None,
    weights_file: Optional[Union[str, Path]] = None,
    allow: bool = False,
    where: str = "model",
) -> Verdict:
    """The stored verdict of ``run`` if it judged ``weights_file`` as it is now, else a fresh one
    on ``photos``.

    ``weights_file``: the ``.safetensors`` file ``generator`` was loaded from (None: ``run`` itself
    when it is a file). When ``run`` has a verdict that no longer matches (weights changed, or no
    hash recorded), one line on stdout says it was re-judged and the fresh verdict replaces
    ``RUN/verdict.json``, bound to the file. Raises :class:`~styleforge.photo.verdict.DegenerateModelError`
    for a degenerate model unless ``allow``, in which case a warning goes to stderr.
    """
    stored = None
    if run is not None and Path(run).exists():
        if weights_file is None and Path(run).is_file():
            weights_file = Path(run)
        stored = bound_verdict(Path(run), weights_file)
    verdict = stored.verdict if stored is not None else None
    if verdict is None:
        images = load_photos(photos, CHECK_PHOTOS, CHECK_SHORT_SIDE)
        if len(images) < 2:
            return Verdict(1.0, 1.0, 0.0, None, len(images), notes=("fewer than 2 photos: not checked",))
        verdict = assess(images, run_on(generator, images))
        if stored is not None and stored.stale:
            notes = (*verdict.notes, f"re-judged on {len(images)} photos: {stored.stale}")
            verdict = Verdict(verdict.diversity, verdict.structure, verdict.change_levels,
                              verdict.expected_change_levels, verdict.images, verdict.failed, notes)
            print(f"{where}: re-judged on {len(images)} photos ({stored.stale}): "
                  f"{'passed' if verdict.ok else 'degenerate'}", flush=True)
            if weights_file is not None and Path(weights_file).is_file():
                try:
                    write_verdict(stored.run_dir, verdict, weights=[weights_file],
                                  validation=f"re-judged on {len(images)} photos at hand (collapse and structure only)")
                except OSError as err:  # a read-only run: the fresh verdict still decides
                    print(f"{where}: could not write the fresh verdict ({err.strerror or err})", file=sys.stderr)
    if not verdict.ok:
        if not allow:
            raise DegenerateModelError(verdict, where)
        print(f"warning: {verdict.message(where)} (--allow-degenerate given: going on)", file=sys.stderr)
    return verdict
