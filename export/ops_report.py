"""Op inventories and a delegate compatibility table for exported artifacts.

The compatibility verdicts are static rules over the op list and tensor types (the op lists of
the XNNPACK delegate, the TFLite GPU delegate, int8-only NPUs in the Edge TPU / Hexagon mould,
and Core ML), not measurements on a device: they tell you what to expect before you try, and
which op to replace when a delegate would fall back to the CPU.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from styleforge.runtime.backends import BackendOptions, load_backend

# Builtin ops each accelerator takes (the subset relevant to image-to-image generators).
XNNPACK_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "DIV", "ELU", "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D",
    "MAXIMUM", "MEAN", "MINIMUM", "MUL", "PAD", "PRELU", "QUANTIZE", "RELU", "RELU6",
    "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RSQRT", "SLICE", "SOFTMAX", "SPLIT", "SQRT",
    "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "ABS", "NEG", "FLOOR", "CEIL", "ROUND", "GELU",
}
GPU_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "DIV", "ELU", "EXP", "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC",
    "MAX_POOL_2D", "MAXIMUM", "MINIMUM", "MEAN", "MIRROR_PAD", "MUL", "PAD", "PRELU", "QUANTIZE",
    "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT", "SLICE", "SOFTMAX", "SPLIT", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE",
    "SUB", "TANH", "TRANSPOSE", "TRANSPOSE_CONV", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "ABS",
    "COS", "SIN", "LOG", "POW", "GELU",
}
INT8_NPU_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D", "MAXIMUM",
    "MEAN", "MINIMUM", "MUL", "PAD", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "SQUARED_DIFFERENCE", "SUB", "TANH",
    "TRANSPOSE_CONV", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SLICE", "SPLIT", "STRIDED_SLICE",
    "TRANSPOSE",
}
# QUANTIZE/DEQUANTIZE are fine on an int8 NPU only at the model's edges (float I/O).
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}


def _interpreter(path: Path):
    """The runtime's LiteRT interpreter for ``path``, without XNNPACK: with it, the op list would
    show one ``DELEGATE`` node instead of the model's own builtin ops."""

    return load_backend("litert", path, None, BackendOptions(threads=1, use_xnnpack=False)).interpreter


def tflite_op_details(path: Path) -> list[dict[str, Any]]:
    """The interpreter's op list: ``[{"op_name", "inputs", "outputs", ...}]`` in execution order."""
    return _interpreter(path)._get_ops_details()


def tflite_ops(path: Path) -> dict[str, int]:
    """Op type -> count in a TFLite model."""
    return dict(sorted(Counter(op["op_name"] for op in tflite_op_details(path)).items()))


def tflite_float_leftovers(path: Path) -> dict[str, Any]:
    """For a quantised model: ops that compute in float and float tensors other than I/O."""
    interpreter = _interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    io_indices = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    float_ops = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in _EDGE_OPS:
            continue
        ins = [i for i in op["inputs"] if i >= 0 and i in tensors]
        # An op computes in float when its activation (first input) or its output is float.
        act = tensors[ins[0]]["dtype"] if ins else None
        outs = [tensors[o]["dtype"] for o in op["outputs"] if o in tensors]
        if act == np.float32 or any(d == np.float32 for d in outs):
            float_ops.append(f"{op['op_name']}#{op['index']}")
    float_tensors = [
        t["name"] for i, t in tensors.items() if t["dtype"] == np.float32 and i not in io_indices
    ]
    return {"float_ops": float_ops, "float_tensors": float_tensors[:50], "float_tensor_count": len(float_tensors)}


def _verdict(unsupported: list[str], problems: list[str]) -> dict[str, Any]:
    if not unsupported and not problems:
        return {"verdict": "full", "unsupported_ops": [], "notes": []}
    return {
        "verdict": "partial" if not problems else "no",
        "unsupported_ops": sorted(set(unsupported)),
        "notes": problems,
    }


def tflite_compatibility(
    ops: dict[str, int], precision: str, static_shapes: bool, float_leftovers: dict[str, Any] | None
) -> dict[str, Any]:
    """XNNPACK / GPU delegate / int8-only NPU verdicts for one TFLite artifact."""
    names = set(ops)
    table: dict[str, Any] = {}
    xnn = _verdict(sorted(names - XNNPACK_OPS), [])
    if precision == "fp16":
        xnn["notes"].append("fp16 weights are dequantised to fp32 at load on CPU")
    table["xnnpack"] = xnn
    gpu = _verdict(sorted(names - GPU_OPS), [])
    if precision in ("dynamic_int8", "int8"):
        gpu["notes"].append("GPU delegate computes in fp16/fp32; int8 weights are dequantised")
    table["gpu_delegate"] = gpu
    problems = []
    if precision != "int8":
        problems.append(f"{precision} model: an int8-only NPU needs full int8 quantisation")
    if not static_shapes:
        problems.append("dynamic input shape: NPUs need static shapes")
    if float_leftovers and float_leftovers["float_ops"]:
        problems.append(f"{len(float_leftovers['float_ops'])} op(s) still compute in float")
    unsupported = sorted(names - INT8_NPU_OPS)
    npu = _verdict(unsupported, problems)
    if not problems and unsupported:
        npu["verdict"] = "partial"
    table["int8_npu"] = npu
    table["rules"] = "static op-list rules, not a device run"
    return table


def onnx_compatibility(ops: dict[str, int], coreml_status: str | None) -> dict[str, Any]:
    """Core ML (and ONNX Runtime CPU) expectations for the source graph."""
    table: dict[str, Any] = {"onnxruntime_cpu": {"verdict": "full", "unsupported_ops": [], "notes": []}}
    if coreml_status is not None:
        table["coreml"] = {"verdict": coreml_status, "unsupported_ops": [], "notes": []}
    table["rules"] = "static op-list rules, not a device run"
    return table


def format_table(artifacts: dict[str, Any]) -> str:
    """A plain-text table: one row per artifact, one column per runtime/delegate."""
    columns = ["xnnpack", "gpu_delegate", "int8_npu", "coreml", "onnxruntime_cpu"]
    rows = [["artifact", "size KB", "PSNR dB", *columns]]
    for key, art in artifacts.items():
        comp = art.compatibility
        cells = []
        for col in columns:
            entry = comp.get(col)
            if not entry:
                cells.append("-")
                continue
            cell = entry["verdict"]
            if entry.get("unsupported_ops"):
                cell += " (" + ",".join(entry["unsupported_ops"][:3]) + ")"
            cells.append(cell)
        psnr = art.fidelity.get("psnr")
        rows.append([key, f"{art.size_bytes / 1024:.0f}", f"{psnr:.1f}" if psnr is not None else "-", *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
