"""Runtime backends (LiteRT, ONNX Runtime, Core ML, PyTorch): one explicit registry, lazy imports.

:data:`BACKENDS` maps each backend's name to its class; the class is the loader. Importing these
classes costs nothing heavy: each imports its interpreter library inside ``__init__``, when
:func:`load_backend` builds it, so ``import styleforge.runtime`` costs numpy and Pillow only.
``available_backends()`` answers from package metadata (``importlib.util.find_spec``) without
importing anything heavy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Optional

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions
from styleforge.runtime.backends.coreml_backend import CoreMLBackend
from styleforge.runtime.backends.litert_backend import LiteRTBackend, TFLiteRuntimeBackend
from styleforge.runtime.backends.ort_backend import OnnxRuntimeBackend
from styleforge.runtime.backends.torch_backend import TorchBackend
from styleforge.runtime.contract import Artifact

# backend name -> its class (``formats``: the artifact formats it runs; ``modules``: the
# libraries it imports, in the order it tries them)
BACKENDS: dict[str, type[Backend]] = {
    "litert": LiteRTBackend,
    "tflite-runtime": TFLiteRuntimeBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "coreml": CoreMLBackend,
    "torch": TorchBackend,
}

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendOptions",
    "available_backends",
    "backend_class",
    "backend_formats",
    "load_backend",
]


def _installed(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_backends() -> list[str]:
    """Backends whose library is installed here (Core ML only on macOS), without importing them."""
    names = []
    for name, backend in BACKENDS.items():
        if name == "coreml" and sys.platform != "darwin":
            continue
        if any(_installed(m.split(".")[0]) for m in backend.modules):  # top level: finding it imports nothing
            names.append(name)
    return names


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``; BackendError naming the choices for an unknown one."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]


def backend_formats(name: str) -> tuple[str, ...]:
    """Artifact formats (``tflite``, ``onnx``, ...) that backend ``name`` can run."""
    return backend_class(name).formats


def load_backend(
    name: str,
    model_path: str | os.PathLike,
    artifact: Optional[Artifact] = None,
    options: Optional[BackendOptions] = None,
    content: Optional[bytes] = None,
) -> Backend:
    """Build backend ``name`` around ``model_path`` (imports its library now, once).

    ``content``: the model file's bytes, already verified against the manifest
    (:func:`styleforge.runtime.bundle_files.read_artifact`); the interpreter is built from them
    and ``model_path`` only names the model in messages. Core ML always loads by path."""
    cls = backend_class(name)
    if artifact is not None and artifact.format not in cls.formats:
        raise BackendError(
            f"backend {name!r} cannot run {artifact.key!r} (format {artifact.format}); it runs {', '.join(cls.formats)}"
        )
    return cls(model_path, artifact, options or BackendOptions(), content=content)
