"""ONNX Runtime backend with selectable execution providers (CPU, CUDA, CoreML, ...)."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions, first_line
from styleforge.runtime.contract import Artifact

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    formats = ("onnx",)
    modules = ("onnxruntime",)

    def __init__(self, model_path: str | os.PathLike, artifact: Optional[Artifact], options: BackendOptions,
                 content: Optional[bytes] = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError("onnxruntime is not installed: pip install onnxruntime") from None
        self.version = ort.__version__
        self.options = options
        available = ort.get_available_providers()
        providers = list(options.providers or ["CPUExecutionProvider"])
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendError(
                f"ONNX Runtime execution provider(s) {', '.join(missing)} not available; "
                f"this onnxruntime has {', '.join(available)}"
            )
        session_options = ort.SessionOptions()
        if options.threads:
            session_options.intra_op_num_threads = int(options.threads)
        session_options.log_severity_level = 3  # warnings about unused initializers are noise here
        try:
            self.session = ort.InferenceSession(content if content is not None else str(model_path), session_options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {model_path}: {first_line(err)}") from None
        self._input = self.session.get_inputs()[0]
        self._output = self.session.get_outputs()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._output.name], {self._input.name: x})[0]

    @staticmethod
    def _details(node) -> dict[str, Any]:
        shape = tuple(d if isinstance(d, int) else -1 for d in node.shape)  # symbolic dims -> -1
        return {"name": node.name, "shape": shape, "dtype": _ORT_DTYPES.get(node.type, node.type), "scale": None, "zero_point": None}

    def input_details(self) -> dict[str, Any]:
        return self._details(self._input)

    def output_details(self) -> dict[str, Any]:
        return self._details(self._output)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "library": "onnxruntime",
            "version": self.version,
            "threads": self.options.threads,
            "providers": self.session.get_providers(),
        }
