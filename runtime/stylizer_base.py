"""The one interface of every stylizer :func:`~styleforge.runtime.open_bundle` returns.

A stylizer turns uint8 (or, for LUTs, uint16) ``[H, W, 3]`` RGB into the same shape and dtype
(:meth:`Stylizer.stylize_rgb`, the one method a sibling implements: the model stylizer in
:mod:`~styleforge.runtime.model_stylizer` runs tiles through an interpreter, the LUT stylizers in
:mod:`~styleforge.runtime.lut_stylizer` and :mod:`~styleforge.runtime.adaptive_lut` apply a
3D LUT at full resolution). Everything around it lives here once: PIL images and arrays with
alpha or one channel, ICC profiles, files read EXIF-upright and written atomically with alpha,
ICC and EXIF, and the checks of the pixels and the strength (:func:`checked_rgb`).
"""

from __future__ import annotations

import abc
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
from PIL import Image

from styleforge.runtime.contract import Artifact, Manifest
from styleforge.runtime.imageio import DEFAULT_MAX_PIXELS, open_image, to_rgb, to_uint8_array
from styleforge.runtime.writer import save_image

ImageLike = Union[Image.Image, np.ndarray]


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_rgb(rgb, strength: float, deep: bool = True) -> np.ndarray:
    """``rgb`` as a uint8 (or, with ``deep``, uint16) ``[H, W, 3]`` array; ValueError for anything
    else, or for a strength outside [0, 1]. The one check of a stylizer's pixels and strength."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    rgb = np.asarray(rgb)
    dtypes = (np.uint8, np.uint16) if deep else (np.uint8,)
    if rgb.dtype not in dtypes or rgb.ndim != 3 or rgb.shape[2] != 3:
        kinds = "uint8 or uint16" if deep else "uint8"
        raise ValueError(f"expected a {kinds} [H, W, 3] RGB array, got {rgb.dtype} {rgb.shape}")
    return rgb


class Stylizer(abc.ABC):
    """What a loaded bundle offers, whichever artifact it runs (a model, a ``.cube``, a per-photo LUT).

    - ``stylize(image, strength)``: a PIL image or uint8 array, any size, back as the same kind;
      ``stylize_batch`` over many; ``stylize_rgb``: the uint8 ``[H, W, 3]`` core the others use;
    - ``stylize_file(src, dst)``: a photo file in, a file out (alpha, ICC, EXIF kept);
    - ``manifest`` (the bundle's :class:`~styleforge.runtime.contract.Manifest`), ``artifact``
      (the :class:`~styleforge.runtime.contract.Artifact` it runs), ``bundle_dir``, ``info()``;
    - ``close()``, or ``with open_bundle(path) as stylizer:``.

    Siblings implement :meth:`stylize_rgb` (and may widen :meth:`stylize` / :meth:`stylize_file`,
    as the LUT stylizers do for 16-bit pixels); everything else is built on it here.
    """

    def __init__(self, artifact: Artifact, manifest: Manifest, bundle_dir: Path):
        self.artifact = artifact
        self.manifest = manifest
        self.bundle_dir = Path(bundle_dir)

    @abc.abstractmethod
    def stylize_rgb(self, rgb: np.ndarray, strength: float = 1.0,
                    on_tile: Optional[Callable[[], None]] = None) -> np.ndarray:
        """uint8 ``[H, W, 3]`` RGB -> uint8 ``[H, W, 3]``, any size; ``on_tile`` is called as work
        progresses (once per tile or strip)."""

    def stylize(self, image: ImageLike, strength: float = 1.0) -> ImageLike:
        """Stylize a PIL image or a uint8 numpy array; returns the same kind, same size.

        Arrays: ``[H, W, 3]`` RGB -> ``[H, W, 3]``; ``[H, W, 4]`` RGBA -> ``[H, W, 4]`` with the
        alpha untouched; ``[H, W]`` greyscale -> ``[H, W, 3]`` (the style adds colour). PIL
        images come back RGB, or RGBA when the input had transparency, with the input's ICC
        profile in ``info``. ``strength`` in [0, 1] blends with the original.
        """
        if isinstance(image, Image.Image):
            rgb, alpha = to_rgb(image)
            out = Image.fromarray(self.stylize_rgb(to_uint8_array(rgb), strength), "RGB")
            if alpha is not None:
                out.putalpha(alpha)
            if image.info.get("icc_profile"):
                out.info["icc_profile"] = image.info["icc_profile"]
            return out
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image array, got {arr.dtype}")
        if arr.ndim == 2:
            return self.stylize_rgb(np.repeat(arr[:, :, None], 3, axis=2), strength)
        if arr.ndim == 3 and arr.shape[2] == 4:
            out = np.empty_like(arr)
            out[:, :, :3] = self.stylize_rgb(np.ascontiguousarray(arr[:, :, :3]), strength)
            out[:, :, 3] = arr[:, :, 3]
            return out
        if arr.ndim == 3 and arr.shape[2] == 3:
            return self.stylize_rgb(arr, strength)
        raise ValueError(f"expected an image array [H, W], [H, W, 3] or [H, W, 4], got shape {arr.shape}")

    def stylize_batch(self, images: Iterable[ImageLike], strength: float = 1.0) -> list[ImageLike]:
        """:meth:`stylize` over many images (any mix of sizes and kinds)."""
        return [self.stylize(image, strength) for image in images]

    def stylize_file(
        self,
        src: Union[str, os.PathLike],
        dst: Union[str, os.PathLike],
        strength: float = 1.0,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
        quality: int = 95,
        on_tile: Optional[Callable[[], None]] = None,
    ) -> Path:
        """Read ``src`` (EXIF-upright), stylize, write ``dst`` atomically with alpha, ICC and EXIF."""
        if Path(src).resolve() == Path(dst).resolve():
            raise ValueError(f"{dst}: refusing to overwrite the input")
        loaded = open_image(src, max_pixels=max_pixels)
        rgb = np.asarray(loaded.rgb, dtype=np.uint8)  # open_image returns RGB; no extra convert() copy
        loaded.rgb = None  # type: ignore[assignment]  # keep one copy of a big photo, not two
        styled = self.stylize_rgb(rgb, strength, on_tile)
        del rgb
        return save_image(styled, dst, alpha=loaded.alpha, icc_profile=loaded.icc_profile, exif=loaded.exif, quality=quality)

    def _artifact_info(self) -> dict[str, Any]:
        """Which bundle and artifact this stylizer runs: the head of every :meth:`info`."""
        return {
            "bundle": str(self.bundle_dir),
            "artifact": self.artifact.key,
            "format": self.artifact.format,
            "precision": self.artifact.precision,
        }

    def info(self) -> dict[str, Any]:
        """What this stylizer runs (bundle, artifact, backend, ...), for reports and ``--verbose``."""
        return self._artifact_info()

    def close(self) -> None:  # noqa: B027  (optional: a stylizer holding nothing has nothing to release)
        """Release the interpreter or threads; the stylizer is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
