"""3D colour LUTs in the runtime: the table, ``.cube`` and HALD CLUT files, and fast application.

numpy + Pillow only. One axis convention everywhere in styleforge:

- :class:`Lut3D` ``table`` is float32 ``[S, S, S, 3]`` indexed ``table[r, g, b]``: the output RGB
  (sRGB-encoded, in ``[0, 1]``) for the input ``(r, g, b) / (S - 1)`` (sRGB-encoded too).
- A ``.cube`` file (Adobe Cube LUT 1.0) and a HALD CLUT image list the same nodes with **red
  changing fastest**, then green, then blue: entry ``r + S * g + S * S * b``. That is the order
  of ``table.transpose(2, 1, 0, 3).reshape(-1, 3)``, and also what Pillow's
  ``ImageFilter.Color3DLUT`` and colour-science's ``read_LUT`` (``LUT3D.table[r, g, b]``) use.

Application is trilinear (what ffmpeg's ``lut3d=interp=trilinear``, Pillow's ``Color3DLUT`` and
colour-science's default do), full resolution, in horizontal strips spread over a thread pool:

- **8-bit** input goes through a precomputed 256^3 table (64 MiB of packed RGBX words, built
  once per strength with exact separable trilinear interpolation in float32, then rounded): per
  pixel that is one gather, so a 24 MP photo costs about one memory pass per core.
- **16-bit** (and float) input is interpolated in float32 per strip, so 16 bits stay 16 bits.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from styleforge.atomic import write_bytes
from styleforge.errors import StyleforgeError

CUBE_SIZES = (17, 33, 65)  # the sizes styleforge exports (any size 2..MAX_CUBE_SIZE reads and applies)
MAX_CUBE_SIZE = 256  # a 256^3 .cube is ~500 MB of text; anything larger is not a colour look
DEFAULT_CUBE_SIZE = 33
COLOUR_AGREEMENT_DB = 35.0  # a model ships as a LUT when its colour part reproduces it to this PSNR
HALD_LEVEL = 8  # HALD CLUT level: a 512x512 image holding a 64^3 lattice
STRIP_PIXELS = 1 << 18  # ~256k pixels per work item: fits in L2-ish, enough items to balance threads
_FULL = 256  # 8-bit values per channel

PathLike = Union[str, os.PathLike]


class LutError(StyleforgeError, ValueError):
    """A LUT file or table that cannot be used; the message says where and why."""


@dataclass(frozen=True, eq=False)
class Lut3D:
    """A 3D colour lookup table: ``table[r, g, b]`` -> RGB in [0, 1] (see the module doc)."""

    table: np.ndarray  # float32 [S, S, S, 3]
    title: str = ""

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=np.float32)
        if table.ndim != 4 or table.shape[3] != 3 or not (table.shape[0] == table.shape[1] == table.shape[2]):
            raise LutError(f"a 3D LUT table must have shape [S, S, S, 3], got {list(table.shape)}")
        if table.shape[0] < 2:
            raise LutError(f"a 3D LUT needs at least 2 nodes per axis, got {table.shape[0]}")
        if not np.all(np.isfinite(table)):
            raise LutError("3D LUT table has non-finite values")
        table = np.ascontiguousarray(table)
        table.setflags(write=False)
        object.__setattr__(self, "table", table)

    @property
    def size(self) -> int:
        return int(self.table.shape[0])

    @classmethod
    def identity(cls, size: int = DEFAULT_CUBE_SIZE, title: str = "identity") -> Lut3D:
        return cls(identity_table(size), title)

    def cube_order(self) -> np.ndarray:
        """``[S^3, 3]`` float32 rows in file order: red fastest, then green, then blue."""
        return self.table.transpose(2, 1, 0, 3).reshape(-1, 3)

    def blend(self, strength: float) -> Lut3D:
        """``strength`` 0 = identity, 1 = this LUT (exact per pixel: identity interpolates exactly)."""
        if strength == 1.0:
            return self
        mixed = identity_table(self.size) + np.float32(strength) * (self.table - identity_table(self.size))
        return Lut3D(mixed, self.title)

    def __call__(self, rgb01: np.ndarray) -> np.ndarray:
        """Trilinear lookup of float RGB ``[..., 3]`` in [0, 1] -> float32 ``[..., 3]``."""
        rgb01 = np.asarray(rgb01, dtype=np.float32)
        return trilinear(self.table, rgb01.reshape(-1, 3)).reshape(rgb01.shape)


def identity_table(size: int) -> np.ndarray:
    """float32 ``[S, S, S, 3]`` with ``table[r, g, b] = (r, g, b) / (S - 1)``."""
    axis = np.linspace(0.0, 1.0, int(size), dtype=np.float32)
    r, g, b = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([r, g, b], axis=-1)


def trilinear(table: np.ndarray, rgb01: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``table [S, S, S, 3]`` at float32 ``rgb01 [N, 3]`` -> ``[N, 3]``.

    Inputs are clipped to [0, 1] (the LUT's domain), as every LUT consumer does.
    """
    size = table.shape[0]
    flat = table.reshape(-1, 3)
    x = np.clip(rgb01, 0.0, 1.0) * np.float32(size - 1)
    base = np.minimum(x.astype(np.int32), size - 2)  # [N, 3]; x >= 0, so truncation is floor
    frac = x - base
    index = (base[:, 0] * size + base[:, 1]) * size + base[:, 2]
    fr, fg, fb = frac[:, 0:1], frac[:, 1:2], frac[:, 2:3]
    step_r, step_g = size * size, size
    out = np.zeros((len(rgb01), 3), dtype=np.float32)
    for dr, wr in ((0, 1.0 - fr), (step_r, fr)):
        for dg, wg in ((0, 1.0 - fg), (step_g, fg)):
            wrg = wr * wg
            corner = index + (dr + dg)
            out += (wrg * (1.0 - fb)) * flat[corner]
            out += (wrg * fb) * flat[corner + 1]
    return out


# ------------------------------------------------------------------------------ .cube files


def cube_text(lut: Lut3D, title: Optional[str] = None, comments: tuple[str, ...] = ()) -> str:
    """The Adobe Cube LUT 1.0 text of ``lut``: TITLE, LUT_3D_SIZE, DOMAIN_MIN/MAX, red fastest."""
    name = (lut.title if title is None else title).replace('"', "'").replace("\n", " ")
    lines = [f"# {c}" for c in comments]
    lines += [f'TITLE "{name}"', f"LUT_3D_SIZE {lut.size}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    rows = np.clip(lut.cube_order(), 0.0, 1.0).astype(np.float64)
    lines += [f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows]
    return "\n".join(lines) + "\n"


def write_cube(lut: Lut3D, path: PathLike, title: Optional[str] = None, comments: tuple[str, ...] = ()) -> Path:
    """Write ``lut`` as a ``.cube`` file atomically (temp file + rename)."""

    path = write_bytes(Path(path), cube_text(lut, title, comments).encode("ascii", errors="replace"))
    os.chmod(path, 0o644)  # the temp file was private; a LUT is meant to be shared
    return path


_NUMBER = re.compile(r"^[-+0-9.]")


def _floats(text: str, where: str) -> list[float]:
    try:
        return [float(v) for v in text.split()]
    except ValueError:
        raise LutError(f"{where}: {text.strip()[:40]!r} are not numbers") from None


def read_cube(path: PathLike) -> Lut3D:
    """Read a 3D ``.cube`` file (Adobe Cube 1.0 / Resolve): TITLE, LUT_3D_SIZE, DOMAIN_MIN/MAX.

    Only the [0, 1] domain is accepted (styleforge's LUTs map sRGB-encoded [0, 1] values); 1D
    LUTs and shaper sections are refused with a :class:`LutError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise LutError(f"{path}: cannot read ({err.strerror or err})") from None
    return parse_cube(text, path)


def parse_cube(text: str, path: PathLike = "<cube>") -> Lut3D:
    """:func:`read_cube` of the file's text (``path`` names it in messages). Untrusted text is
    refused early: a ``LUT_3D_SIZE`` outside 2..:data:`MAX_CUBE_SIZE`, more rows than it needs,
    and NaN or infinite entries."""
    size, title = None, ""
    domain_min, domain_max = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    values: list[list[float]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):  # comments are whole lines (a TITLE may hold a '#')
            continue
        if _NUMBER.match(line):
            parts = line.split()
            try:
                values.append([float(v) for v in parts[:3]])
            except ValueError:
                raise LutError(f"{path}:{number}: not a number row: {raw.strip()[:40]!r}") from None
            if len(parts) != 3:
                raise LutError(f"{path}:{number}: expected 3 values, got {len(parts)}")
            if size is not None and len(values) > size**3:
                raise LutError(f"{path}:{number}: more rows than LUT_3D_SIZE {size} holds ({size ** 3})")
            continue
        key, _, rest = line.partition(" ")
        key = key.upper()
        if key == "TITLE":
            title = rest.strip().strip('"')
        elif key == "LUT_3D_SIZE":
            try:
                size = int(rest)
            except ValueError:
                raise LutError(f"{path}:{number}: LUT_3D_SIZE {rest.strip()[:20]!r} is not an integer") from None
            if not 2 <= size <= MAX_CUBE_SIZE:
                raise LutError(f"{path}:{number}: LUT_3D_SIZE {size} is outside 2..{MAX_CUBE_SIZE}")
        elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
            triple = _floats(rest, f"{path}:{number}: {key}")
            if len(triple) != 3:
                raise LutError(f"{path}:{number}: {key} needs 3 values")
            (domain_min if key == "DOMAIN_MIN" else domain_max)[:] = triple
        elif key == "LUT_3D_INPUT_RANGE":  # Resolve's spelling of the domain
            lo_hi = _floats(rest, f"{path}:{number}: {key}")
            if len(lo_hi) != 2:
                raise LutError(f"{path}:{number}: {key} needs 2 values")
            domain_min[:], domain_max[:] = [lo_hi[0]] * 3, [lo_hi[1]] * 3
        elif key in ("LUT_1D_SIZE", "LUT_1D_INPUT_RANGE"):
            raise LutError(f"{path}:{number}: {key} is not supported (a 3D LUT on [0, 1] only)")
        else:
            raise LutError(f"{path}:{number}: unknown keyword {key!r}")
    if size is None:
        raise LutError(f"{path}: no LUT_3D_SIZE: not a 3D .cube file")
    if domain_min != [0.0, 0.0, 0.0] or domain_max != [1.0, 1.0, 1.0]:
        raise LutError(f"{path}: domain {domain_min}..{domain_max} is not supported (only 0..1)")
    if len(values) != size**3:
        raise LutError(f"{path}: LUT_3D_SIZE {size} needs {size ** 3} rows, found {len(values)}")
    rows = np.asarray(values, dtype=np.float32).reshape(size, size, size, 3)  # [b, g, r, c]
    if not np.all(np.isfinite(rows)):
        raise LutError(f"{path}: {int(np.sum(~np.isfinite(rows)))} entries are NaN or infinite")
    return Lut3D(rows.transpose(2, 1, 0, 3), title)


# ------------------------------------------------------------------------------ HALD CLUT


def hald_image(lut: Lut3D, level: int = HALD_LEVEL, bits: int = 8) -> np.ndarray:
    """A HALD CLUT image of ``lut``: ``[L^3, L^3, 3]`` uint8 (or uint16), a ``L^2``-node lattice.

    Pixels in raster order list the lattice with red fastest (the HALD convention, as read by
    ffmpeg's ``haldclut``, ImageMagick, darktable and RawTherapee). ``lut`` is resampled
    trilinearly when its size is not ``L^2``.
    """
    nodes = level * level
    grid = identity_table(nodes).transpose(2, 1, 0, 3).reshape(-1, 3)  # red fastest
    rows = trilinear(lut.table, grid)
    peak = (1 << bits) - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.clip(np.rint(rows * peak), 0, peak).astype(dtype)
    edge = level**3
    return pixels.reshape(edge, edge, 3)


def read_hald(path: PathLike) -> Lut3D:
    """A HALD CLUT image file -> :class:`Lut3D` (8-bit RGB images; the level is found from the size)."""
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    edge = arr.shape[0]
    level = round(edge ** (1.0 / 3.0))
    if arr.shape[1] != edge or level**3 != edge:
        raise LutError(f"{path}: {arr.shape[1]}x{edge} is not a HALD CLUT (square, side L^3)")
    nodes = level * level
    return Lut3D(arr.reshape(nodes, nodes, nodes, 3).transpose(2, 1, 0, 3), Path(path).stem)


# ------------------------------------------------------------------------------ application


def _interp_matrix(size: int, samples: int = _FULL) -> np.ndarray:
    """``[samples, size]`` linear-interpolation weights at ``v / (samples - 1) * (size - 1)``."""
    x = np.arange(samples, dtype=np.float64) * (size - 1) / (samples - 1)
    base = np.minimum(x.astype(np.int64), size - 2)
    frac = x - base
    m = np.zeros((samples, size), dtype=np.float64)
    m[np.arange(samples), base] = 1.0 - frac
    m[np.arange(samples), base + 1] += frac
    return m.astype(np.float32)


def packed_table_u8(lut: Lut3D) -> np.ndarray:
    """Every 8-bit input's output, trilinear in float32 then rounded: ``[256^3]`` little-endian
    uint32 words ``R | G << 8 | B << 16``, indexed by the input word ``r | g << 8 | b << 16``.

    Trilinear interpolation on a lattice is separable, so the 256^3 evaluation is three small
    matrix products (one per axis), done in blocks of blue so memory stays ~30 MB beyond the
    64 MiB result.
    """
    return _packed_table(lut, 8)


def packed_table_u16(lut: Lut3D) -> np.ndarray:
    """As :func:`packed_table_u8` with 16-bit results: ``[256^3]`` little-endian uint64 words
    ``R | G << 16 | B << 32`` (128 MiB), each channel ``rint(65535 * v)``: a look recipe's LUT step
    on 8-bit input, whose result later steps go on computing with (half a 16-bit level from the
    float32 interpolation)."""
    return _packed_table(lut, 16)


def _packed_table(lut: Lut3D, bits: int) -> np.ndarray:
    m = _interp_matrix(lut.size)
    bgr = np.ascontiguousarray(lut.table.transpose(2, 1, 0, 3))  # [b, g, r, c]
    s = lut.size
    step1 = (m @ bgr.reshape(s, -1)).reshape(_FULL, s, s, 3)  # along blue:  [B, g, r, c]
    step2 = np.einsum("Gg,Bgrc->BGrc", m, step1, optimize=True)  # along green: [B, G, r, c]
    peak, word = (255, np.uint32) if bits == 8 else (65535, np.uint64)
    out = np.empty((_FULL, _FULL, _FULL), dtype=np.dtype(word).newbyteorder("<"))  # [B, G, R]
    block = 16
    for b0 in range(0, _FULL, block):
        part = m @ step2[b0 : b0 + block].reshape(-1, s, 3)  # along red: [B*G, R, c]
        q = np.clip(np.rint(part * float(peak)), 0, peak).astype(word)
        words = q[..., 0] | (q[..., 1] << word(bits)) | (q[..., 2] << word(2 * bits))
        out[b0 : b0 + block] = words.reshape(-1, _FULL, _FULL)
    return out.reshape(-1)


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def row_strips(height: int, width: int, threads: int) -> list[tuple[int, int]]:
    """``[(y0, y1), ...]`` row strips of about :data:`STRIP_PIXELS` pixels, at least two per thread."""
    rows = max(1, min(height, STRIP_PIXELS // max(1, width)))
    if threads > 1:  # at least two items per thread, so an unlucky last strip cannot dominate
        rows = max(1, min(rows, -(-height // (2 * threads))))
    return [(y, min(height, y + rows)) for y in range(0, height, rows)]


class LutApplier:
    """Applies one :class:`Lut3D` to whole images, full resolution, in strips over ``threads``.

    Built once; the 8-bit table for a strength is built on first use and kept (the last two).
    """

    def __init__(self, lut: Lut3D, threads: Optional[int] = None):
        self.lut = lut
        self.threads = int(threads or default_threads())
        self._tables: dict[float, np.ndarray] = {}
        self._pool: Optional[ThreadPoolExecutor] = None

    def _map(self, fn, strips: list[tuple[int, int]]) -> None:
        if self.threads == 1 or len(strips) == 1:
            for strip in strips:
                fn(strip)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="styleforge-lut")
        for _ in self._pool.map(fn, strips):  # re-raises the first error
            pass

    def table_u8(self, strength: float = 1.0) -> np.ndarray:
        key = round(float(strength), 6)
        if key not in self._tables:
            while len(self._tables) >= 2:
                self._tables.pop(next(iter(self._tables)))
            self._tables[key] = packed_table_u8(self.lut.blend(key))
        return self._tables[key]

    def apply(self, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """uint8 or uint16 ``[H, W, 3]`` RGB -> the same dtype and shape (a new array)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected a uint8 or uint16 [H, W, 3] RGB array, got {rgb.dtype} {rgb.shape}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        rgb = np.ascontiguousarray(rgb)
        out = np.empty_like(rgb)
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return out
        strips = row_strips(height, width, self.threads)
        if rgb.dtype == np.uint8:
            table = self.table_u8(strength)
            self._map(lambda s: _gather_strip_u8(rgb, out, s, table), strips)
        else:
            lut = self.lut.blend(strength)
            self._map(lambda s: _interp_strip_u16(rgb, out, s, lut.table), strips)
        return out

    def apply_image(self, image, strength: float = 1.0):
        """An 8-bit ``RGB`` or ``RGBA`` PIL image -> a new image of the same mode and size (alpha
        untouched, ``info`` empty), or ``None`` for another mode, an empty image, or a Pillow
        older than 11.2 (the caller then converts through arrays).

        Pillow keeps RGB pixels as 4-byte words. Each thread pastes its strip's rows straight into
        a ``[H, W, 4]`` buffer (a plain row copy, GIL released), gathers them in place while they
        are in cache, and the result is handed back to Pillow without a copy (``frombuffer``,
        ``fromarrow``): no ``tobytes``, no 3-byte unpacking, one pass over the pixels in all.
        """
        width, height = image.size
        if image.mode not in ("RGB", "RGBA") or width == 0 or height == 0 or not _pillow_lends_memory():
            return None
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        image.load()  # decode a lazily opened file once, before the threads read it
        table = self.table_u8(strength)
        pixels = np.empty((height, width, 4), dtype=np.uint8)

        def strip(rows: tuple[int, int]) -> None:
            y0, y1 = rows
            view = _image_over(pixels[y0:y1], image.mode)
            # the core paste (Image.paste would copy the read-only view first), clipped to the
            # view: the source's rows y0..y1, copied row by row with the GIL released
            view.im.paste(image.im, (0, -y0, width, height - y0))
            _gather_strip_words(pixels, rows, table, keep_alpha=image.mode == "RGBA")

        self._map(strip, row_strips(height, width, self.threads))
        return _image_over(pixels, image.mode)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def image_words(image, strips: list[tuple[int, int]], map_fn) -> Optional[np.ndarray]:
    """An 8-bit ``RGB``/``RGBA`` PIL image's pixels as a new uint8 ``[H, W, 4]`` buffer of Pillow's own
    4-byte words (RGBX / RGBA), pasted row strip by row strip through ``map_fn(fn, strips)`` (a
    plain row copy with the GIL released); None for another mode, an empty image or a Pillow older
    than 11.2. :func:`image_over` hands such a buffer back to Pillow without a copy."""
    width, height = image.size
    if image.mode not in ("RGB", "RGBA") or width == 0 or height == 0 or not _pillow_lends_memory():
        return None
    image.load()  # decode a lazily opened file once, before the threads read it
    pixels = np.empty((height, width, 4), dtype=np.uint8)

    def paste(rows: tuple[int, int]) -> None:
        y0, y1 = rows
        _image_over(pixels[y0:y1], image.mode).im.paste(image.im, (0, -y0, width, height - y0))

    map_fn(paste, strips)
    return pixels


def image_over(pixels: np.ndarray, mode: str):
    """The PIL image of ``mode`` ("RGB" or "RGBA") whose pixels are the uint8 ``[H, W, 4]`` buffer
    ``pixels`` itself (no copy)."""
    return _image_over(pixels, mode)


@functools.lru_cache(maxsize=1)
def _pillow_lends_memory() -> bool:
    """Whether this Pillow wraps a buffer as an RGB image without a copy and pastes into it (11.2+:
    ``fromarrow``; checked once on a tiny image, so a Pillow that changes this falls back)."""
    from PIL import Image

    try:
        source = Image.frombytes("RGB", (3, 2), bytes(range(18)))
        pixels = np.zeros((2, 3, 4), dtype=np.uint8)
        _image_over(pixels[1:], "RGB").im.paste(source.im, (0, -1, 3, 1))
        return pixels[1, :, :3].tobytes() == bytes(range(9, 18)) and not pixels[0].any()
    except Exception:  # noqa: BLE001  (an old or different Pillow: the array path is always there)
        return False


def _image_over(pixels: np.ndarray, mode: str):
    """A PIL image of ``mode`` ("RGB" or "RGBA") whose pixels are the uint8 ``[h, w, 4]`` buffer
    ``pixels`` itself (no copy; read-only, as ``frombuffer`` makes it: Pillow copies on write)."""
    from PIL import Image

    height, width = pixels.shape[:2]
    if mode == "RGBA":
        return Image.frombuffer("RGBA", (width, height), pixels, "raw", "RGBA", 0, 1)
    words = Image.frombuffer("RGBX", (width, height), pixels, "raw", "RGBX", 0, 1)
    return Image.fromarrow(words, "RGB", (width, height))  # RGB is RGBX in Pillow's memory


class _Scratch(threading.local):
    """Per-thread strip buffers, reused from strip to strip: fresh big arrays per strip would be
    fresh pages (page faults and zeroing) every time."""

    index: Optional[np.ndarray] = None  # intp [n]: the table index of each pixel
    styled: Optional[np.ndarray] = None  # '<u4' [n]: the packed output words

    def buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None or len(self.index) < n:
            self.index, self.styled = np.empty(n, dtype=np.intp), np.empty(n, dtype="<u4")
        return self.index[:n], self.styled[:n]


_SCRATCH = _Scratch()


def _gather_strip_u8(rgb: np.ndarray, out: np.ndarray, rows: tuple[int, int], table: np.ndarray) -> None:
    """One strip of 8-bit pixels through the packed 256^3 table (numpy releases the GIL).

    Three passes over the strip: 3-byte pixels read as masked 4-byte words into an intp index
    (no conversion pass inside ``take``), one gather, and the packed words stored back 3 bytes
    apart in pixel order (a strided copy, first to last, so each word's zero top byte is
    overwritten by the next pixel). Both buffers are this thread's own, reused.
    """
    y0, y1 = rows
    width = rgb.shape[1]
    n = (y1 - y0) * width
    src = rgb[y0:y1].reshape(-1)  # contiguous bytes R G B R G B ...
    index, styled = _SCRATCH.buffers(n)
    if n > 1:  # read each pixel's 3 bytes (+1 of the next pixel, masked off) as one word
        words = np.ndarray((n - 1,), dtype="<u4", buffer=src, strides=(3,))
        np.bitwise_and(words, 0xFFFFFF, out=index[: n - 1])
    r, g, b = (int(v) for v in src[-3:])
    index[n - 1] = r | g << 8 | b << 16
    np.take(table, index, out=styled, mode="wrap")  # indices < 2^24 = len(table): wrap never changes one
    dst = out[y0:y1].reshape(-1)
    if n > 1:  # each word's 4th byte (0) lands on the next pixel's R, which the next word then writes
        words_out = np.ndarray((n - 1,), dtype="<u4", buffer=dst, strides=(3,))
        np.copyto(words_out, styled[: n - 1])
    dst[-3:] = styled[n - 1 :].view(np.uint8)[:3]


def _gather_strip_words(pixels: np.ndarray, rows: tuple[int, int], table: np.ndarray, keep_alpha: bool) -> None:
    """One strip of a uint8 ``[H, W, 4]`` buffer of Pillow pixel words (``R G B X|A``), in place.

    The index is each word's low 3 bytes, the gather lands in this thread's buffer, and the words
    go back with a 4th byte of 255 (Pillow's padding of RGB) or, with ``keep_alpha``, the alpha.
    """
    y0, y1 = rows
    words = pixels[y0:y1].reshape(-1).view("<u4")
    index, styled = _SCRATCH.buffers(len(words))
    np.bitwise_and(words, 0xFFFFFF, out=index)
    np.take(table, index, out=styled, mode="wrap")  # indices < 2^24 = len(table): wrap never changes one
    if keep_alpha:
        np.bitwise_and(words, 0xFF000000, out=words)
        np.bitwise_or(words, styled, out=words)
    else:
        np.bitwise_or(styled, 0xFF000000, out=words)


def _interp_strip_u16(rgb: np.ndarray, out: np.ndarray, rows: tuple[int, int], table: np.ndarray) -> None:
    """One strip of 16-bit pixels: float32 trilinear, rounded back to 16 bits."""
    y0, y1 = rows
    x = rgb[y0:y1].reshape(-1, 3).astype(np.float32) * np.float32(1.0 / 65535.0)
    y = trilinear(table, x)
    out[y0:y1] = np.clip(np.rint(y * 65535.0), 0, 65535).astype(np.uint16).reshape(y1 - y0, -1, 3)


def pillow_filter(lut: Lut3D):
    """Pillow's ``ImageFilter.Color3DLUT`` for ``lut`` (trilinear, single-threaded C; the reference
    the benchmark times against)."""
    from PIL import ImageFilter

    return ImageFilter.Color3DLUT(lut.size, lut.cube_order().reshape(-1).tolist(), channels=3)


def apply_pillow(lut: Lut3D, rgb: np.ndarray, strength: float = 1.0,
                 pool: Optional[ThreadPoolExecutor] = None) -> np.ndarray:
    """uint8 ``[H, W, 3]`` through ``lut`` with Pillow's ``Color3DLUT`` (trilinear in 16-bit fixed
    point, C): within 1 level of :class:`LutApplier`'s exact result, with no 256^3 table to build,
    so it suits a LUT that changes every frame (an image-adaptive look on video). ``pool``: its
    threads take a horizontal strip each (Pillow releases the GIL while filtering)."""
    from PIL import Image

    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] RGB array, got {rgb.dtype} {rgb.shape}")
    lut_filter = pillow_filter(lut.blend(strength))
    out = np.empty_like(rgb)
    height = rgb.shape[0]
    parts = max(1, min(height, pool._max_workers if pool is not None else 1))

    def strip(index: int) -> None:
        y0, y1 = height * index // parts, height * (index + 1) // parts
        if y1 > y0:
            out[y0:y1] = np.asarray(Image.fromarray(rgb[y0:y1], "RGB").filter(lut_filter))

    if pool is None or parts == 1:
        for i in range(parts):
            strip(i)
    else:
        for _ in pool.map(strip, range(parts)):
            pass
    return out
