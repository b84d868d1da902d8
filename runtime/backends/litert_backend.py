"""LiteRT / TFLite backend: ``ai_edge_litert``, else ``tflite_runtime``, else ``tensorflow.lite``.

The interpreter is built and its tensors allocated once; ``run`` only copies data in and out.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions, first_line
from styleforge.runtime.contract import Artifact


def _interpreter_module(candidates: tuple[str, ...]):
    """Import the first available interpreter module; returns (module, library name, version)."""
    for lib in (module.split(".")[0] for module in candidates):
        try:
            if lib == "ai_edge_litert":
                from ai_edge_litert import interpreter as mod
            elif lib == "tflite_runtime":
                from tflite_runtime import interpreter as mod
            else:
                import tensorflow as tf

                mod = tf.lite
                mod.version = tf.__version__  # type: ignore[attr-defined]
        except ImportError:
            continue
        return mod, lib, _version(lib)
    install = "pip install ai-edge-litert" if len(candidates) > 1 else "pip install tflite-runtime"
    tried = ", ".join(module.split(".")[0] for module in candidates)
    raise BackendError(f"no TFLite interpreter installed (tried {tried}): {install}")


def _version(lib: str) -> str:
    try:
        from importlib.metadata import version

        return version({"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(lib, "tensorflow"))
    except Exception:
        return "unknown"


class LiteRTBackend(Backend):
    name = "litert"
    formats = ("tflite",)
    modules: tuple[str, ...] = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow")

    def __init__(self, model_path: str | os.PathLike, artifact: Optional[Artifact], options: BackendOptions,
                 content: Optional[bytes] = None):
        mod, self.library, self.version = _interpreter_module(self.modules)
        self.options = options
        model = {"model_content": content} if content is not None else {"model_path": str(model_path)}
        kwargs: dict[str, Any] = {**model, "num_threads": options.threads}
        self.delegates = []
        if options.delegate:
            try:
                self.delegates = [mod.load_delegate(options.delegate, dict(options.delegate_options))]
            except (ValueError, OSError, RuntimeError) as err:
                raise BackendError(f"cannot load TFLite delegate {options.delegate}: {first_line(err)}") from None
            kwargs["experimental_delegates"] = self.delegates
        if not options.use_xnnpack and hasattr(mod, "OpResolverType"):
            kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = mod.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise BackendError(f"{self.library} cannot load {model_path}: {first_line(err)}") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        index = self._input["index"]
        if tuple(x.shape) != tuple(self._input["shape"]):
            # Dynamic-size models: resize once per new shape (tiles normally share one shape).
            self.interpreter.resize_tensor_input(index, list(x.shape))
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
        self.interpreter.set_tensor(index, np.ascontiguousarray(x, dtype=self._input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()

    @staticmethod
    def _details(d: dict[str, Any]) -> dict[str, Any]:
        scale, zero_point = d.get("quantization", (0.0, 0))
        return {
            "name": d["name"],
            "shape": tuple(int(v) for v in d.get("shape_signature", d["shape"])),
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale) if scale else None,
            "zero_point": int(zero_point) if scale else None,
        }

    def input_details(self) -> dict[str, Any]:
        return self._details(self._input)

    def output_details(self) -> dict[str, Any]:
        return self._details(self._output)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "library": self.library,
            "version": self.version,
            "threads": self.options.threads,
            "delegate": self.options.delegate,
            "xnnpack": self.options.use_xnnpack,
        }


class TFLiteRuntimeBackend(LiteRTBackend):
    """The ``tflite_runtime`` wheel only (e.g. 32-bit Raspberry Pi OS), never ai_edge_litert or TF."""

    name = "tflite-runtime"
    modules = ("tflite_runtime.interpreter",)
