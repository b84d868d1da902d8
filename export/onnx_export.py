"""PyTorch generator -> ONNX (opset 17, simplified, checked) and -> TorchScript.

Both take a generator in eval mode with the styleforge convention: input and output float32
``[N, 3, H, W]`` (NCHW), RGB in ``[-1, 1]``. The ONNX graph has one input ``input`` and one
output ``output``; batch is fixed at 1 (phones stylise one photo at a time) and H x W are
static unless ``dynamic=True``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

from styleforge.errors import StyleforgeError

ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


class ONNXExportError(StyleforgeError, RuntimeError):
    """The model could not be exported to, simplified in, or checked as ONNX."""


def export_onnx(model, path: Path, size: tuple[int, int], dynamic: bool = False, simplify: bool = True) -> Path:
    """Write ``model`` as ONNX to ``path`` and return it.

    ``size`` = (H, W) of the example input; ``dynamic`` marks H and W as free dimensions.
    The graph is simplified with onnxsim (constant folding, no-op removal) and validated with
    ``onnx.checker`` (full check, shapes inferred).
    """
    import onnx
    import torch

    h, w = size
    example = torch.zeros(1, 3, h, w)
    dynamic_axes = {INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "height", 3: "width"}}
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated but needs no extra packages (the dynamo
        # exporter pulls onnxscript) and handles InstanceNorm/ReflectionPad/ConvTranspose well.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=ONNX_OPSET,
                dynamic_axes=dynamic_axes if dynamic else None,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as err:  # torch raises many exception types from the exporter
            raise ONNXExportError(f"torch.onnx.export failed: {type(err).__name__}: {err}") from err
    graph = onnx.load(str(path))
    if simplify:
        graph = _simplify(graph, size if not dynamic else None)
    _constants_to_initializers(graph)
    try:
        onnx.checker.check_model(graph, full_check=True)
    except Exception as err:
        raise ONNXExportError(f"onnx.checker rejected the graph: {err}") from err
    onnx.save(graph, str(path))
    return path


def _simplify(graph, size: tuple[int, int] | None):
    try:
        from onnxsim import simplify
    except ImportError:
        warnings.warn("onnxsim is not installed: ONNX graph left unsimplified", stacklevel=2)
        return graph
    kwargs = {}
    if size is None:
        # Dynamic H x W: simplify at a representative size without freezing it in the graph.
        kwargs["test_input_shapes"] = {INPUT_NAME: [1, 3, 256, 256]}
    try:
        simplified, ok = simplify(graph, **kwargs)
    except Exception as err:
        raise ONNXExportError(f"onnxsim failed: {err}") from err
    if not ok:
        raise ONNXExportError("onnxsim could not validate the simplified graph")
    return simplified


def _constants_to_initializers(model) -> None:
    """Turn ``Constant`` nodes into graph initializers, in place.

    The TorchScript exporter writes e.g. InstanceNorm's scale/bias (``affine=False``) as
    ``Constant`` nodes; onnx2tf expects such parameters as initializers and fails otherwise.
    """
    from onnx import numpy_helper

    graph = model.graph
    keep = []
    for node in graph.node:
        value = [a for a in node.attribute if a.name == "value"] if node.op_type == "Constant" else []
        if len(value) == 1 and len(node.output) == 1:
            tensor = numpy_helper.to_array(value[0].t)
            graph.initializer.append(numpy_helper.from_array(tensor, name=node.output[0]))
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def onnx_ops(path: Path) -> dict[str, int]:
    """Op type -> count in the ONNX graph's main body."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    return dict(sorted(Counter(node.op_type for node in graph.graph.node).items()))


def export_torchscript(model, path: Path, size: tuple[int, int]):
    """Trace ``model`` with an example ``[1, 3, H, W]`` input, save it, return the traced module."""
    import torch

    h, w = size
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints in shapes
        traced = torch.jit.trace(model, torch.zeros(1, 3, h, w), check_trace=False)
    traced.save(str(path))
    return traced
