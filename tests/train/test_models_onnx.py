"""The student exports to ONNX with only mobile-friendly ops (the contract export relies on)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch

from styleforge.train.models.mobile import MOBILE_OPS, MobileGenerator
from styleforge.train.models.opcheck import check_mobile_ops, non_mobile_ops, onnx_op_types
from styleforge.train.models.resnet import ResnetGenerator


def export(model: torch.nn.Module, path, size=(32, 32), dynamic=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model.eval(), (torch.zeros(1, 3, *size),), str(path), opset_version=17, dynamo=False,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {2: "h", 3: "w"}, "output": {2: "h", 3: "w"}} if dynamic else None,
        )
    return onnx.load(str(path))


@pytest.mark.parametrize(
    "preset, upsample", [("nano", "bilinear"), ("small", "bilinear"), ("medium", "bilinear"), ("nano", "nearest")]
)
def test_mobile_generator_graph_uses_only_mobile_ops(tmp_path, preset, upsample):
    model = MobileGenerator(preset=preset, upsample=upsample)
    graph = export(model, tmp_path / "student.onnx", dynamic=preset == "nano")
    ops = onnx_op_types(graph)
    assert not non_mobile_ops(graph), ops
    check_mobile_ops(tmp_path / "student.onnx")  # path form
    # The blocks we rely on are really there (a broken trace would lose them).
    assert {"Conv", "Resize", "Add", "Clip"} <= set(ops)
    assert not {"InstanceNormalization", "BatchNormalization", "ConvTranspose", "Pad"} & set(ops)
    for node in graph.graph.node:
        if node.op_type == "Resize":
            attrs = {a.name: a for a in node.attribute}
            mode = attrs["mode"].s.decode()
            assert mode == ("linear" if upsample == "bilinear" else "nearest")
            if mode == "linear":  # align_corners=False == half-pixel centres
                assert attrs["coordinate_transformation_mode"].s.decode() in ("half_pixel", "pytorch_half_pixel")


def test_exported_student_matches_pytorch(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = MobileGenerator(preset="nano")
    torch.nn.init.normal_(model.head.weight, std=0.3)  # not the identity
    export(model, tmp_path / "student.onnx", dynamic=True)
    session = ort.InferenceSession(str(tmp_path / "student.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 48, 72) * 2 - 1  # another size than the export example (dynamic H, W)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_checker_flags_the_teacher(tmp_path):
    graph = export(ResnetGenerator(ngf=4, n_blocks=1), tmp_path / "teacher.onnx")
    bad = non_mobile_ops(graph)
    # Reflection padding, InstanceNorm and ConvTranspose are what the student is designed to avoid.
    assert {"Pad", "InstanceNormalization", "ConvTranspose"} <= set(bad)
    with pytest.raises(ValueError, match="ConvTranspose"):
        check_mobile_ops(graph)
    assert "Conv" in MOBILE_OPS and "ConvTranspose" not in MOBILE_OPS
