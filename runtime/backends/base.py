"""The interface every inference backend implements.

A backend wraps one interpreter around one model file and is built once. ``run`` takes and
returns *raw tensors* exactly as the artifact's :class:`~styleforge.runtime.contract.TensorSpec`
describes them (layout, dtype, quantization): converting images to and from that contract is
the stylizer's job (``styleforge.runtime.tensors``), not the backend's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.runtime.contract import Artifact


class BackendError(StyleforgeError, RuntimeError):
    """A backend that cannot be loaded or run: the message says why and what to install."""


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message (interpreters raise pages), else its type's name."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass(frozen=True)
class BackendOptions:
    threads: Optional[int] = None  # None: the runtime's default
    delegate: Optional[str] = None  # path to an external TFLite delegate .so (Edge TPU, vendor NPU)
    delegate_options: dict[str, str] = field(default_factory=dict)
    providers: Optional[tuple[str, ...]] = None  # ONNX Runtime execution providers, in order
    device: str = "cpu"  # torch: "cpu" | "cuda"; coreml: compute units ("ALL", "CPU_AND_NE", ...)
    use_xnnpack: bool = True  # LiteRT's default CPU delegate


class Backend:
    """Base class. Subclasses set ``name``, ``formats`` and ``modules`` and implement ``run``.

    A subclass is its own loader: ``__init__`` imports the interpreter library (the heavy
    import happens there, never when this module or the subclass's module is imported) and
    builds the interpreter once around the model."""

    name: str = "base"
    formats: tuple[str, ...] = ()  # artifact formats it runs (``tflite``, ``onnx``, ...)
    # the library modules it imports, in the order it tries them (the benchmark worker imports
    # these first to time the import apart from the model load)
    modules: tuple[str, ...] = ()

    def __init__(self, model_path: str | os.PathLike, artifact: Optional[Artifact], options: BackendOptions,
                 content: Optional[bytes] = None):
        """Build the interpreter around ``model_path`` (or its verified bytes ``content``)."""
        raise NotImplementedError

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one batch: ``x`` matches the artifact's input spec; returns the raw output tensor."""
        raise NotImplementedError

    def input_details(self) -> dict[str, Any]:
        """What the interpreter itself reports for the input: shape, dtype, quantization."""
        return {}

    def output_details(self) -> dict[str, Any]:
        return {}

    def info(self) -> dict[str, Any]:
        """Runtime name, version, threads, delegates/providers applied (for benchmark reports)."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release the interpreter (optional)."""
