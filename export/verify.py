"""Run exported artifacts on this machine and compare them with PyTorch fp32: the fidelity gate.

Runners take and return float32 images in the model's range ``[-1, 1]``, NHWC ``[N, H, W, 3]``,
and do the layout change and the (de)quantisation of int8 I/O themselves, so every artifact is
compared on the same footing. Metrics (``styleforge.runtime.metrics``) are computed on
``[0, 255]`` float images (``(y + 1) * 127.5``, clipped, *not* rounded: rounding to uint8 would
hide differences below one level and turn tiny ones into whole levels).

Default PSNR bounds (dB vs PyTorch fp32, mean over the held-out photos), from what we measured
on the nano/small MobileGenerator and a CycleGAN ResNet generator (see ``export/README.md``):

- ``fp32`` 60 dB: the same maths in another kernel library lands at 80-100 dB; below 60 means a
  wrong conversion (a flipped layout, a mis-converted pad), not float rounding.
- ``fp16`` 40 dB: half-precision weights/activations cost ~45-60 dB on these generators;
  40 dB is about 2.5 levels RMS, invisible on photos.
- ``dynamic_int8`` 32 dB: int8 weights with float activations.
- ``int8`` 30 dB: weights *and* activations in int8; 30 dB (about 8 levels RMS) is where
  banding starts to show in smooth skin and sky.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from styleforge.runtime.contract import TensorSpec
from styleforge.runtime.metrics import max_abs_error, psnr, ssim

DEFAULT_BOUNDS_DB = {"fp32": 60.0, "fp16": 40.0, "dynamic_int8": 32.0, "int8": 30.0}
NOT_VERIFIED_COREML = "not verified on this OS (Core ML prediction needs macOS)"


class FidelityError(RuntimeError):
    """An artifact fell below its PSNR bound."""


def to_255(x: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> [0, 255] float, clipped (what a user would see, before rounding)."""
    return np.clip((np.asarray(x, np.float32) + 1.0) * 127.5, 0.0, 255.0)


def fidelity(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Mean PSNR/SSIM and worst max-abs error over a batch of NHWC images in [-1, 1]."""
    ref, cand = to_255(reference), to_255(candidate)
    psnrs = [psnr(a, b, 255.0) for a, b in zip(ref, cand)]
    ssims = [ssim(a, b, 255.0) for a, b in zip(ref, cand)]
    return {
        "psnr": round(float(np.mean(psnrs)), 2),
        "psnr_min": round(float(np.min(psnrs)), 2),
        "ssim": round(float(np.mean(ssims)), 5),
        "max_abs": round(max(max_abs_error(a, b) for a, b in zip(ref, cand)), 3),
        "images": len(psnrs),
    }


# ---------------------------------------------------------------------------- PyTorch


def run_torch(model, images: np.ndarray) -> np.ndarray:
    """NHWC [-1, 1] -> NHWC [-1, 1] through the PyTorch model (NCHW inside), one image at a time."""
    import torch

    outs = []
    with torch.no_grad():
        for img in images:
            x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32))
            outs.append(model(x)[0].permute(1, 2, 0).numpy())
    return np.stack(outs)


# ---------------------------------------------------------------------------- ONNX Runtime


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: img.transpose(2, 0, 1)[None].astype(np.float32)})[0][0] for img in images]
    return np.stack([o.transpose(1, 2, 0) for o in outs])


# ---------------------------------------------------------------------------- LiteRT


def tflite_interpreter(path: Path, threads: int = 2, default_delegates: bool = True):
    """A LiteRT interpreter (ai_edge_litert, else tflite_runtime, else tensorflow.lite), allocated.

    ``default_delegates=False`` keeps XNNPACK from taking over the graph, so the op list shows
    the model's own builtin ops rather than one ``DELEGATE`` node.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType
        except ImportError:
            import tensorflow as tf

            Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    kwargs = {}
    if not default_delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), num_threads=threads, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32:
        return x.astype(np.float32)
    info = np.iinfo(detail["dtype"])
    return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32:
        return q.astype(np.float32)
    return (q.astype(np.float32) - zero) * scale


def run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    interpreter = tflite_interpreter(path)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outs = []
    for img in images:
        interpreter.set_tensor(inp["index"], _quantize(img[None], inp))
        interpreter.invoke()
        outs.append(_dequantize(interpreter.get_tensor(out["index"]), out)[0])
    return np.stack(outs)


def tflite_specs(path: Path) -> tuple[TensorSpec, TensorSpec]:
    """Input and output :class:`TensorSpec` as the interpreter reports them (NHWC)."""
    interpreter = tflite_interpreter(path, threads=1, default_delegates=False)

    def spec(detail: dict[str, Any]) -> TensorSpec:
        dtype = np.dtype(detail["dtype"]).name
        scale, zero = detail["quantization"]
        quantized = dtype in ("int8", "uint8")
        return TensorSpec(
            name=detail["name"],
            shape=tuple(int(d) for d in detail["shape"]),
            dtype=dtype,
            layout="NHWC",
            value_range=(-1.0, 1.0),
            scale=float(scale) if quantized else None,
            zero_point=int(zero) if quantized else None,
        )

    return spec(interpreter.get_input_details()[0]), spec(interpreter.get_output_details()[0])


RUNNERS: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "onnx": run_onnx,
    "tflite": run_tflite,
}


def check_bound(key: str, precision: str, figures: dict[str, float], bounds: dict[str, float]) -> float:
    """Return the bound for this artifact (by key, else precision); raise FidelityError if below."""
    bound = bounds.get(key, bounds.get(precision, DEFAULT_BOUNDS_DB.get(precision, 0.0)))
    if figures["psnr"] < bound:
        raise FidelityError(
            f"{key}: PSNR {figures['psnr']:.2f} dB vs PyTorch fp32 is below its bound of {bound:g} dB "
            f"(SSIM {figures['ssim']:.4f}, max abs {figures['max_abs']:.1f}/255); nothing was written. "
            f"Override with --bound {key}=N if this is acceptable."
        )
    return bound
