"""Reading photos safely and faithfully: one place for EXIF, odd modes, alpha, ICC and pixel limits.

Used by the training datasets and by the runtime alike. Everything returns 8-bit RGB
(``PIL.Image`` mode ``"RGB"``) plus what must be carried over to an output (alpha, ICC, EXIF).

Folders are listed and loaded here too, for every command: :func:`scan_images` admits whatever
Pillow can open (JPEG, PNG, WebP, GIF's first frame, ...; not a list of suffixes) and names
every other file with the reason; :func:`load_images` decodes a list of files, collecting the
ones that fail (truncated, corrupt, too large) with their reasons instead of stopping.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Generic, Iterable, Optional, TypeVar, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from styleforge.errors import StyleforgeError

DEFAULT_MAX_PIXELS = 120_000_000  # 120 MP: above any camera in use, below a decompression bomb
# Suffixes of common photo files: a hint for what a user means, not what a folder run admits
# (that is whatever Pillow opens, see scan_images).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
NOT_AN_IMAGE = "not an image (or a format Pillow cannot read)"

Source = Union[str, os.PathLike, BinaryIO]


class ImageError(StyleforgeError, ValueError):
    """An input that is not a usable image; the message names the file and the reason."""


@dataclass
class LoadedImage:
    """A decoded photo, oriented upright.

    ``rgb`` is 8-bit RGB; ``alpha`` is the 8-bit alpha channel (mode ``"L"``) when the source had
    transparency, else ``None``; ``icc_profile`` and ``exif`` are the source's raw bytes (EXIF with
    its orientation reset, since the pixels are already upright).
    """

    rgb: Image.Image
    alpha: Optional[Image.Image]
    icc_profile: Optional[bytes]
    exif: Optional[bytes]
    source_mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.size


T = TypeVar("T")
Skipped = tuple[Path, str]  # (file, why it was not used)


@dataclass
class FolderScan:
    """What :func:`scan_images` found, each list sorted by path.

    ``images``: files Pillow opens. ``broken``: files named like photos (:data:`IMAGE_SUFFIXES`)
    that it cannot open, with the reason: a caller loading photos reports these. ``others``:
    every other file, with the reason (``not an image ...``): a caller may ignore them (a
    training folder's notes) or list them (a ``stylize`` run lists every file it did not style).
    """

    images: list[Path]
    broken: list[Skipped]
    others: list[Skipped]

    @property
    def skipped(self) -> list[Skipped]:
        """``broken`` and ``others`` together, sorted by path."""
        return sorted(self.broken + self.others)


@dataclass
class LoadedImages(Generic[T]):
    """What :func:`load_images` decoded: ``paths[i]`` gave ``images[i]``; ``skipped`` the rest."""

    paths: list[Path]
    images: list[T]
    skipped: list[Skipped]


def _identify(path: Path) -> Optional[str]:
    """``None`` when Pillow recognises ``path`` as an image (header only, nothing decoded), else why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open(path, "rb") as stream, Image.open(stream):
                return None
    except UnidentifiedImageError:
        return NOT_AN_IMAGE
    except Image.DecompressionBombError:
        return None  # an image; open_image reports it with the limit to raise
    except (OSError, SyntaxError, ValueError) as err:
        return f"cannot read ({getattr(err, 'strerror', None) or err})"


def is_image_file(path: Path) -> bool:
    """A visible regular file that Pillow opens as an image."""
    path = Path(path)
    return path.is_file() and not path.name.startswith(".") and _identify(path) is None


def scan_images(folder: Union[str, os.PathLike], recursive: bool = False) -> FolderScan:
    """Files of ``folder`` (sorted; hidden files ignored): those Pillow opens as images, and the rest.

    Every other visible file comes back with the reason (``not an image ...``, ``cannot read
    ...``), in ``broken`` when its name promises a photo, else in ``others``; see :class:`FolderScan`.
    """
    root = Path(folder)
    pattern = root.rglob("*") if recursive else root.glob("*")
    scan = FolderScan([], [], [])
    for path in sorted(pattern):
        if path.name.startswith(".") or not path.is_file():
            continue
        reason = _identify(path)
        if reason is None:
            scan.images.append(path)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            scan.broken.append((path, reason))
        else:
            scan.others.append((path, reason))
    return scan


def list_images(folder: Union[str, os.PathLike], recursive: bool = False) -> list[Path]:
    """Files of ``folder`` to load as photos, sorted: whatever Pillow opens, plus the photo-named
    files it cannot (so the caller's loader reports those, with the reason, when it fails on them).
    See :func:`scan_images`."""
    scan = scan_images(folder, recursive)
    return sorted(scan.images + [path for path, _ in scan.broken])


def load_images(
    paths: list[Path],
    prepare: Optional[Callable[[Image.Image], T]] = None,
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    on_item: Optional[Callable[[Iterable[Path]], Iterable[Path]]] = None,
) -> LoadedImages[T]:
    """Decode every file of ``paths`` to upright 8-bit RGB (:func:`open_image`), then ``prepare`` it.

    Files that fail (truncated, corrupt, too large, unreadable) go to ``skipped`` with the reason
    instead of stopping the loop. ``on_item`` wraps the iteration (e.g. a progress bar).
    """
    kept: list[Path] = []
    images: list = []
    skipped: list[Skipped] = []
    for path in (on_item(paths) if on_item else paths):
        path = Path(path)
        try:
            # Pass an open file we close ourselves: Pillow leaves its own handle open when decoding fails.
            with open(path, "rb") as stream:
                rgb = open_image(stream, max_pixels=max_pixels).rgb
        except OSError as err:
            skipped.append((path, f"cannot read ({err.strerror or err})"))
            continue
        except ImageError as err:
            skipped.append((path, str(err).removeprefix(f"{path}: ")))
            continue
        images.append(prepare(rgb) if prepare else rgb)
        kept.append(path)
    return LoadedImages(kept, images, skipped)


def _name(source: Source) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")


def open_image(source: Source, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file into upright 8-bit RGB (+ alpha, ICC, EXIF).

    Raises :class:`ImageError` for missing, unreadable, truncated or corrupt files and for images
    larger than ``max_pixels`` (``None`` disables the limit), before decoding the pixels.
    """
    name = _name(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise ImageError(f"{name}: no such file")
    limit = max_pixels if max_pixels is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            previous_limit = Image.MAX_IMAGE_PIXELS
            # Our own limit below is the one that counts; lift Pillow's so an override works.
            Image.MAX_IMAGE_PIXELS = None if limit is None else max(limit * 2, previous_limit or 0)
            try:
                img = Image.open(source)
            finally:
                Image.MAX_IMAGE_PIXELS = previous_limit
            try:
                width, height = img.size
                if limit is not None and width * height > limit:
                    raise ImageError(
                        f"{name}: {width}x{height} = {width * height / 1e6:.0f} MP exceeds the pixel limit "
                        f"of {limit / 1e6:.0f} MP (possible decompression bomb; raise the limit to allow it)"
                    )
                img.load()
            except BaseException:
                img.close()  # release the file handle of an image we refuse
                raise
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: {NOT_AN_IMAGE}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"{name}: truncated or corrupt image ({err})") from None
    return _normalise(img)


def _normalise(img: Image.Image) -> LoadedImage:
    source_mode = img.mode
    icc = img.info.get("icc_profile")
    exif_bytes = None
    try:
        exif = img.getexif()
        if exif.get(0x0112, 1) != 1:  # transposing copies the image: only when it is rotated
            upright = ImageOps.exif_transpose(img)
            if upright is not None:
                img = upright
        if exif:
            exif[0x0112] = 1  # orientation already applied to the pixels
            exif_bytes = exif.tobytes()
    except Exception:  # malformed EXIF must not cost the user their photo
        exif_bytes = None
    rgb, alpha = to_rgb(img)
    return LoadedImage(rgb=rgb, alpha=alpha, icc_profile=icc, exif=exif_bytes, source_mode=source_mode)


def to_rgb(img: Image.Image) -> tuple[Image.Image, Optional[Image.Image]]:
    """Convert any Pillow mode to 8-bit RGB, returning the alpha channel separately (or ``None``).

    Handles 1, L, LA, P (with or without transparency), RGBA, CMYK, YCbCr, LAB, HSV, 16-bit and
    32-bit integer greyscale (I;16*, I) and float (F) images.
    """
    alpha = None
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if mode == "F" and arr.max(initial=0) <= 1.0:
            peak = 1.0
        arr8 = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB"), None
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        if mode in ("RGBa", "La"):
            img = img.convert("RGBA" if mode == "RGBa" else "LA")
        alpha = img.getchannel("A")
        img = img.convert("RGB") if img.mode != "LA" else img.convert("L").convert("RGB")
        return img, alpha
    if mode == "CMYK":
        return _cmyk_to_rgb(img), None
    if mode != "RGB":
        img = img.convert("RGB")
    return img, None


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:
            pass  # fall back to Pillow's naive conversion below
    return img.convert("RGB")


def to_uint8_array(img: Image.Image) -> np.ndarray:
    """RGB PIL image -> ``uint8`` array ``[H, W, 3]`` (an RGB image is read as it is: ``convert``
    would copy all of it first)."""
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
