"""Any image size through a fixed-size model: pad small images, blend overlapping tiles of big ones.

Tiles overlap by at least ``overlap`` pixels and are blended with raised-cosine (Hann) ramps
over each overlap, accumulated in float32 together with a weight sum that normalises them, so
there is no visible seam and no tile edge (where the network sees zero padding) dominates.

Memory stays bounded: accumulators cover one band of tile rows at a time (``[tile_h, W, 3]``
float32), and every finished band is rounded straight into the uint8 output. A 24 MP photo
never exists as a float array.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

# run_tile: uint8 [1, th, tw, 3] -> float32 [1, th, tw, 3] pixel values in [0, 255]
TileFn = Callable[[np.ndarray], np.ndarray]


def default_overlap(tile: int) -> int:
    """Overlap used when none is given: an eighth of the tile, at least 16 px (receptive field edge)."""
    return max(16, tile // 8)


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap.

    Starts are spread evenly (every overlap about the same, never less than ``overlap``) and are
    multiples of ``align``: a network that downsamples by its stride then sees the same sampling
    grid in every tile as in a whole-image run, so tiles agree away from their borders.
    ``length`` and ``tile`` must be multiples of ``align`` (pad the image first).
    """
    if length <= tile:
        return [0]
    if length % align or tile % align:
        raise ValueError(f"length {length} and tile {tile} must be multiples of align {align}")
    overlap = min(max(0, overlap), tile - align)
    # A step that is a multiple of align keeps every overlap >= overlap after aligning down.
    step = max(align, (tile - overlap) // align * align)
    count = math.ceil((length - tile) / step) + 1
    last = length - tile
    return [last * i // (count - 1) // align * align for i in range(count - 1)] + [last]


def ramp_weights(tile: int, before: int, after: int) -> np.ndarray:
    """1-D float32 window: raised-cosine ramp over the first ``before`` and last ``after`` pixels.

    Weights are strictly positive (the ramp is sampled at pixel centres), so the weight sum of
    any covered pixel is never zero.
    """
    w = np.ones(tile, dtype=np.float32)
    if before > 0:
        w[:before] *= 0.5 - 0.5 * np.cos(np.pi * (np.arange(before, dtype=np.float32) + 0.5) / before)
    if after > 0:
        w[tile - after :] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(after, dtype=np.float32) + 0.5) / after)
    return w


def _windows(starts: list[int], tile: int) -> list[np.ndarray]:
    out = []
    for i, s in enumerate(starts):
        before = starts[i - 1] + tile - s if i > 0 else 0
        after = s + tile - starts[i + 1] if i + 1 < len(starts) else 0
        out.append(ramp_weights(tile, before, after))
    return out


def _ceil_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_to(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad ``[H, W, C]`` at the bottom/right up to ``height`` x ``width`` (reflect; edge for 1-px sides)."""
    h, w = pixels.shape[:2]
    if h >= height and w >= width:
        return pixels
    pad = ((0, max(0, height - h)), (0, max(0, width - w)), (0, 0))
    mode = "reflect" if h > 1 and w > 1 else "edge"
    return np.pad(pixels, pad, mode=mode)


def count_tiles(height: int, width: int, tile: tuple[int, int], overlap: int, align: int = 1) -> int:
    """How many tiles :func:`stylize_tiled` runs for an image of this size."""
    th, tw = tile
    ph, pw = max(th, _ceil_to(height, align)), max(tw, _ceil_to(width, align))
    return len(tile_starts(ph, th, overlap, align)) * len(tile_starts(pw, tw, overlap, align))


def stylize_tiled(
    pixels: np.ndarray,
    run_tile: TileFn,
    tile: tuple[int, int],
    overlap: Optional[int] = None,
    strength: float = 1.0,
    on_tile: Optional[Callable[[], None]] = None,
    align: int = 1,
) -> np.ndarray:
    """Apply ``run_tile`` to uint8 ``[H, W, 3]`` ``pixels`` of any size; returns uint8 ``[H, W, 3]``.

    ``tile`` is the model's (height, width). ``strength`` in [0, 1] blends the result with the
    original pixels (0 returns them unchanged). ``on_tile`` is called after each tile (progress).
    ``align`` is the model's stride: the image is padded to a multiple of it and tiles start on
    multiples of it (``tile`` must be a multiple too).
    """
    height, width = pixels.shape[:2]
    th, tw = tile
    if overlap is None:
        overlap = default_overlap(min(th, tw))
    # Pad (bottom/right) up to the tile size and a stride multiple. This copies the image only
    # when its size is not already a multiple of the stride; the copy is uint8.
    source = pad_to(pixels, max(th, _ceil_to(height, align)), max(tw, _ceil_to(width, align)))
    ph, pw = source.shape[:2]
    ys, xs = tile_starts(ph, th, overlap, align), tile_starts(pw, tw, overlap, align)
    wy, wx = _windows(ys, th), _windows(xs, tw)
    output = np.empty((height, width, 3), dtype=np.uint8)

    acc = np.zeros((th, pw, 3), dtype=np.float32)  # band of rows [band_top, band_top + th)
    wsum = np.zeros((th, pw), dtype=np.float32)
    for row, y in enumerate(ys):
        for col, x in enumerate(xs):
            styled = run_tile(np.ascontiguousarray(source[None, y : y + th, x : x + tw]))[0]
            weight = wy[row][:, None] * wx[col][None, :]
            acc[:, x : x + tw] += styled * weight[..., None]
            wsum[:, x : x + tw] += weight
            if on_tile is not None:
                on_tile()
        # Rows up to the next band's top are final: normalise, blend, round, emit.
        done = (ys[row + 1] - y) if row + 1 < len(ys) else th
        _emit(output, pixels, acc[:done], wsum[:done], y, strength)
        if row + 1 < len(ys):
            keep = th - done
            acc[:keep] = acc[done:]
            wsum[:keep] = wsum[done:]
            acc[keep:] = 0.0
            wsum[keep:] = 0.0
    return output


def _emit(output: np.ndarray, original: np.ndarray, acc: np.ndarray, wsum: np.ndarray, top: int, strength: float) -> None:
    height, width = output.shape[:2]
    rows = min(acc.shape[0], height - top)
    if rows <= 0:
        return  # padding rows below a small image
    styled = acc[:rows, :width] / wsum[:rows, :width, None]
    if strength < 1.0:
        base = original[top : top + rows].astype(np.float32)
        styled = base + np.float32(strength) * (styled - base)
    output[top : top + rows] = np.clip(np.rint(styled), 0, 255).astype(np.uint8)
