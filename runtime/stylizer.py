"""The runtime API apps embed: ``Stylizer.from_bundle(path).stylize(image)``.

Needs numpy, Pillow and one interpreter. Choosing what to run:

- A bundle with a LUT (``look.cube`` of a look, or of a model whose colour part passed the
  export's gate) runs the LUT under ``artifact="auto"``: exact, the fastest, no interpreter.
- ``backend="auto"`` tries, in order, ``litert``, ``onnxruntime``, ``coreml`` (macOS) and takes
  the first that is installed and has an artifact in the bundle.
- A bundle's TorchScript (``model.pt``) runs only when asked for (``artifact="torch"`` or
  ``backend="torch"``): ``torch.jit.load`` executes what the file says, so it is for trusted
  files only (a one-line note says so on stderr).
- ``artifact="auto"`` takes the backend's preferred artifact. For TFLite that is
  ``tflite_fp16`` (fp32 quality, half the file; the CPU runs it in fp32), then ``tflite_fp32``,
  ``tflite_dynamic_int8``, ``tflite_int8``. Ask for ``"int8"`` explicitly for the smallest,
  integer-only model (NPUs, Edge TPU delegates).

A bundle is untrusted input. Before the first image the manifest is validated field by field,
every artifact file must lie inside the bundle with the manifest's size, the chosen file's
sha256 must match (``verify=False`` skips only that) and the interpreter is built from the
verified bytes (:mod:`~styleforge.runtime.manifest`, :mod:`~styleforge.runtime.bundle_files`);
then the input/output shape and dtype the interpreter reports must match the artifact's
:class:`~styleforge.runtime.contract.TensorSpec`.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from styleforge.runtime import bundle_files, tensors, tiling
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer
from styleforge.runtime.backends import (
    Backend,
    BackendError,
    BackendOptions,
    available_backends,
    backend_formats,
    load_backend,
)
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.lut_stylizer import LutStylizer
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.stylizer_base import (  # noqa: F401  (ImageLike, sha256_of: re-exported)
    BaseStylizer,
    ImageLike,
    checked_rgb,
    sha256_of,
)

AUTO_BACKENDS = ("litert", "onnxruntime", "coreml", "torch")  # torch only for an artifact asked for
TORCHSCRIPT_NOTE = ("note: {path} is TorchScript, which runs whatever code the file holds: "
                    "load it only from bundles you trust")
_TFLITE_ORDER = ("tflite_fp16", "tflite_fp32", "tflite_dynamic_int8", "tflite_int8")
ARTIFACT_PREFERENCE = {
    "litert": _TFLITE_ORDER,
    "tflite-runtime": _TFLITE_ORDER,
    "onnxruntime": ("onnx",),
    "coreml": ("coreml_fp16", "coreml_fp32"),
    "torch": ("torchscript",),
}
ARTIFACT_ALIASES = {
    "int8": "tflite_int8",
    "fp16": "tflite_fp16",
    "fp32": "tflite_fp32",
    "dynamic_int8": "tflite_dynamic_int8",
    "dynamic-int8": "tflite_dynamic_int8",
    "tflite": "tflite_fp16",
    "coreml": "coreml_fp16",
    "torch": "torchscript",
    "lut": "lut_cube",
    "cube": "lut_cube",
    "adaptive": "lut_adaptive",
}
# applied by runtime/lut_stylizer.py (and adaptive_lut.py, a LUT per photo): no interpreter, no tiles
LUT_FORMATS = ("cube", "adaptive-lut")
DEFAULT_DYNAMIC_TILE = 512  # tile edge for models without a fixed input size

def choose(manifest: Manifest, artifact: str = "auto", backend: str = "auto") -> tuple[Artifact, str]:
    """Pick (artifact, backend name) from the bundle and what is installed; see the module doc."""
    artifacts = manifest.artifacts
    installed = available_backends()
    if artifact != "auto":
        key = ARTIFACT_ALIASES.get(artifact, artifact)
        if key not in artifacts:
            raise BundleError(f"bundle has no {key!r} artifact; it has {', '.join(artifacts) or 'none'}")
        chosen = artifacts[key]
        if backend != "auto":
            if chosen.format not in backend_formats(backend):
                raise BackendError(f"backend {backend!r} cannot run {key!r} (format {chosen.format})")
            return chosen, backend
        for name in AUTO_BACKENDS:
            if name in installed and chosen.format in backend_formats(name):
                return chosen, name
        raise BackendError(f"no installed backend runs {key!r} (format {chosen.format}); installed: {', '.join(installed) or 'none'}")
    # auto never picks TorchScript (model.pt): torch.jit.load runs the file's code
    candidates = [backend] if backend != "auto" else [b for b in AUTO_BACKENDS if b in installed and b != "torch"]
    for name in candidates:
        for key in ARTIFACT_PREFERENCE.get(name, ()):
            if key in artifacts:
                return artifacts[key], name
        for a in artifacts.values():  # an artifact under a key we do not know, in a format we run
            if a.format in backend_formats(name):
                return a, name
    if backend != "auto":
        raise BundleError(f"bundle has no artifact backend {backend!r} can run; it has {', '.join(artifacts) or 'none'}")
    torch_hint = ("; its TorchScript runs with --artifact torch (trusted bundles only)"
                  if "torchscript" in artifacts and "torch" in installed else "")
    raise BackendError(
        f"no installed backend can run this bundle's artifacts ({', '.join(artifacts) or 'none'}); "
        f"installed: {', '.join(installed) or 'none'} (pip install ai-edge-litert){torch_hint}"
    )


def _lut_artifact(manifest: Manifest, artifact: str, backend: str) -> Optional[str]:
    """The LUT artifact key to run: asked for (``lut``/``cube``/its key), or ``auto`` (any
    backend) on a bundle whose look is its LUT: one with no model artifact, or whose ``.cube``
    passed the export gate (the model's colour part reproduces the model, so the LUT is exact
    and the fastest); else ``None`` (a model runs)."""
    key = ARTIFACT_ALIASES.get(artifact, artifact)
    if key in manifest.artifacts and manifest.artifacts[key].format in LUT_FORMATS:
        return key
    if artifact == "auto" and backend in ("auto", "lut"):
        luts = [k for k, a in manifest.artifacts.items() if a.format in LUT_FORMATS]
        models = [a for k, a in manifest.artifacts.items()  # a LUT's own mobile graphs (lut_onnx...) do not count
                  if a.format in ("tflite", "onnx", "coreml", "torchscript") and not k.startswith("lut_")]
        gated = manifest.artifacts.get("lut_cube") is not None and \
            manifest.artifacts["lut_cube"].fidelity.get("verified") is True
        if luts and (not models or gated or backend == "lut"):
            return "lut_cube" if "lut_cube" in luts else luts[0]
    return None


def _adaptive_or_cube(manifest: Manifest, artifact: str, key: str, adaptive: Optional[bool]) -> str:
    """Between a bundle's per-photo LUT (``lut_adaptive``) and its single ``.cube`` (``lut_cube``):
    ``adaptive=None`` takes the per-photo one for ``artifact`` ``auto``/``lut`` when the bundle
    has it (``cube``/``lut_cube`` name the file); ``True`` requires it; ``False`` takes the ``.cube``."""
    has = "lut_adaptive" in manifest.artifacts
    if adaptive is True:
        if not has:
            raise BundleError("bundle has no per-photo LUT (lut_adaptive): it was not exported from an "
                              "image-adaptive colour model")
        return "lut_adaptive"
    if adaptive is False:
        if key == "lut_adaptive" and artifact not in ("auto", "lut"):
            raise BundleError(f"artifact {artifact!r} is the per-photo LUT; adaptive=False asks for the .cube")
        return "lut_cube" if key == "lut_adaptive" else key
    return "lut_adaptive" if has and artifact in ("auto", "lut") and key in ("lut_cube", "lut_adaptive") else key


class Stylizer(BaseStylizer):
    """One loaded model plus everything needed to stylize images of any size with it (tiles).

    :meth:`from_bundle` is the one place that chooses what a bundle runs: this model stylizer,
    a :class:`~styleforge.runtime.lut_stylizer.LutStylizer` or an
    :class:`~styleforge.runtime.adaptive_lut.AdaptiveLutStylizer` (siblings behind
    :class:`~styleforge.runtime.stylizer_base.BaseStylizer`).
    """

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

    @classmethod
    def from_bundle(
        cls,
        path: Union[str, os.PathLike],
        artifact: str = "auto",
        backend: str = "auto",
        threads: Optional[int] = None,
        delegate: Optional[str] = None,
        providers: Optional[Iterable[str]] = None,
        device: str = "cpu",
        delegate_options: Optional[dict[str, str]] = None,
        tile: Optional[int] = None,
        tile_overlap: Optional[int] = None,
        verify: bool = True,
        adaptive: Optional[bool] = None,
    ) -> BaseStylizer:
        """Load a bundle folder. ``artifact``: ``"auto"``, a manifest key (``tflite_int8``, ``onnx``,
        ...) or an alias (``int8``, ``fp16``, ``fp32``, ``torch``). ``backend``: ``"auto"``,
        ``litert``, ``tflite-runtime``, ``onnxruntime``, ``coreml``, ``torch``. ``threads``:
        interpreter threads. ``delegate`` (+ ``delegate_options``): an external TFLite delegate
        ``.so`` (Edge TPU, vendor NPU). ``providers``: ONNX Runtime execution providers in order.
        ``device``: ``cpu``/``cuda`` for torch, compute units for Core ML. ``tile``/``tile_overlap``:
        tile edge for dynamic-size models and the overlap between tiles. ``verify=False`` skips
        the sha256 check of the model file (development only; every other check still runs). ``adaptive`` (LUT bundles of an image-adaptive
        model): ``None`` = each photo gets its own LUT when ``artifact`` is ``auto``/``lut`` and the
        bundle has one (``lut_adaptive``); ``False`` = the single baked ``look.cube``.
        """
        bundle = Path(path)
        manifest = load_manifest(bundle)
        lut_key = _lut_artifact(manifest, artifact, backend)
        if lut_key is not None:
            lut_key = _adaptive_or_cube(manifest, artifact, lut_key, adaptive)
            if lut_key == "lut_adaptive":
                return AdaptiveLutStylizer.from_manifest(bundle, manifest, lut_key, threads=threads, verify=verify)
            return LutStylizer.from_manifest(bundle, manifest, lut_key, threads=threads, verify=verify)
        if adaptive:
            raise BundleError("adaptive=True applies to LUT bundles (artifact 'lut'); this one runs a model")
        chosen, backend_name = choose(manifest, artifact, backend)
        # confined, sized, hashed (verify), sniffed; the interpreter gets these verified bytes
        model_path, content = bundle_files.open_artifact(bundle, chosen, verify)
        options = BackendOptions(
            threads=threads,
            delegate=delegate,
            delegate_options=dict(delegate_options or {}),
            providers=tuple(providers) if providers else None,
            device=device,
        )
        if chosen.format == "torchscript":
            print(TORCHSCRIPT_NOTE.format(path=model_path), file=sys.stderr)
        loaded = load_backend(backend_name, model_path, chosen, options, content=content)
        return cls(loaded, chosen, manifest, bundle, tile=tile, tile_overlap=tile_overlap)

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
        if strength == 0.0:
            return rgb.copy()
        height, width = rgb.shape[:2]
        return tiling.stylize_tiled(
            rgb, self._run_tile, self.tile_shape(height, width), self.tile_overlap, strength, on_tile, align=self.stride
        )

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


def open_stylizer(path: Union[str, os.PathLike], **options: Any) -> BaseStylizer:
    """The stylizer a bundle runs (model, LUT or per-photo LUT): :meth:`Stylizer.from_bundle`'s
    choice, under a name that does not suggest the model stylizer."""
    return Stylizer.from_bundle(path, **options)
