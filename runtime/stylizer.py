"""The runtime's one entry point: ``open_bundle(path).stylize(image)``.

:func:`open_bundle` loads a bundle folder and returns a
:class:`~styleforge.runtime.stylizer_base.Stylizer`: the model stylizer
(:mod:`~styleforge.runtime.model_stylizer`), the ``.cube`` stylizer
(:mod:`~styleforge.runtime.lut_stylizer`) or the per-photo LUT stylizer
(:mod:`~styleforge.runtime.adaptive_lut`), whichever the bundle and the options choose.
Needs numpy, Pillow and one interpreter. Choosing what to run:

- A bundle with a look recipe (``recipe.json``: its colour LUT and local operators) or a LUT
  (``look.cube`` of a look, or of a model whose colour part passed the export's gate) runs it
  under ``artifact="auto"``: exact at any size, no interpreter. ``artifact="cube"`` runs a
  recipe bundle's colour part alone.
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

import os
import sys
from pathlib import Path
from typing import Iterable, Optional, Union

from styleforge.runtime import bundle_files
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer
from styleforge.runtime.backends import (
    BackendError,
    BackendOptions,
    available_backends,
    backend_formats,
    load_backend,
)
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.lut_stylizer import LutStylizer
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.model_stylizer import ModelStylizer
from styleforge.runtime.stylizer_base import Stylizer

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
# applied by runtime/lut_stylizer.py (a look recipe, or its one-step form: a .cube) and adaptive_lut.py
# (a LUT per photo): no interpreter, no tiles
LUT_FORMATS = ("recipe", "cube", "adaptive-lut")

def choose(manifest: Manifest, artifact: str = "auto", backend: str = "auto") -> tuple[Artifact, str]:
    """Pick (artifact, backend name) from the bundle and what is installed; see the module doc."""
    artifacts = manifest.artifacts
    installed = available_backends()
    if artifact != "auto":
        key = ARTIFACT_ALIASES.get(artifact, artifact)
        if key not in artifacts:
            raise BundleError(f"bundle has no {key!r} artifact; it has {', '.join(artifacts) or 'none'}")
        chosen = artifacts[key]
        if chosen.format == "ffmpeg":  # a recipe's filtergraph: text for ffmpeg, never run here
            raise BundleError(f"{key!r} is an ffmpeg filtergraph, run by ffmpeg itself (in the bundle folder: "
                              f"ffmpeg -i IN -/vf {chosen.file} OUT); stylize runs the bundle's recipe")
        if backend != "auto":
            if chosen.format not in backend_formats(backend):
                raise BackendError(f"backend {backend!r} cannot run {key!r} (format {chosen.format})")
            return chosen, backend
        for name in AUTO_BACKENDS:
            if name in installed and chosen.format in backend_formats(name):
                return chosen, name
        if chosen.format == "coreml" and sys.platform != "darwin":
            raise BackendError(f"{key!r} is a Core ML model: only macOS runs it (this is {sys.platform}); "
                               f"choose another artifact (styleforge info BUNDLE lists them)")
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
    if key == "lut_cube" and artifact == "lut" and "recipe" in manifest.artifacts:
        return "recipe"  # a recipe bundle's look is its recipe; --artifact cube names its colour part alone
    if key in manifest.artifacts and manifest.artifacts[key].format in LUT_FORMATS:
        return key
    if artifact == "auto" and backend in ("auto", "lut"):
        luts = [k for k, a in manifest.artifacts.items() if a.format in LUT_FORMATS]
        models = [a for k, a in manifest.artifacts.items()  # a LUT's own mobile graphs (lut_onnx...) do not count
                  if a.format in ("tflite", "onnx", "coreml", "torchscript") and not k.startswith("lut_")]
        gated = manifest.artifacts.get("lut_cube") is not None and \
            manifest.artifacts["lut_cube"].fidelity.get("verified") is True
        # a recipe runs at any size; its graphs (onnx, tflite_*) only at their one size, when named
        if luts and (not models or gated or backend == "lut" or "recipe" in luts):
            return next((k for k in ("recipe", "lut_cube") if k in luts), luts[0])
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


def open_bundle(
    path: Union[str, os.PathLike],
    *,
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
) -> Stylizer:
    """Load a bundle folder and return the :class:`Stylizer` it runs (see the module doc).

    ``artifact``: ``"auto"``, a manifest key (``tflite_int8``, ``onnx``, ...) or an alias
    (``int8``, ``fp16``, ``fp32``, ``torch``, ``lut``). ``backend``: ``"auto"``, a name of
    :data:`~styleforge.runtime.backends.BACKENDS` (``litert``, ``tflite-runtime``,
    ``onnxruntime``, ``coreml``, ``torch``) or ``lut``. ``threads``: interpreter threads.
    ``delegate`` (+ ``delegate_options``): an external TFLite delegate ``.so`` (Edge TPU, vendor
    NPU). ``providers``: ONNX Runtime execution providers in order. ``device``: ``cpu``/``cuda``
    for torch, compute units for Core ML. ``tile``/``tile_overlap``: tile edge for dynamic-size
    models and the overlap between tiles. ``verify=False`` skips the sha256 check of the model
    file (development only; every other check still runs). ``adaptive`` (LUT bundles of an
    image-adaptive model): ``None`` = each photo gets its own LUT when ``artifact`` is
    ``auto``/``lut`` and the bundle has one (``lut_adaptive``); ``False`` = the single baked
    ``look.cube``; ``True`` requires the per-photo LUT.
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
    return ModelStylizer(loaded, chosen, manifest, bundle, tile=tile, tile_overlap=tile_overlap)
