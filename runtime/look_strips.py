"""A look recipe at full resolution in horizontal strips: fast, bounded memory, and the same output
whatever the strip height.

numpy only. :class:`RecipeRenderer` runs a :class:`~styleforge.runtime.recipe.Recipe` on uint8,
uint16 or float32 ``[H, W, 3]`` RGB and returns the same dtype and shape. It computes what
:func:`styleforge.runtime.look_ops.apply_recipe` computes on the whole photo (and what the torch
twin computes), but never holds more than a few strips of float pixels:

- **Whole-photo quantities once per photo, before the strips that use them.** A blurred field
  (clarity's blurred luma, bloom's blurred highlights, smooth_skin's guided-filter fields,
  detail's three bands, sharpen's blur, grain's noise) is built in one pass over the strips: each
  strip computes the field's source at full resolution from the operator's input and reduces it
  by 2x2 means itself to pyramid level <= :data:`STRIP_LEVEL` (strips are multiples of
  ``2**STRIP_LEVEL`` rows, so a strip's means are the photo's); the rest of the pyramid and the
  Gaussian run on the small image (:mod:`~styleforge.runtime.look_blur`), and each later strip
  reads its rows back by bilinear upsampling. A blur too small for the pyramid (level 0) keeps its
  source as one full-resolution plane and blurs the rows a strip asks for (reflect at the photo's
  edges). Vignette geometry is a per-column and a per-row term; grain's mean and standard
  deviation come from a fixed-block pass over its field.
- **One pass per stage.** Pass ``k`` runs the steps before the operator that needs a field
  strip by strip (their own fields are ready), then the final pass runs every step, clips, blends
  by ``strength`` and quantises. A recipe of colour + clarity + bloom + vignette is three passes.
- **Threads.** Strips of a pass go to a thread pool (numpy releases the GIL in its loops); every
  strip is computed from the same per-photo quantities, row by row, so the output does not depend
  on the strip height or the thread count (tested bit for bit).

**The colour LUT.** ``exact`` mode (float input, 16-bit input) interpolates in float32, as
:func:`~styleforge.runtime.lut.trilinear` does. ``table`` mode (uint8 input) rounds the LUT's
input to 8 bits and gathers the output from a 256^3 table of 16-bit results
(:func:`~styleforge.runtime.lut.packed_table_u16`): exact for a LUT that reads the photo's own
pixels, within half an 8-bit level of its input elsewhere (the error bound is stated and tested
in ``tests/runtime/test_look_strips.py``). The 16-bit results of the last such LUT that two or
more passes run through are kept (6 bytes a pixel, a buffer reused from photo to photo), so the
passes after the first start from them instead of recomputing the steps before.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from styleforge.runtime import look_ops
from styleforge.runtime.look_blur import (
    LUMA,
    _blur_axis,
    bilinear_taps,
    blur_separable,
    downsample2,
    gaussian_kernel,
    kernel_radius,
    level_sigma,
    pyramid_level,
)
from styleforge.runtime.lut import Lut3D, default_threads, packed_table_u16, trilinear

STRIP_LEVEL = 3  # strips are multiples of 2**3 rows and reduce their fields to level <= 3 themselves
STRIP_PIXELS = 1 << 17  # ~128k pixels a strip: a few float32 strips stay in L2 per core
STATS_ROWS = 64  # grain's mean/std sum its field in fixed blocks of rows: independent of the strips

_F1 = np.float32(1.0)


def _f(value: float) -> np.float32:
    return np.float32(value)


# ------------------------------------------------------------------------------ planes

# Inside the renderer a strip is float32 [3, r, W]: one contiguous plane per channel, so every
# per-channel operation runs over contiguous memory. The arithmetic is look_ops' element for element.


def luma3(x: np.ndarray) -> np.ndarray:
    """Rec.709 luma of planes ``[3, r, W]`` -> ``[r, W]`` (:func:`~styleforge.runtime.look_blur.luma`'s sums)."""
    return x[0] * _f(LUMA[0]) + x[1] * _f(LUMA[1]) + x[2] * _f(LUMA[2])


# ------------------------------------------------------------------------------ a blurred field


class Field:
    """A whole-photo Gaussian blur (``sigma_frac`` of the short side) of a ``channels``-plane source
    that strips compute: :meth:`put` each strip's source ``[C, r, W]`` (any order, disjoint rows
    starting at multiples of ``2**STRIP_LEVEL``), :meth:`finish` once, then :meth:`rows`.

    The numbers are :func:`~styleforge.runtime.look_blur.gaussian_blur`'s, element for element:
    the same 2x2 means, the same kernel at the same level, the same bilinear taps.
    """

    def __init__(self, sigma_frac: float, channels: int, height: int, width: int):
        self.height, self.width, self.channels = height, width, channels
        self.sigma_px = float(sigma_frac) * min(height, width)
        self.level = pyramid_level(self.sigma_px, height, width)
        self.sigma = level_sigma(self.sigma_px, self.level)
        self.collect = min(self.level, STRIP_LEVEL)  # the level strips reduce their source to
        h, w = height, width
        for _ in range(self.collect):
            h, w = (h + 1) // 2, (w + 1) // 2
        self.buffer: Optional[np.ndarray] = np.empty((channels, h, w), dtype=np.float32)
        self.small: Optional[np.ndarray] = None

    def put(self, y0: int, source: np.ndarray) -> None:
        small = source
        for _ in range(self.collect):
            small = downsample2(small, axis=1)
        top = y0 >> self.collect
        self.buffer[:, top:top + small.shape[1]] = small

    def finish(self) -> None:
        small = self.buffer
        for _ in range(self.level - self.collect):
            small = downsample2(small, axis=1)
        self.buffer = None
        if self.level == 0:  # blurred per strip (rows need their neighbours): keep the plane
            self.radius_y = kernel_radius(self.sigma, self.height)
            self.kernel_y = gaussian_kernel(self.sigma, self.radius_y)
            self.small = small
            return
        hwc = np.moveaxis(small, 0, -1)  # the reference blur's layout; the arithmetic is per element
        self.small = np.ascontiguousarray(np.moveaxis(blur_separable(hwc, self.sigma), -1, 0))
        factor = 1.0 / 2.0**self.level
        self.taps_y = bilinear_taps(self.height, self.small.shape[1], factor)
        self.taps_x = bilinear_taps(self.width, self.small.shape[2], factor)

    def map_level(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        """After :meth:`finish` (level >= 1): replace the blurred level by ``fn`` of it, ``[h, w, C]``
        -> ``[h, w, C']`` (the reference's layout); :meth:`rows` then upsamples that."""
        hwc = np.moveaxis(self.small, 0, -1)
        self.small = np.ascontiguousarray(np.moveaxis(fn(hwc), -1, 0))

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """The blurred field's rows ``[y0, y1)`` at full resolution: float32 ``[C, r, W]``."""
        if self.level == 0:
            return self._rows_level0(y0, y1)
        i0, i1, t = (v[y0:y1] for v in self.taps_y)
        a0 = self.small[:, i0]
        a = a0 + t[None, :, None] * (self.small[:, i1] - a0)  # [C, r, w]: bilinear_resize's first axis
        return _upsample_columns(a, self.taps_x, 2**self.level, self.width)

    def _rows_level0(self, y0: int, y1: int) -> np.ndarray:
        plane, r, n = self.small, self.radius_y, y1 - y0
        if r == 0:
            rows = plane[:, y0:y1].copy()
        else:  # _blur_axis(axis=0) for these rows: reflect-padded neighbours, taps summed in order
            index = np.abs(np.arange(y0 - r, y1 + r))
            index = np.where(index >= self.height, 2 * (self.height - 1) - index, index)
            padded = plane[:, index]
            rows = np.zeros((plane.shape[0], n, self.width), dtype=np.float32)
            for tap, weight in enumerate(self.kernel_y):
                rows += weight * padded[:, tap:tap + n]
        return np.ascontiguousarray(np.moveaxis(_blur_axis(np.moveaxis(rows, 0, -1), self.sigma, 1), -1, 0))


def _upsample_columns(a: np.ndarray, taps: tuple[np.ndarray, np.ndarray, np.ndarray], factor: int,
                      width: int) -> np.ndarray:
    """``a[..., i0] + t * (a[..., i1] - a[..., i0])`` of ``[C, r, w]`` -> ``[C, r, width]``
    (:func:`~styleforge.runtime.look_blur.bilinear_resize`'s second axis); the regular middle (each
    ``factor`` output columns share a pair of input columns, with the same ``t``) by broadcasting
    instead of gathers, the few edge columns by the gather."""
    i0, i1, t = taps
    c, r, n = a.shape
    out = np.empty((c, r, width), dtype=np.float32)
    half = factor // 2
    groups = max(0, min(n - 1, (width - half) // factor))
    edges = np.r_[np.arange(min(half, width)), np.arange(half + groups * factor, width)]
    if len(edges):
        a0 = a[..., i0[edges]]
        out[..., edges] = a0 + t[edges] * (a[..., i1[edges]] - a0)
    if groups:
        s0, s1, s2 = out.strides
        middle = np.lib.stride_tricks.as_strided(out[..., half:], (c, r, groups, factor), (s0, s1, factor * s2, s2))
        np.multiply((a[..., 1:groups + 1] - a[..., :groups])[..., None], t[half:half + factor], out=middle)
        middle += a[..., :groups, None]
    return out


# ------------------------------------------------------------------------------ the operators


class _Op:
    """One recipe step on strips ``[3, r, W]``. ``stages``: lists of :class:`Field` built one pass
    each, in order (a stage's sources may read the fields before it); ``needs_input``: whether the
    sources read the step's input (grain's noise does not)."""

    stages: Sequence[Sequence[Field]] = ()
    needs_input = True

    def sources(self, stage: int, x: Optional[np.ndarray], y0: int, y1: int) -> list[np.ndarray]:
        raise NotImplementedError

    def finish(self, renderer: RecipeRenderer) -> None:
        """After the last stage: whole-photo statistics of the fields, if the op has any."""

    def apply(self, x: np.ndarray, y0: int, y1: int) -> np.ndarray:
        raise NotImplementedError


class _Clarity(_Op):
    def __init__(self, h: int, w: int, amount: float, radius: float):
        self.amount = _f(amount)
        self.stages = [[Field(radius, 1, h, w)]]

    def sources(self, stage, x, y0, y1):
        return [luma3(x)[None]]

    def apply(self, x, y0, y1):
        lum = luma3(x)
        base = self.stages[0][0].rows(y0, y1)[0]
        x += self.amount * look_ops.midtones(base) * (lum - base)
        return x


class _Detail(_Op):
    def __init__(self, h: int, w: int, fine: float, medium: float, coarse: float):
        self.gains = (_f(fine), _f(medium), _f(coarse))
        self.stages = [[Field(sigma, 1, h, w) for sigma in look_ops.DETAIL_BANDS]]

    def sources(self, stage, x, y0, y1):
        lum = luma3(x)[None]
        return [lum, lum, lum]

    def apply(self, x, y0, y1):
        lum = luma3(x)
        b0, b1, b2 = (f.rows(y0, y1)[0] for f in self.stages[0])
        fine, medium, coarse = self.gains
        x += fine * (lum - b0) + medium * (b0 - b1) + coarse * (b1 - b2)
        return x


class _SmoothSkin(_Op):
    """The fast guided filter (:func:`~styleforge.runtime.look_ops.smooth_skin`). At level >= 1 one
    stage: the field of ``[L, L^2]`` is blurred at its level, :meth:`finish` turns that small image
    into the blurred ``[r, m r]`` (whole-photo quantities, once) and each strip upsamples its rows.
    At level 0 the statistics are full resolution, so two stages: ``[L, L^2]``, then ``[r, m r]``
    from its rows."""

    def __init__(self, h: int, w: int, amount: float, radius: float, edge: float):
        self.amount, self.eps = _f(amount), _f(edge) * _f(edge)
        moments = Field(radius, 2, h, w)
        self.stages = [[moments]] if moments.level else [[moments], [Field(radius, 2, h, w)]]

    def sources(self, stage, x, y0, y1):
        if stage == 0:
            lum = luma3(x)
            return [np.stack([lum, lum * lum])]
        mean, second = self.stages[0][0].rows(y0, y1)
        return [np.stack(look_ops.guided_terms(mean, second, self.eps))]

    def finish(self, renderer):
        field = self.stages[0][0]
        if field.level:
            field.map_level(lambda hwc: blur_separable(
                np.stack(look_ops.guided_terms(hwc[..., 0], hwc[..., 1], self.eps), axis=-1), field.sigma))

    def apply(self, x, y0, y1):
        r, mr = self.stages[-1][0].rows(y0, y1)
        r *= luma3(x)
        mr -= r
        mr *= self.amount
        x += mr
        return x


class _Sharpen(_Op):
    def __init__(self, h: int, w: int, amount: float, radius: float):
        self.amount = _f(amount)
        self.stages = [[Field(radius, 1, h, w)]]

    def sources(self, stage, x, y0, y1):
        return [luma3(x)[None]]

    def apply(self, x, y0, y1):
        x += self.amount * (luma3(x) - self.stages[0][0].rows(y0, y1)[0])
        return x


class _Bloom(_Op):
    def __init__(self, h: int, w: int, threshold: float, radius: float, strength: float, r: float = 1.0,
                 g: float = 1.0, b: float = 1.0):
        self.threshold = _f(threshold)
        # strength * tint, as look_ops.bloom groups it: (glow * tint) * strength rounds alike per channel
        self.tint, self.strength = np.array([r, g, b], dtype=np.float32).reshape(3, 1, 1), _f(strength)
        self.stages = [[Field(radius, 3, h, w)]]

    def sources(self, stage, x, y0, y1):
        lum = np.clip(luma3(x), 0.0, 1.0)
        gate = _F1 / (_F1 + np.exp(-(lum - self.threshold) / _f(look_ops.BLOOM_KNEE)))
        return [np.clip(x, 0.0, 1.0) * gate]

    def apply(self, x, y0, y1):
        glow = self.stages[0][0].rows(y0, y1)
        glow *= self.tint
        glow *= self.strength  # (strength * glow) * (1 - x), as look_ops.bloom groups it
        glow *= _F1 - x
        x += glow
        return x


class _Vignette(_Op):
    """Geometry once per photo: ``|dx / axis_x| ** p`` per column and ``|dy / axis_y| ** p`` per row."""

    def __init__(self, h: int, w: int, amount: float, **shape: float):
        self.terms = look_ops.vignette_terms(h, w, **shape)
        self.darken, self.lighten = _f(min(amount, 0.0)), _f(max(amount, 0.0))

    def apply(self, x, y0, y1):
        cols, rows, *rest = self.terms
        weight = look_ops.vignette_weight(cols, rows[y0:y1], *rest)
        out = x * (_F1 + self.darken * weight) if self.darken else x
        if self.lighten:  # a zero term adds exactly nothing: skipped
            out = out + self.lighten * weight * (_F1 - x)
        return out


class _Fade(_Op):
    def __init__(self, h: int, w: int, amount: float, r: float, g: float, b: float):
        self.lift = (_f(amount) * np.asarray([r, g, b], dtype=np.float32))[:, None, None]

    def apply(self, x, y0, y1):
        return x + self.lift * (_F1 - x)


class _Grain(_Op):
    """The noise grid, bilinear to pixels strip by strip (it reads no input), blurred as a field,
    then normalised by its whole-photo mean and standard deviation (float64 sums, fixed blocks)."""

    needs_input = False

    def __init__(self, h: int, w: int, amount: float, size: float, luma_dependence: float, seed: int = 0):
        self.amount, self.k = _f(amount), _f(luma_dependence)
        self.noise = look_ops.grain_grid(h, w, size, seed)
        gh, gw = self.noise.shape
        self.taps_y = bilinear_taps(h, gh, gh / h)
        self.taps_x = bilinear_taps(w, gw, gw / w)
        self.stages = [[Field(float(size) / 2.0, 1, h, w)]]
        self.mean = self.std = np.float32(0.0)

    def sources(self, stage, x, y0, y1):  # look_ops.grain_noise's rows
        i0, i1, t = (v[y0:y1] for v in self.taps_y)
        a = self.noise[i0] + t[:, None] * (self.noise[i1] - self.noise[i0])
        i0, i1, t = self.taps_x
        return [(a[:, i0] + t * (a[:, i1] - a[:, i0]))[None]]

    def finish(self, renderer):
        field = self.stages[0][0]
        blocks = [(y, min(field.height, y + STATS_ROWS)) for y in range(0, field.height, STATS_ROWS)]

        def sums(rows):
            values = field.rows(*rows).astype(np.float64)
            return float(values.sum()), float(np.square(values).sum())

        totals = renderer.map(sums, blocks)  # in block order: the same sums whatever the threads
        n = float(field.height * field.width)
        mean = sum(t[0] for t in totals) / n
        var = max(sum(t[1] for t in totals) / n - mean * mean, 0.0)
        self.mean, self.std = np.float32(mean), np.float32(var**0.5)

    def apply(self, x, y0, y1):
        field = (self.stages[0][0].rows(y0, y1)[0] - self.mean) / (self.std + _f(1e-6))
        amplitude = self.amount * ((_F1 - self.k) + self.k * look_ops.midtones(luma3(x)))
        x += amplitude * field
        return x


class _ColourLut(_Op):
    """``exact``: float32 trilinear; ``table`` (``packed`` given): 8-bit input, 16-bit results, kept
    in ``keep`` (uint16 ``[3, H, W]``) when later passes start from them."""

    def __init__(self, table: np.ndarray, packed: Optional[np.ndarray]):
        self.table = np.asarray(table, dtype=np.float32)
        self.packed = packed  # '<u8' [256^3] words R | G << 16 | B << 32, or None: exact
        self.keep: Optional[np.ndarray] = None
        self.filled = False  # whether a pass has written every row of ``keep``

    def apply(self, x, y0, y1):
        if self.packed is None:
            rgb = trilinear(self.table, np.moveaxis(x, 0, -1).reshape(-1, 3))
            return np.ascontiguousarray(rgb.reshape(x.shape[1], x.shape[2], 3).transpose(2, 0, 1))
        q = np.clip(x, 0.0, 1.0)
        q *= _f(255.0)
        np.rint(q, out=q)  # whole numbers: the index below is exact in float32 (< 2^24)
        index = q[2] * _f(256.0)
        index += q[1]
        index *= _f(256.0)
        index += q[0]
        return self.gather(index.astype(np.intp).reshape(-1), y0, y1)

    def gather(self, index: np.ndarray, y0: int, y1: int) -> np.ndarray:
        """``[3, r, W]`` float32 results of table indices ``index`` ``[r * W]`` (rows ``y0:y1``)."""
        channels = np.take(self.packed, index).view(np.uint16).reshape(-1, 4)
        shape = (y1 - y0, len(index) // (y1 - y0))
        if self.keep is not None:
            for c in range(3):
                self.keep[c, y0:y1] = channels[:, c].reshape(shape)
            return self.kept(y0, y1)
        out = np.empty((3,) + shape, dtype=np.float32)
        for c in range(3):
            np.multiply(channels[:, c], _f(1.0 / 65535.0), out=out[c].reshape(-1))
        return out

    def kept(self, y0: int, y1: int) -> np.ndarray:
        return np.multiply(self.keep[:, y0:y1], _f(1.0 / 65535.0), dtype=np.float32)


def _words(rgb8: np.ndarray) -> np.ndarray:
    """Contiguous uint8 ``[r, W, 3]`` (or ``[r, W, 4]`` words) -> the table index ``r | g << 8 | b << 16``
    per pixel (each pixel's 3 bytes read as a 4-byte word, the next byte masked off)."""
    if rgb8.shape[-1] == 4:
        return rgb8.reshape(-1).view("<u4") & np.uint32(0xFFFFFF)
    src = rgb8.reshape(-1)
    n = src.size // 3
    index = np.empty(n, dtype=np.uint32)
    if n > 1:
        np.bitwise_and(np.ndarray((n - 1,), dtype="<u4", buffer=src, strides=(3,)), 0xFFFFFF, out=index[:n - 1])
    r, g, b = (int(v) for v in src[-3:])
    index[n - 1] = r | g << 8 | b << 16
    return index


def _store_words(planes: np.ndarray, out: np.ndarray, fourth: Optional[np.ndarray] = None) -> None:
    """Whole-number float planes ``[3, r, W]`` in [0, 255] -> contiguous uint8 ``[r, W, 3]``: each
    pixel a 4-byte word ``r | g << 8 | b << 16`` stored 3 bytes apart, first to last (each word's
    zero top byte lands on the next pixel's red, which the next word then writes). With ``fourth``
    (``[r, W]`` uint8: alpha, or Pillow's RGB padding), ``out`` is ``[r, W, 4]`` words."""
    word = planes[2] * _f(256.0)
    word += planes[1]
    word *= _f(256.0)
    word += planes[0]
    words = word.astype(np.uint32).reshape(-1)
    if fourth is not None:
        words |= fourth.reshape(-1).astype(np.uint32) << np.uint32(24)
        out.reshape(-1).view("<u4")[:] = words
        return
    dst = out.reshape(-1)
    n = words.size
    if n > 1:
        np.copyto(np.ndarray((n - 1,), dtype="<u4", buffer=dst, strides=(3,)), words[:n - 1])
    dst[-3:] = words[n - 1:].view(np.uint8)[:3]


def _make_op(step, tables: Mapping[str, np.ndarray], packed: Mapping[str, np.ndarray], h: int, w: int) -> _Op:
    if step.op == "colour_lut":
        return _ColourLut(tables[step.lut], packed.get(step.lut))
    cls = {"clarity": _Clarity, "detail": _Detail, "smooth_skin": _SmoothSkin, "sharpen": _Sharpen,
           "bloom": _Bloom, "vignette": _Vignette, "fade": _Fade, "grain": _Grain}[step.op]
    extra = {"seed": int(step.seed or 0)} if step.op == "grain" else {}
    return cls(h, w, **step.params, **extra)


# ------------------------------------------------------------------------------ the renderer


class RecipeRenderer:
    """Runs a recipe (``recipe.steps``, ``recipe.tables``) at full resolution in strips over
    ``threads``. Built once per recipe: its LUTs' 256^3 tables (for uint8 input) are built on
    first use and kept; :meth:`render` any number of photos of any size."""

    def __init__(self, recipe, threads: Optional[int] = None, packed: Optional[Mapping[str, np.ndarray]] = None):
        self.recipe = recipe
        self.threads = int(threads or default_threads())
        self._packed: dict[str, np.ndarray] = dict(packed or {})  # tables another renderer of the recipe built
        self._pool: Optional[ThreadPoolExecutor] = None
        self._keep: Optional[np.ndarray] = None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[fn(item) for item in items]`` over the thread pool, in order (the first error re-raised)."""
        if self.threads == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="styleforge-recipe")
        return list(self._pool.map(fn, items))

    def _keep_buffer(self, h: int, w: int) -> np.ndarray:
        """The uint16 ``[3, h, w]`` buffer of kept LUT results, reused from photo to photo of a size
        (fresh pages cost more than the pass they save on some machines: first touch is slow)."""
        if self._keep is None or self._keep.shape != (3, h, w):
            self._keep = None
            self._keep = np.empty((3, h, w), dtype=np.uint16)
        return self._keep

    def packed_tables(self) -> dict[str, np.ndarray]:
        """Each colour_lut's 256^3 table of 16-bit results (128 MiB each), built once."""
        for step in self.recipe.steps:
            if step.op == "colour_lut" and step.lut not in self._packed:
                self._packed[step.lut] = packed_table_u16(Lut3D(self.recipe.tables[step.lut]))
        return self._packed

    def render(self, rgb: np.ndarray, strength: float = 1.0, strip_rows: Optional[int] = None,
               out: Optional[np.ndarray] = None) -> np.ndarray:
        """uint8, uint16 or float32 (in [0, 1]) ``[H, W, 3]`` -> the look, same dtype and shape, blended
        with the input by ``strength`` in [0, 1]. ``strip_rows`` (a multiple of ``2**STRIP_LEVEL``)
        changes speed and memory, never a value.

        uint8 ``[H, W, 4]`` (Pillow's pixel words: RGBX or RGBA) is taken too; the 4th byte is
        carried to the output. ``out`` (the input's shape and dtype) receives the result; it may be
        ``rgb`` itself (each strip's rows are read before they are written)."""
        rgb = np.ascontiguousarray(rgb)
        words = rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 4
        if rgb.ndim != 3 or not (rgb.shape[2] == 3 or words) or rgb.dtype not in (np.uint8, np.uint16, np.float32):
            raise ValueError(f"expected a uint8, uint16 or float32 [H, W, 3] array, got {rgb.dtype} {rgb.shape}")
        if out is not None and (out.shape != rgb.shape or out.dtype != rgb.dtype or not out.flags.c_contiguous):
            raise ValueError(f"out must be a contiguous {rgb.dtype} array of shape {rgb.shape}")
        missing = [s.lut for s in self.recipe.steps if s.op == "colour_lut" and s.lut not in self.recipe.tables]
        if missing:
            raise look_ops.LookOpError(f"recipe step colour_lut: its table {missing[0]!r} was not loaded")
        h, w = rgb.shape[:2]
        out = np.empty_like(rgb) if out is None else out
        if h == 0 or w == 0:
            return out
        packed = self.packed_tables() if rgb.dtype == np.uint8 else {}
        ops = [_make_op(step, self.recipe.tables, packed, h, w) for step in self.recipe.steps]
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(rgb.dtype)
        first_lut_reads_source = bool(ops) and isinstance(ops[0], _ColourLut) and ops[0].packed is not None
        _keep_lut_inputs(ops, self._keep_buffer, h, w)

        def source(y0: int, y1: int) -> np.ndarray:
            planes = np.empty((3, y1 - y0, w), dtype=np.float32)
            for c in range(3):
                planes[c] = rgb[y0:y1, :, c]
            if scale is not None:
                planes /= np.float32(scale)
            return planes

        def run(upto: int, y0: int, y1: int) -> np.ndarray:
            """The input of step ``upto`` on rows ``[y0, y1)`` as planes: the steps before it, from
            the last kept LUT input among them, else from the photo."""
            start = 0
            for i in range(upto - 1, -1, -1):
                if isinstance(ops[i], _ColourLut) and ops[i].filled:
                    x, start = ops[i].kept(y0, y1), i + 1
                    break
            else:
                if first_lut_reads_source and upto > 0:  # the LUT reads the 8-bit pixels themselves: exact
                    x, start = ops[0].gather(_words(rgb[y0:y1]), y0, y1), 1
                else:
                    x = source(y0, y1)
            for op in ops[start:upto]:
                x = op.apply(x, y0, y1)
            return x

        strips = _strips(h, w, strip_rows)
        for i, op in enumerate(ops):
            for stage, fields in enumerate(op.stages):
                def collect(rows, i=i, op=op, stage=stage, fields=fields):
                    x = run(i, *rows) if op.needs_input else None
                    for field, values in zip(fields, op.sources(stage, x, *rows)):
                        field.put(rows[0], values)

                self.map(collect, strips)
                for field in fields:
                    field.finish()
                for before in ops[:i] if op.needs_input else ():  # that pass ran through them
                    if isinstance(before, _ColourLut) and before.keep is not None:
                        before.filled = True
            op.finish(self)

        def final(rows):
            y0, y1 = rows
            y = np.clip(run(len(ops), y0, y1), 0.0, 1.0)
            if strength != 1.0:
                x = source(y0, y1)
                y = x + np.float32(strength) * (y - x)
            if scale is not None:  # y in [0, 1] (a blend of two such): whole numbers in range, exact casts
                y *= np.float32(scale)
                np.rint(y, out=y)
            if rgb.dtype == np.uint8:
                _store_words(y, out[y0:y1], rgb[y0:y1, :, 3] if words else None)
            else:
                for c in range(3):
                    out[y0:y1, :, c] = y[c]

        self.map(final, strips)
        return out

    def close(self) -> None:
        """Free the pool and the buffers (the tables stay: a renderer can render again)."""
        self._keep = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _strips(height: int, width: int, strip_rows: Optional[int]) -> list[tuple[int, int]]:
    unit = 2**STRIP_LEVEL
    if strip_rows is None:
        strip_rows = max(unit, STRIP_PIXELS // max(1, width) // unit * unit)
    if strip_rows <= 0 or strip_rows % unit:
        raise ValueError(f"strip_rows must be a positive multiple of {unit}, got {strip_rows}")
    return [(y, min(height, y + strip_rows)) for y in range(0, height, strip_rows)]


def _keep_lut_inputs(ops: list[_Op], keep: Callable[[int, int], np.ndarray], h: int, w: int) -> None:
    """Keep the 16-bit results of the last table LUT that two or more passes run through (3 x 2
    bytes a pixel, in the buffer ``keep(h, w)``): the passes after the first start from them."""
    passes = [i for i, op in enumerate(ops) for _ in op.stages if op.needs_input] + [len(ops)]
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if isinstance(op, _ColourLut) and op.packed is not None:
            if sum(1 for p in passes if p > i) >= 2:
                op.keep = keep(h, w)
            return
