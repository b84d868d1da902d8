"""Every dataset training reads, in one place: photo folders turned into samples.

- :class:`UnpairedDataset`: content + style folders, random crops of each (CycleGAN, the colour generator);
- :class:`PairedDataset`: ``A/`` + ``B/`` matched by file name, the same crop of both (pix2pix, paired colour);
- :class:`StyleFolderDataset`: whole images of one folder, centre squares (dcgan);
- :class:`ContentCrops`: crops of the user's photos that a teacher labels (distillation's pseudo-pairs).

:func:`build_dataset` picks the one a training config's mode needs. Images are read with
:func:`styleforge.runtime.imageio.open_image` (EXIF orientation, any Pillow mode -> 8-bit RGB),
decoded once and cached in memory, downscaled (the cropping datasets: short side at most
``cache_factor * patch_size``): training never re-decodes a JPEG. Unreadable files are skipped
(listed in ``ds.skipped``; the cropping datasets also warn once); a missing or empty folder is a
:class:`DatasetError`.

``ds.get(i, rng)`` returns a dict of float32 RGB tensors in [-1, 1], CHW (``"content"`` and/or
``"style"``, ``[3, P, P]``). All randomness comes from ``rng`` (a ``numpy.random.Generator``) in a
fixed order, so the same generator state gives the same sample: the trainer and distillation rely
on this for exact resume.

:class:`DatasetError` is shared with :func:`styleforge.photo.dataset.make_dataset`
(``styleforge make-dataset``), which writes the folders these classes read.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from styleforge.photo.dataset import DatasetError
from styleforge.progress import progress
from styleforge.runtime.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    list_images,
    load_images,
    scan_images,
    to_uint8_array,
)
from styleforge.runtime.tensors import pixels_to_range
from styleforge.train.config import TrainConfig
from styleforge.train.tensors import image_to_tensor

PathLike = Union[str, os.PathLike]

SCALE_RANGE = (0.5, 1.0)  # crop side as a fraction of the cached image's short side
CACHE_FACTOR = 2.0  # cached short side <= CACHE_FACTOR * patch_size
PROGRESS_MIN_IMAGES = 64  # show a loading bar only when it is worth looking at


class DatasetWarning(UserWarning):
    """Some files were skipped (unreadable, or without a partner in a paired dataset)."""


# ---------------------------------------------------------------------------------------------
# Loading


def _image_files(folder: Path, role: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Images of ``folder`` (whatever Pillow opens) and the photo-named files it cannot open,
    with the reason. Other files (notes, sidecars) are not a dataset's business."""
    if not folder.exists():
        raise DatasetError(f"{role} folder {folder} does not exist")
    if not folder.is_dir():
        raise DatasetError(f"{role} folder {folder} is not a folder")
    scan = scan_images(folder)
    if not scan.images and not scan.broken:
        raise DatasetError(f"{role} folder {folder} has no images (any format Pillow reads: JPEG, PNG, WebP, ...)")
    return scan.images, scan.broken


def _open_rgb(path: Path, max_pixels: Optional[int]) -> Image.Image:
    loaded = load_images([path], max_pixels=max_pixels)
    if loaded.skipped:
        raise ImageError(f"{path}: {loaded.skipped[0][1]}")
    return loaded.images[0]


def _downscale(rgb: Image.Image, max_short: int) -> Image.Image:
    """``rgb`` downscaled so its short side is at most ``max_short``."""
    short = min(rgb.size)
    if short > max_short:
        factor = max_short / short
        size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return rgb


def _load_cached(path: Path, max_short: int, max_pixels: Optional[int]) -> Image.Image:
    """Decode ``path`` to upright RGB, downscaled so its short side is at most ``max_short``."""
    return _downscale(_open_rgb(path, max_pixels), max_short)


def _load_all(
    paths: Sequence[Path], max_short: int, max_pixels: Optional[int], desc: str
) -> tuple[list[Path], list[Image.Image], list[tuple[Path, str]]]:
    def bar(items):
        return progress(items, total=len(paths), desc=desc, disable=len(paths) < PROGRESS_MIN_IMAGES)

    loaded = load_images(list(paths), lambda rgb: _downscale(rgb, max_short), max_pixels, on_item=bar)
    return loaded.paths, loaded.images, loaded.skipped


def _warn_skipped(skipped: list[tuple[Path, str]], where: str) -> None:
    if not skipped:
        return
    shown = ", ".join(f"{p.name} ({why})" for p, why in skipped[:10])
    more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    warnings.warn(f"{where}: skipped {len(skipped)} file(s): {shown}{more}", DatasetWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Augmentation: random scale-crop + horizontal flip, drawn from the caller's rng


def _draw_crop(size: tuple[int, int], rng: np.random.Generator, scale_range: tuple[float, float], flip: bool):
    """Square crop box ``(left, top, right, bottom)`` in pixels of an image of ``size`` (W, H), and a flip.

    Exactly four draws from ``rng``, always in this order, so resumed runs replay identically.
    """
    width, height = size
    short = min(width, height)
    side = short * rng.uniform(*scale_range)
    left = (width - side) * rng.random()
    top = (height - side) * rng.random()
    mirrored = bool(rng.random() < 0.5) and flip
    return (left, top, left + side, top + side), mirrored


def _patch(img: Image.Image, box, mirrored: bool, patch_size: int) -> np.ndarray:
    """Crop ``box`` of ``img`` resized to ``patch_size`` squared -> float32 [3, P, P] in [-1, 1]."""
    # Pillow resizes straight from the (fractional) box, antialiased when shrinking; small images
    # are upscaled the same way.
    out = img.resize((patch_size, patch_size), Image.Resampling.BICUBIC, box=box)
    arr = np.asarray(out, dtype=np.uint8)
    if mirrored:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(pixels_to_range(arr).transpose(2, 0, 1))


def _tensor(arr: np.ndarray):
    import torch

    return torch.from_numpy(arr)


class _CroppingDataset:
    def __init__(self, patch_size: int, scale_range: tuple[float, float], flip: bool, cache_factor: float):
        if patch_size < 8:
            raise ValueError(f"patch_size must be at least 8, got {patch_size}")
        lo, hi = scale_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"scale_range must satisfy 0 < lo <= hi <= 1, got {scale_range}")
        self.patch_size = int(patch_size)
        self.scale_range = (float(lo), float(hi))
        self.flip = bool(flip)
        self.max_short = max(self.patch_size, int(round(cache_factor * self.patch_size)))
        self.skipped: list[tuple[Path, str]] = []

    def _crop(self, img: Image.Image, rng: np.random.Generator) -> np.ndarray:
        box, mirrored = _draw_crop(img.size, rng, self.scale_range, self.flip)
        return _patch(img, box, mirrored, self.patch_size)


# ---------------------------------------------------------------------------------------------
# Datasets


class UnpairedDataset(_CroppingDataset):
    """Content photos and style photos with no correspondence (CycleGAN-style training).

    ``len(ds)`` is the number of content images; ``get(i, rng)`` crops content image ``i`` and a
    style image whose index is drawn from ``rng``. Everything is decoded up front and kept in
    memory (about ``3 * (2 * patch_size)**2 * 4/3`` bytes per image: ~1 MB at 256).
    """

    def __init__(
        self,
        content_dir: PathLike,
        style_dir: PathLike,
        patch_size: int = 256,
        *,
        scale_range: tuple[float, float] = SCALE_RANGE,
        flip: bool = True,
        cache_factor: float = CACHE_FACTOR,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    ):
        super().__init__(patch_size, scale_range, flip, cache_factor)
        self.content_dir, self.style_dir = Path(content_dir), Path(style_dir)
        content_files, not_images_c = _image_files(self.content_dir, "content")
        style_files, not_images_s = _image_files(self.style_dir, "style")
        self.content_paths, self.content_images, skipped_c = _load_all(
            content_files, self.max_short, max_pixels, "loading content"
        )
        self.style_paths, self.style_images, skipped_s = _load_all(
            style_files, self.max_short, max_pixels, "loading style"
        )
        self.skipped = not_images_c + skipped_c + not_images_s + skipped_s
        _warn_skipped(self.skipped, f"{self.content_dir} + {self.style_dir}")
        for role, folder, kept in (("content", self.content_dir, self.content_paths), ("style", self.style_dir, self.style_paths)):
            if not kept:
                raise DatasetError(f"{role} folder {folder}: none of its images could be read")

    def __len__(self) -> int:
        return len(self.content_paths)

    def get(self, i: int, rng: np.random.Generator) -> dict:
        """Sample ``i``: ``{"content": Tensor[3,P,P], "style": Tensor[3,P,P]}`` in [-1, 1].

        Draw order from ``rng``: content crop (4 draws), style index (1), style crop (4).
        """
        content = self._crop(self.content_images[i], rng)
        j = int(rng.integers(len(self.style_images)))
        style = self._crop(self.style_images[j], rng)
        return {"content": _tensor(content), "style": _tensor(style)}


class PairedDataset(_CroppingDataset):
    """Before/after pairs: ``root/A/NAME.*`` (input) matches ``root/B/NAME.*`` (target) by file stem.

    ``get(i, rng)`` returns the same crop and flip of both: ``"content"`` from A, ``"style"`` from B.
    B is resized to A's size when they differ (same aspect ratio required). Names without a
    partner, ambiguous names and unreadable files are skipped, reported once and kept in
    ``ds.skipped``.
    """

    def __init__(
        self,
        root: PathLike,
        patch_size: int = 256,
        *,
        scale_range: tuple[float, float] = SCALE_RANGE,
        flip: bool = True,
        cache_factor: float = CACHE_FACTOR,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    ):
        super().__init__(patch_size, scale_range, flip, cache_factor)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"paired dataset folder {self.root} does not exist")
        candidates, skipped = _stem_pairs(self.root)
        self.pairs: list[tuple[Path, Path]] = []
        self.images: list[tuple[Image.Image, Image.Image]] = []
        for path_a, path_b in progress(candidates, total=len(candidates), desc="loading pairs",
                                       disable=len(candidates) < PROGRESS_MIN_IMAGES):
            try:
                img_a = _load_cached(path_a, self.max_short, max_pixels)
            except ImageError as err:
                skipped.append((path_a, str(err).removeprefix(f"{path_a}: ")))
                continue
            try:
                img_b = _open_rgb(path_b, max_pixels)
            except ImageError as err:
                skipped.append((path_b, str(err).removeprefix(f"{path_b}: ")))
                continue
            aspect_a, aspect_b = img_a.width / img_a.height, img_b.width / img_b.height
            if abs(aspect_a / aspect_b - 1.0) > 0.02:
                skipped.append((path_b, f"aspect ratio {img_b.width}x{img_b.height} differs from A's"))
                continue
            if img_b.size != img_a.size:
                img_b = img_b.resize(img_a.size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            self.pairs.append((path_a, path_b))
            self.images.append((img_a, img_b))
        self.skipped = skipped
        _warn_skipped(self.skipped, str(self.root))
        if not self.pairs:
            raise DatasetError(f"paired dataset {self.root}: no usable A/B pairs (matched by file name)")

    @staticmethod
    def _by_stem(files: list[Path], side: str) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
        groups: dict[str, list[Path]] = {}
        for path in files:
            groups.setdefault(path.stem, []).append(path)
        unique = {stem: paths[0] for stem, paths in groups.items() if len(paths) == 1}
        ambiguous = [
            (p, f"ambiguous: {len(paths)} files named {stem}.* in {side}/")
            for stem, paths in groups.items()
            if len(paths) > 1
            for p in paths
        ]
        return unique, ambiguous

    def __len__(self) -> int:
        return len(self.pairs)

    def get(self, i: int, rng: np.random.Generator) -> dict:
        """Pair ``i``: ``{"content": A crop, "style": B crop}``, same box and flip, Tensor[3,P,P] in [-1, 1].

        Draw order from ``rng``: one crop (4 draws), used for both images.
        """
        img_a, img_b = self.images[i]
        box, mirrored = _draw_crop(img_a.size, rng, self.scale_range, self.flip)
        content = _patch(img_a, box, mirrored, self.patch_size)
        style = _patch(img_b, box, mirrored, self.patch_size)
        return {"content": _tensor(content), "style": _tensor(style)}


def _stem_pairs(root: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """``(pairs, skipped)``: files of ``root/A`` and ``root/B`` matched by unique file stem, sorted
    by stem, and ``(path, reason)`` for non-images, ambiguous stems and names without a partner.
    Nothing is decoded; a missing or empty side raises :class:`DatasetError`."""
    files_a, not_images_a = _image_files(root / "A", "paired A")
    files_b, not_images_b = _image_files(root / "B", "paired B")
    by_a, skipped = PairedDataset._by_stem(files_a, "A")
    by_b, skipped_b = PairedDataset._by_stem(files_b, "B")
    skipped += skipped_b + not_images_a + not_images_b
    for stem in sorted(set(by_a) ^ set(by_b)):
        path, other = (by_a[stem], "B") if stem in by_a else (by_b[stem], "A")
        skipped.append((path, f"no partner named {stem}.* in {other}/"))
    return [(by_a[stem], by_b[stem]) for stem in sorted(set(by_a) & set(by_b))], skipped


def matching_pairs(root: Path) -> list[tuple[Path, Path]]:
    """``(A, B)`` paths of ``root/A`` and ``root/B`` matched by unique file stem, sorted by stem.

    Nothing is decoded (:class:`PairedDataset` loads and checks the images and reports what it
    skipped); a missing or empty side raises :class:`DatasetError`."""
    return _stem_pairs(Path(root))[0]


class StyleFolderDataset:
    """Whole images of one folder, centre-cropped square and resized to ``size`` (dcgan mode).

    ``get(i, rng) -> {"style": Tensor[3, size, size]}`` in ``[-1, 1]``, randomly mirrored.
    """

    def __init__(self, folder: PathLike, size: int = 64):
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"style folder not found: {folder}")

        def square(rgb: Image.Image) -> np.ndarray:  # centre square, resized: uint8 [size, size, 3]
            side = min(rgb.size)
            left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
            return np.asarray(rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS))

        loaded = load_images(list_images(folder), square)
        self.images: list[np.ndarray] = loaded.images
        self.skipped: list[tuple[Path, str]] = loaded.skipped  # (file, why it could not be read)
        if not self.images:
            raise DatasetError(f"no readable images in {folder}")

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int, rng: np.random.Generator) -> dict:
        rgb = self.images[i]
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        return {"style": image_to_tensor(np.ascontiguousarray(rgb))}


class ContentCrops:
    """Random crops of the user's photos: the student's inputs and, through the teacher, targets.

    Photos are decoded once (``open_image``: EXIF orientation, any mode -> RGB) and downscaled so
    the longer side is at most ``max_side`` (and the shorter at least ``patch_size``).
    ``get(i, rng) -> {"content": Tensor[3, P, P]}`` in [-1, 1]. Half the crops are taken at the
    photo's own scale (the scale the report and the app run at); the other half cover a larger,
    log-uniformly drawn square resized down to ``P`` (the zoomed-out views a teacher trained on
    ``make-dataset`` crops saw). Crop, scale and flip all come from ``rng``, in a fixed order.
    """

    def __init__(self, content_dir: PathLike, patch_size: int, max_side: int = 512):
        self.patch_size = patch_size
        folder = Path(content_dir)
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no such content folder")
        loaded = load_images(list_images(folder), lambda rgb: to_uint8_array(_fit(rgb, max_side, patch_size)))
        self.paths: list[Path] = loaded.paths
        self.images: list[np.ndarray] = loaded.images  # uint8 [H, W, 3]
        self.skipped: list[tuple[Path, str]] = loaded.skipped  # (file, why it could not be read)
        if not self.images:
            raise DatasetError(f"{folder}: no readable photos")

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int, rng: np.random.Generator) -> dict:
        img = self.images[i]
        p = self.patch_size
        short = min(img.shape[:2])
        zoom_out = rng.random() < 0.5
        side = int(round(np.exp(rng.uniform(np.log(p), np.log(short))))) if zoom_out else p
        top = int(rng.integers(0, img.shape[0] - side + 1))
        left = int(rng.integers(0, img.shape[1] - side + 1))
        crop = img[top:top + side, left:left + side]
        if side != p:
            crop = np.asarray(Image.fromarray(crop).resize((p, p), Image.BICUBIC, reducing_gap=3.0))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return {"content": image_to_tensor(crop)}


def _fit(img: Image.Image, max_side: int, min_side: int) -> Image.Image:
    """Downscale so the longer side <= max_side, upscale only if the shorter side < min_side."""
    w, h = img.size
    scale = min(1.0, max_side / max(w, h))
    scale = max(scale, min_side / min(w, h))
    if abs(scale - 1.0) < 1e-9:
        return img
    return img.resize((max(min_side, round(w * scale)), max(min_side, round(h * scale))), Image.BICUBIC)


# ---------------------------------------------------------------------------------------------
# The dataset of a training mode


def build_dataset(config: TrainConfig, image_size: Optional[int] = None):
    """The dataset ``config.mode`` trains on: dcgan's whole images (resized to ``image_size``,
    default ``data.patch_size``), paired A/B crops, or unpaired content and style crops. A folder
    the mode needs but the config lacks is a :class:`DatasetError`."""
    d = config.data
    if config.mode == "dcgan":
        if not d.style_dir:
            raise DatasetError("dcgan mode needs --style DIR")
        return StyleFolderDataset(d.style_dir, image_size or d.patch_size)
    if config.mode == "paired":
        if not d.paired_dir:
            raise DatasetError("paired mode needs --paired DIR (a folder with A/ and B/)")
        return PairedDataset(d.paired_dir, patch_size=d.patch_size)
    if not d.content_dir or not d.style_dir:
        raise DatasetError("unpaired mode needs --content DIR and --style DIR")
    return UnpairedDataset(d.content_dir, d.style_dir, patch_size=d.patch_size)
