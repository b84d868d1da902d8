"""The runtime's look-recipe path: a bundle's recipe (``recipe.json``: its ``look.cube`` and local
operators) or its ``look.cube`` alone, applied to the whole photo at full resolution, no tiling.

A ``.cube`` bundle is the one-step recipe ``[colour_lut]`` and keeps the exact 8-/16-bit LUT path
(:class:`~styleforge.runtime.lut.LutApplier`: one gather per pixel). A recipe with local operators
(:mod:`styleforge.runtime.recipe`) runs through :class:`~styleforge.runtime.look_strips.RecipeRenderer`:
full resolution in strips over threads, its whole-photo quantities (blurred fields, vignette
geometry, grain statistics) computed once per photo, so vignette geometry and blur radii
(fractions of the short side) are the photo's own whatever its size, and the output does not
depend on the strips; 8-bit photos take its LUT steps through a 256^3 table of 16-bit results.

``open_bundle(path, artifact="lut")`` returns a :class:`LutStylizer`, a sibling of the
model stylizer behind :class:`~styleforge.runtime.stylizer_base.Stylizer`, so ``stylize``,
``stylize_batch`` and ``stylize_file`` work as for a model (alpha, ICC and EXIF carried over the
same way).
Differences: no interpreter, no tiles; ``uint16`` arrays stay 16-bit; and a 16-bit RGB TIFF
file stays 16-bit end to end when the optional ``tifffile`` package is installed (Pillow has no
16-bit RGB mode, so without it such a file is read as 8-bit, as everywhere else).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
from PIL import Image

from styleforge.atomic import replacing
from styleforge.runtime import bundle_files
from styleforge.runtime import lut as rlut
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.imageio import DEFAULT_MAX_PIXELS, ImageError
from styleforge.runtime.look_strips import RecipeRenderer
from styleforge.runtime.manifest import strict_json
from styleforge.runtime.recipe import Recipe, colour_recipe, parse_recipe
from styleforge.runtime.stylizer_base import ImageLike, Stylizer, checked_rgb

LUT_KEYS = ("lut_cube",)
RECIPE_KEY = "recipe"
TIFF_SUFFIXES = (".tif", ".tiff")


class LutStylizer(Stylizer):
    """A look recipe (or a colour look's ``.cube``) from a bundle: ``stylize`` any size, 8- or
    16-bit. ``recipe`` is the look; ``lut`` its (first) colour table, for the fast LUT path."""

    def __init__(self, lut: rlut.Lut3D, artifact: Artifact, manifest: Manifest, bundle_dir: Path,
                 threads: Optional[int] = None, recipe: Optional[Recipe] = None):
        super().__init__(artifact, manifest, bundle_dir)
        self.lut = lut
        self.recipe = recipe if recipe is not None else colour_recipe(artifact.file, lut.table)
        self.applier = rlut.LutApplier(lut, threads)
        self.renderer = RecipeRenderer(self.recipe, threads)
        self.tile = None
        self.tile_overlap = None

    @classmethod
    def from_manifest(cls, bundle: Path, manifest: Manifest, key: str = "lut_cube",
                      threads: Optional[int] = None, verify: bool = True) -> LutStylizer:
        if manifest.artifacts.get(key) is not None and manifest.artifacts[key].format == "recipe":
            return cls._from_recipe(Path(bundle), manifest, key, threads, verify)
        artifact, lut = _read_cube(Path(bundle), manifest, key, verify)
        return cls(lut, artifact, manifest, Path(bundle), threads)

    @classmethod
    def _from_recipe(cls, bundle: Path, manifest: Manifest, key: str, threads: Optional[int],
                     verify: bool) -> LutStylizer:
        recipe, luts = read_recipe(bundle, manifest, key, verify)
        first = luts[0] if luts else rlut.Lut3D(rlut.identity_table(2))
        return cls(first, manifest.artifacts[key], manifest, bundle, threads, recipe)

    # -- pixels ------------------------------------------------------------------------------

    @property
    def _one_lut(self) -> bool:
        """The look is one colour table: the exact 8-/16-bit LUT path (``self.applier``) runs it."""
        return self.recipe.is_colour_only and len(self.recipe.steps) == 1

    def stylize_rgb(self, rgb: np.ndarray, strength: float = 1.0,
                    on_tile: Optional[Callable[[], None]] = None) -> np.ndarray:
        """uint8 (or uint16) ``[H, W, 3]`` RGB -> the same dtype and shape, full resolution."""
        rgb = checked_rgb(rgb, strength)
        if strength == 0.0:
            return rgb.copy()
        if self._one_lut:
            out = self.applier.apply(rgb, strength)
        else:
            out = self.renderer.render(rgb, strength)
        if on_tile is not None:
            on_tile()
        return out

    def stylize(self, image: ImageLike, strength: float = 1.0) -> ImageLike:
        """As :meth:`Stylizer.stylize`; ``uint16`` arrays (``[H, W, 3]`` or ``[H, W, 4]``) stay 16-bit.

        An RGB or RGBA PIL image of a colour look goes through :meth:`LutApplier.apply_image`, in
        Pillow's own pixel memory: the same pixels as through arrays, without their conversions."""
        if isinstance(image, Image.Image) and 0.0 < strength <= 1.0:
            out = self.applier.apply_image(image, strength) if self._one_lut else self._recipe_image(image, strength)
            if out is not None:
                if image.info.get("icc_profile"):
                    out.info["icc_profile"] = image.info["icc_profile"]
                return out
        if isinstance(image, np.ndarray) and image.dtype == np.uint16 and image.ndim == 3:
            if image.shape[2] == 3:
                return self.stylize_rgb(image, strength)
            if image.shape[2] == 4:
                out = image.copy()
                out[:, :, :3] = self.stylize_rgb(np.ascontiguousarray(image[:, :, :3]), strength)
                return out
        return super().stylize(image, strength)

    def _recipe_image(self, image: Image.Image, strength: float) -> Optional[Image.Image]:
        """An RGB/RGBA PIL image through the recipe in Pillow's own pixel words: pasted once into a
        ``[H, W, 4]`` buffer, rendered in place (alpha carried), handed back without a copy; None
        where :func:`~styleforge.runtime.lut.image_words` cannot lend the memory."""
        strips = rlut.row_strips(image.size[1], image.size[0], self.renderer.threads)
        pixels = rlut.image_words(image, strips, self.renderer.map)
        if pixels is None:
            return None
        self.renderer.render(pixels, strength, out=pixels)
        return rlut.image_over(pixels, image.mode)

    def stylize_file(self, src: Union[str, os.PathLike], dst: Union[str, os.PathLike], strength: float = 1.0,
                     max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, quality: int = 95,
                     on_tile: Optional[Callable[[], None]] = None) -> Path:
        """As :meth:`Stylizer.stylize_file`; a 16-bit RGB(A) TIFF written to a TIFF stays 16-bit."""
        if Path(src).resolve() == Path(dst).resolve():
            raise ValueError(f"{dst}: refusing to overwrite the input")
        if Path(src).suffix.lower() in TIFF_SUFFIXES and Path(dst).suffix.lower() in TIFF_SUFFIXES:
            deep = read_tiff16(src, max_pixels)
            if deep is not None:
                pixels, icc = deep
                out = self.stylize(pixels, strength)
                if on_tile is not None:
                    on_tile()
                return write_tiff16(out, dst, icc)
        return super().stylize_file(src, dst, strength, max_pixels, quality, on_tile)

    def info(self) -> dict[str, Any]:
        return {
            **self._artifact_info(),
            "backend": "lut",
            "lut_size": self.lut.size,
            "recipe": self.recipe.describe(),
            "threads": self.applier.threads,
            "interpolation": "trilinear",
            "tile": None,
        }

    def close(self) -> None:
        self.applier.close()
        self.renderer.close()


def read_recipe(bundle: Path, manifest: Manifest, key: str = RECIPE_KEY,
                verify: bool = True) -> tuple[Recipe, list[rlut.Lut3D]]:
    """The bundle's recipe artifact ``key`` (untrusted: strict JSON, :func:`parse_recipe`) with the
    table of each ``colour_lut`` step read from the ``.cube`` artifact of that file name (sized and
    hashed like every artifact); returns the recipe, tables loaded, and those LUTs in step order."""
    artifact, data = bundle_files.artifact_bytes(bundle, manifest, key, verify)
    where = f"{bundle}: artifact {key!r}: {artifact.file}"
    try:
        recipe = parse_recipe(strict_json(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError, RecipeError, BundleError
        raise BundleError(f"{where}: {err}") from None
    cubes = {a.file: k for k, a in manifest.artifacts.items() if a.format == "cube"}
    luts = []
    for step in recipe.steps:
        if step.op == "colour_lut":
            if step.lut not in cubes:
                raise BundleError(f"{where}: its colour_lut {step.lut!r} is not a .cube artifact of the bundle")
            luts.append(_read_cube(bundle, manifest, cubes[step.lut], verify)[1])
    tables = {step.lut: lut.table for step, lut in zip((s for s in recipe.steps if s.op == "colour_lut"), luts)}
    return recipe.with_tables(tables), luts


def _read_cube(bundle: Path, manifest: Manifest, key: str, verify: bool) -> tuple[Artifact, rlut.Lut3D]:
    artifact, data = bundle_files.artifact_bytes(bundle, manifest, key, verify)
    try:
        lut = rlut.parse_cube(data.decode("utf-8", errors="replace"), f"{bundle}: artifact {key!r}: {artifact.file}")
    except rlut.LutError as err:
        raise BundleError(str(err)) from None
    expected = artifact.extra.get("lut_size")
    if expected is not None and lut.size != expected:
        raise BundleError(f"{bundle}: artifact {key!r}: {artifact.file}: LUT_3D_SIZE {lut.size} but the "
                          f"manifest's extra.lut_size is {expected}")
    return artifact, lut


# ------------------------------------------------------------------------------ 16-bit TIFF

_ICC_TAG = 34675
_ORIENT = {  # EXIF orientation -> how to make the pixels upright ([H, W, C] arrays)
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 1)[::-1],
    8: lambda a: np.rot90(a, 1),
}


def read_tiff16(path: Union[str, os.PathLike], max_pixels: Optional[int] = DEFAULT_MAX_PIXELS
                ) -> Optional[tuple[np.ndarray, Optional[bytes]]]:
    """A 16-bit RGB/RGBA TIFF -> (upright uint16 ``[H, W, 3|4]``, ICC bytes), or ``None`` when the
    file is not 16-bit RGB(A) or ``tifffile`` is not installed (the 8-bit path then handles it)."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.dtype != np.uint16 or len(page.shape) != 3 or page.shape[-1] not in (3, 4):
                return None
            if max_pixels is not None and page.shape[0] * page.shape[1] > max_pixels:
                raise ImageError(f"{path}: {page.shape[1]}x{page.shape[0]} exceeds the pixel limit of "
                                 f"{max_pixels / 1e6:.0f} MP (raise the limit to allow it)")
            pixels = page.asarray()
            icc_tag = page.tags.get(_ICC_TAG)
            orient_tag = page.tags.get(274)
            icc = bytes(icc_tag.value) if icc_tag is not None else None
            orientation = int(orient_tag.value) if orient_tag is not None else 1
    except ImageError:
        raise
    except Exception as err:  # tifffile raises many types for broken files
        raise ImageError(f"{path}: unreadable TIFF ({err})") from None
    if orientation in _ORIENT:
        pixels = _ORIENT[orientation](pixels)
    return np.ascontiguousarray(pixels), icc


def write_tiff16(pixels: np.ndarray, path: Union[str, os.PathLike], icc: Optional[bytes] = None) -> Path:
    """Write uint16 ``[H, W, 3|4]`` as a TIFF atomically (temp name + rename), ICC profile kept."""
    import tifffile


    extratags = [(_ICC_TAG, 7, len(icc), icc, True)] if icc else []
    extrasamples = (2,) if pixels.shape[2] == 4 else None
    with replacing(Path(path)) as tmp:
        tifffile.imwrite(tmp, pixels, photometric="rgb", compression="zlib", extratags=extratags,
                         extrasamples=extrasamples)
    return Path(path)
