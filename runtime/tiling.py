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
from typing import Callable, Iterator, Optional

import numpy as np

# run_tile: uint8 [1, th, tw, 3] -> float32 [1, th, tw, 3] pixel values in [0, 255]
TileFn = Callable[[np.ndarray], np.ndarray]


def default_overlap(tile: int) -> int:
    """Overlap used when none is given: an eighth of the tile, at least 16 px (receptive field edge)."""
    return max(16, tile // 8)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap.

    Starts are spread evenly, so every overlap is about the same (never less than ``overlap``).
    """
    if length <= tile:
        return [0]
    overlap = min(max(0, overlap), tile - 1)
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


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


def pad_to(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad ``[H, W, C]`` at the bottom/right up to ``height`` x ``width`` (reflect; edge for 1-px sides)."""
    h, w = pixels.shape[:2]
    if h >= height and w >= width:
        return pixels
    pad = ((0, max(0, height - h)), (0, max(0, width - w)), (0, 0))
    mode = "reflect" if h > 1 and w > 1 else "edge"
    return np.pad(pixels, pad, mode=mode)


def count_tiles(height: int, width: int, tile: tuple[int, int], overlap: int) -> int:
    th, tw = tile
    return len(tile_starts(max(height, th), th, overlap)) * len(tile_starts(max(width, tw), tw, overlap))


def stylize_tiled(
    pixels: np.ndarray,
    run_tile: TileFn,
    tile: tuple[int, int],
    overlap: Optional[int] = None,
    strength: float = 1.0,
    on_tile: Optional[Callable[[], None]] = None,
) -> np.ndarray:
    """Apply ``run_tile`` to uint8 ``[H, W, 3]`` ``pixels`` of any size; returns uint8 ``[H, W, 3]``.

    ``tile`` is the model's (height, width). ``strength`` in [0, 1] blends the result with the
    original pixels (0 returns them unchanged). ``on_tile`` is called after each tile (progress).
    """
    height, width = pixels.shape[:2]
    th, tw = tile
    if overlap is None:
        overlap = default_overlap(min(th, tw))
    source = pad_to(pixels, th, tw)  # small images: a padded copy (small by definition)
    ph, pw = source.shape[:2]
    ys, xs = tile_starts(ph, th, overlap), tile_starts(pw, tw, overlap)
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


def iter_tiles(height: int, width: int, tile: tuple[int, int], overlap: int) -> Iterator[tuple[int, int]]:
    """(y, x) tile origins in processing order (for tools that want to show or count them)."""
    th, tw = tile
    for y in tile_starts(max(height, th), th, overlap):
        for x in tile_starts(max(width, tw), tw, overlap):
            yield y, x
