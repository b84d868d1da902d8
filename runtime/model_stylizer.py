"""The model stylizer: one interpreter around one model artifact, images of any size in tiles.

:func:`~styleforge.runtime.open_bundle` builds it when a bundle runs a model (TFLite, ONNX,
Core ML, TorchScript); it converts uint8 RGB to and from the artifact's
:class:`~styleforge.runtime.contract.TensorSpec` (:mod:`~styleforge.runtime.tensors`) and cuts
images the model cannot take whole into overlapping tiles (:mod:`~styleforge.runtime.tiling`).
The interpreter's own input/output shape and dtype must match the artifact's spec.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from styleforge.runtime import tensors, tiling
from styleforge.runtime.backends import Backend
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.stylizer_base import Stylizer, checked_rgb

DEFAULT_DYNAMIC_TILE = 512  # tile edge for models without a fixed input size


class ModelStylizer(Stylizer):
    """One loaded model plus everything needed to stylize images of any size with it (tiles)."""

    def __init__(
        self,
        backend: Backend,
        artifact: Artifact,
        manifest: Manifest,
        bundle_dir: Path,
        tile: Optional[int] = None,
        tile_overlap: Optional[int] = None,
    ):
        super().__init__(artifact, manifest, bundle_dir)
        self.backend = backend
        what = f"{self.bundle_dir}: artifact {artifact.key!r}"
        self.input_spec = tensors.effective_spec(artifact.input, backend.input_details(), f"{what} input")
        self.output_spec = tensors.effective_spec(artifact.output, backend.output_details(), f"{what} output")
        self.stride = int(manifest.model.get("stride") or 1)
        self.fixed_size = self.input_spec.height is not None and self.input_spec.width is not None
        if self.fixed_size and tile is not None and tile not in (self.input_spec.height, self.input_spec.width):
            raise BundleError(
                f"{what} has a fixed {self.input_spec.height}x{self.input_spec.width} input; "
                f"tile size {tile} is not possible (omit it)"
            )
        if tile is not None and not self.fixed_size:
            tile = max(self.stride, math.ceil(tile / self.stride) * self.stride)
        self.tile = tile
        self.tile_overlap = tile_overlap

    # -- the core: uint8 RGB in, uint8 RGB out -------------------------------------------------

    def tile_shape(self, height: int, width: int) -> tuple[int, int]:
        """Model input (height, width) used for an image of this size."""
        if self.fixed_size:
            return int(self.input_spec.height), int(self.input_spec.width)
        edge = self.tile or DEFAULT_DYNAMIC_TILE

        def fit(n: int) -> int:
            return min(edge, math.ceil(n / self.stride) * self.stride)

        return fit(height), fit(width)

    def _run_tile(self, pixels: np.ndarray) -> np.ndarray:
        raw = self.backend.run(tensors.to_input(pixels, self.input_spec))
        styled = tensors.from_output(raw, self.output_spec)
        if styled.shape != pixels.shape:
            raise BundleError(
                f"artifact {self.artifact.key!r} returned {styled.shape[1]}x{styled.shape[2]} for a "
                f"{pixels.shape[1]}x{pixels.shape[2]} input; the runtime expects same-size outputs"
            )
        return styled

    def stylize_unrounded(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 ``[H, W, 3]`` of exactly one tile -> float32 ``[H, W, 3]`` in [0, 255], not rounded.

        ``stylize_rgb`` of such an image returns exactly ``tensors.to_uint8`` of this (one tile:
        no padding, no blending). The export gate measures these values, since rounding would
        hide differences below one level; a test holds the two paths to the same pixels.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 [H, W, 3] RGB array, got {rgb.dtype} {rgb.shape}")
        if self.tile_shape(*rgb.shape[:2]) != rgb.shape[:2]:
            raise ValueError(f"a {rgb.shape[0]}x{rgb.shape[1]} image is not one tile of this model "
                             f"({self.tile_shape(*rgb.shape[:2])}); use stylize_rgb")
        return self._run_tile(np.ascontiguousarray(rgb[None]))[0]

    def stylize_rgb(self, rgb: np.ndarray, strength: float = 1.0, on_tile: Optional[Callable[[], None]] = None) -> np.ndarray:
        """uint8 ``[H, W, 3]`` RGB -> uint8 ``[H, W, 3]``, any size (tiled / padded as needed)."""
        rgb = checked_rgb(rgb, strength, deep=False)
        height, width = rgb.shape[:2]
        self._check_whole_photo(height, width)
        if strength == 0.0:
            return rgb.copy()
        return tiling.stylize_tiled(
            rgb, self._run_tile, self.tile_shape(height, width), self.tile_overlap, strength, on_tile, align=self.stride
        )

    def _check_whole_photo(self, height: int, width: int) -> None:
        """A whole-photo artifact (a look recipe's graph: its radii and vignette are fixed for its
        size) runs on photos of exactly its input size, never in tiles; ValueError otherwise."""
        if not self.artifact.extra.get("whole_photo") or (height, width) == self.tile_shape(height, width):
            return
        h, w = self.tile_shape(height, width)
        raise ValueError(f"artifact {self.artifact.key!r} is a look recipe's graph fixed at {h}x{w} (whole photo, "
                         f"no tiles); this photo is {height}x{width}: resize it to {h}x{w} first, or run the "
                         f"recipe itself at any size (artifact auto)")

    def info(self) -> dict[str, Any]:
        return {
            **self._artifact_info(),
            "input": self.input_spec.to_dict(),
            "tile": self.tile,
            "tile_overlap": self.tile_overlap,
            **self.backend.info(),
        }

    def close(self) -> None:
        self.backend.close()
