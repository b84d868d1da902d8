"""PyTorch backend for the bundle's TorchScript artifact (``model.pt``): a reference, or a GPU."""

from __future__ import annotations

import io
import os
from typing import Any, Optional

import numpy as np

from styleforge.runtime.backends.base import Backend, BackendError, BackendOptions, first_line
from styleforge.runtime.contract import Artifact


class TorchBackend(Backend):
    name = "torch"
    formats = ("torchscript",)
    modules = ("torch",)

    def __init__(self, model_path: str | os.PathLike, artifact: Optional[Artifact], options: BackendOptions,
                 content: Optional[bytes] = None):
        try:
            import torch
        except ImportError:
            raise BackendError("PyTorch is not installed: pip install torch (or use the litert backend)") from None
        self.torch = torch
        self.options = options
        self.device = torch.device(options.device or "cpu")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch backend: device 'cuda' requested but CUDA is not available")
        if options.threads:
            torch.set_num_threads(int(options.threads))
        try:
            source = io.BytesIO(content) if content is not None else str(model_path)
            self.module = torch.jit.load(source, map_location=self.device).eval()
        except (RuntimeError, ValueError) as err:
            raise BackendError(f"torch cannot load TorchScript {model_path}: {first_line(err)}") from None
        self.artifact = artifact

    @property
    def _on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def run(self, x: np.ndarray) -> np.ndarray:
        """``x`` is NCHW float32 in [-1, 1]. On CUDA the model runs in fp16 (autocast) on a
        channels-last input, the fast path on tensor cores; on CPU it runs in plain fp32."""
        torch = self.torch
        tensor = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        with torch.inference_mode():
            if self._on_gpu:
                tensor = tensor.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16):
                    y = self.module(tensor)
                torch.cuda.synchronize(self.device)  # so a benchmark's timer sees the finished work
            else:
                y = self.module(tensor)
        return y.float().cpu().numpy() if y.dtype != torch.float32 else y.cpu().numpy()

    def input_details(self) -> dict[str, Any]:
        # TorchScript does not record shapes; the manifest's spec is the contract.
        spec = self.artifact.input if self.artifact else None
        return {"name": spec.name if spec else "input", "shape": None, "dtype": "float32", "scale": None, "zero_point": None}

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "library": "torch",
            "version": self.torch.__version__,
            "threads": self.torch.get_num_threads(),
            "device": str(self.device),
            "precision": "fp16 autocast, channels-last" if self._on_gpu else "fp32",
        }
