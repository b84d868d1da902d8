"""Planning the matrix: which (artifact, backend, threads, size) cells exist, and sizes actually run
for static and dynamic-size models."""

from __future__ import annotations

from pathlib import Path

import pytest

from styleforge.benchmarks.bench import BenchError, BenchSettings, Target, benchmark, plan_cells
from styleforge.runtime.contract import Manifest


def _artifact(file: str, fmt: str, layout: str, hw):
    h, w = hw
    shape = [1, 3, h, w] if layout == "NCHW" else [1, h, w, 3]
    spec = {"name": "x", "shape": shape, "dtype": "float32", "layout": layout}
    return {"file": file, "format": fmt, "precision": "fp32", "input": spec, "output": spec}


def _target(size=(256, 256), dynamic_onnx=False) -> Target:
    manifest = Manifest.from_dict({
        "format": "styleforge-bundle", "version": 1, "name": f"m{size[0]}",
        "model": {"macs": 1000},
        "artifacts": {
            "onnx": _artifact("model.onnx", "onnx", "NCHW", (None, None) if dynamic_onnx else size),
            "tflite_fp32": _artifact("model_fp32.tflite", "tflite", "NHWC", size),
            "tflite_int8": _artifact("model_int8.tflite", "tflite", "NHWC", size),
            "coreml_fp16": _artifact("model_fp16.mlpackage", "coreml", "NCHW", size),
        },
    })
    return Target(path=Path(f"/bundles/m{size[0]}"), name=manifest.name, manifest=manifest)


def test_only_pairs_a_backend_can_run():
    cells, notes = plan_cells([_target()], ["litert", "onnxruntime"], threads=[1, 4])
    got = sorted((c.artifact, c.backend, c.threads) for c in cells)
    assert got == sorted([(a, "litert", t) for a in ("tflite_fp32", "tflite_int8") for t in (1, 4)]
                         + [("onnx", "onnxruntime", t) for t in (1, 4)])
    assert all(c.size == (256, 256) for c in cells) and notes == []


def test_static_bundles_are_picked_by_size_and_dynamic_ones_expand():
    small, large = _target((256, 256)), _target((512, 512), dynamic_onnx=True)
    cells, notes = plan_cells([small, large], ["litert", "onnxruntime"], artifacts=["tflite_fp32", "onnx"],
                              sizes=[(512, 512), (384, 384)])
    got = sorted((c.target.name, c.artifact, c.size) for c in cells)
    assert got == [("m512", "onnx", (384, 384)), ("m512", "onnx", (512, 512)),
                   ("m512", "tflite_fp32", (512, 512))]
    assert any("m256/tflite_fp32: static 256x256 not in --size" in n for n in notes)


def test_unknown_artifact_and_core_ml_compute_units():
    cells, notes = plan_cells([_target()], ["coreml"], artifacts=["coreml_fp16", "tflite_fp99"],
                              compute_units="CPU_AND_NE")
    assert [(c.artifact, c.device) for c in cells] == [("coreml_fp16", "CPU_AND_NE")]
    assert any("no artifact tflite_fp99" in n for n in notes)


def test_nothing_to_run_is_a_bench_error(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        benchmark([tmp_path / "nope.tflite"], backends=["litert"])
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(BenchError, match="not a bundle folder or a model file"):
        benchmark([tmp_path / "weights.bin"], backends=["litert"])


def test_dynamic_size_raw_onnx_runs_at_each_requested_size(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 3, 1)).eval()
    path = tmp_path / "dynamic.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}}, dynamo=False)
    result = benchmark([path], backends=["onnxruntime"], sizes=[(32, 32), (48, 80)],
                       settings=BenchSettings(warmup=0, runs=2), probe_environment=False)
    assert [(c["status"], c["size"], c["input"]["shape"]) for c in result["cells"]] == [
        ("ok", [32, 32], [1, 3, 32, 32]), ("ok", [48, 80], [1, 3, 48, 80])]


def test_xnnpack_on_off_expands_litert_cells_only():
    cells, _ = plan_cells([_target()], ["litert", "onnxruntime"], artifacts=["tflite_fp32", "onnx"],
                          xnnpack=[True, False])
    got = sorted((c.artifact, c.backend, c.xnnpack) for c in cells)
    assert got == [("onnx", "onnxruntime", None), ("tflite_fp32", "litert", False), ("tflite_fp32", "litert", True)]
