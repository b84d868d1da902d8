"""Core ML backend (macOS only): runs the bundle's ``.mlpackage`` through coremltools."""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import numpy as np

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions
from styleforge.runtime.contract import Artifact


class CoreMLBackend(Backend):
    name = "coreml"
    formats = ("coreml",)
    modules = ("coremltools",)

    def __init__(self, model_path: str | os.PathLike, artifact: Optional[Artifact], options: BackendOptions,
                 content: Optional[bytes] = None):  # a package folder: always by path
        if sys.platform != "darwin":
            raise BackendError(
                f"Core ML runs only on macOS (this is {sys.platform}); use the litert or onnxruntime backend"
            )
        try:
            import coremltools as ct
        except ImportError:
            raise BackendError("coremltools is not installed: pip install coremltools") from None
        units = options.device.upper() if options.device and options.device != "cpu" else "CPU_ONLY"
        try:
            compute_units = getattr(ct.ComputeUnit, units)
        except AttributeError:
            raise BackendError(f"unknown Core ML compute units {units!r} (ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE)") from None
        try:
            self.model = ct.models.MLModel(str(model_path), compute_units=compute_units)
        except Exception as err:
            raise BackendError(f"coremltools cannot load {model_path}: {err}") from None
        spec = self.model.get_spec()
        self._input_name = spec.description.input[0].name
        self._image_input = spec.description.input[0].type.WhichOneof("Type") == "imageType"
        self._output_name = spec.description.output[0].name
        self.version = ct.__version__
        self.units = units

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._image_input:  # an ImageType input (export --coreml-image-input) takes a PIL image
            from PIL import Image

            x = Image.fromarray(np.asarray(x, dtype=np.uint8)[0], "RGB")
        out = self.model.predict({self._input_name: x})
        return np.asarray(out[self._output_name])

    def input_details(self) -> dict[str, Any]:
        dtype = "uint8" if self._image_input else "float32"
        return {"name": self._input_name, "shape": None, "dtype": dtype, "scale": None, "zero_point": None}

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "library": "coremltools", "version": self.version, "compute_units": self.units}
