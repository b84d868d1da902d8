"""Runtime backends (LiteRT, ONNX Runtime, Core ML, PyTorch), each imported lazily.

``load_backend(name, model_path, artifact, options)`` builds one interpreter around one model
file, once. The interpreter library is imported only inside the chosen backend's module, so
``import styleforge.runtime`` costs numpy and Pillow only. ``available_backends()`` answers
from package metadata (``importlib.util.find_spec``) without importing anything heavy.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Optional

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions
from styleforge.runtime.contract import Artifact

# backend name -> (module, class, artifact formats it runs)
BACKENDS = {
    "litert": ("styleforge.runtime.backends.litert_backend", "LiteRTBackend", ("tflite",)),
    "tflite-runtime": ("styleforge.runtime.backends.litert_backend", "TFLiteRuntimeBackend", ("tflite",)),
    "onnxruntime": ("styleforge.runtime.backends.ort_backend", "OnnxRuntimeBackend", ("onnx",)),
    "coreml": ("styleforge.runtime.backends.coreml_backend", "CoreMLBackend", ("coreml",)),
    "torch": ("styleforge.runtime.backends.torch_backend", "TorchBackend", ("torchscript",)),
}

# The module each backend imports, by library, in the order the backend tries them (the
# benchmark worker imports these first to time the import apart from the model load).
BACKEND_LIBRARIES = {
    "litert": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow"),
    "tflite-runtime": ("tflite_runtime.interpreter",),
    "onnxruntime": ("onnxruntime",),
    "coreml": ("coremltools",),
    "torch": ("torch",),
}

__all__ = [
    "BACKENDS",
    "BACKEND_LIBRARIES",
    "Backend",
    "BackendError",
    "BackendOptions",
    "available_backends",
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
    for name, modules in BACKEND_LIBRARIES.items():
        if name == "coreml" and sys.platform != "darwin":
            continue
        if any(_installed(m.split(".")[0]) for m in modules):  # top level: finding it imports nothing
            names.append(name)
    return names


def backend_formats(name: str) -> tuple[str, ...]:
    """Artifact formats (``tflite``, ``onnx``, ...) that backend ``name`` can run."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return BACKENDS[name][2]


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
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module_name, class_name, formats = BACKENDS[name]
    if artifact is not None and artifact.format not in formats:
        raise BackendError(
            f"backend {name!r} cannot run {artifact.key!r} (format {artifact.format}); it runs {', '.join(formats)}"
        )
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(model_path, artifact, options or BackendOptions(), content=content)
