"""The export bundle: real onnx2tf, real LiteRT and ONNX Runtime, the fidelity gate, atomicity.

The 64x64 ``tiny_bundle`` (tests/conftest.py) is built once per session; tests that need a
conversion of their own export ONNX only, or a single TFLite variant.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.export import verify
from styleforge.runtime import open_bundle
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.metrics import psnr
from styleforge.runtime.tensors import to_uint8

TFLITE_KEYS = ("tflite_fp32", "tflite_fp16", "tflite_dynamic_int8", "tflite_int8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_round_trips_and_describes_every_artifact(tiny_bundle):
    manifest = load_manifest(tiny_bundle)
    for key in ("torchscript", "onnx", *TFLITE_KEYS):
        assert key in manifest.artifacts, key
    again = type(manifest).from_dict(json.loads((tiny_bundle / "manifest.json").read_text()))
    assert again == manifest
    for key, art in manifest.artifacts.items():
        path = tiny_bundle / art.file
        assert path.exists(), key
        assert art.size_bytes > 0
        if path.is_file():
            assert art.size_bytes == path.stat().st_size
            assert art.sha256 == _sha256(path), key
    onnx = manifest.artifacts["onnx"]
    assert onnx.input.layout == "NCHW" and onnx.input.shape == (1, 3, 64, 64)
    assert onnx.extra["opset"] >= 17 and "Conv" in onnx.ops
    for key in TFLITE_KEYS:
        art = manifest.artifacts[key]
        assert art.input.layout == "NHWC" and art.input.shape == (1, 64, 64, 3), key
        assert art.output.value_range == (-1.0, 1.0)
        assert "CONV_2D" in art.ops, key
        assert {"xnnpack", "gpu_delegate", "int8_npu"} <= set(art.compatibility), key
    assert manifest.artifacts["tflite_int8"].extra["calibration_crops"] >= 100
    assert manifest.model["stride"] >= 1 and manifest.model["params"] > 0
    assert manifest.provenance["export"]["size"] == [64, 64]
    assert manifest.references and all((tiny_bundle / r["input"]).is_file() for r in manifest.references)
    for art in manifest.artifacts.values():
        if art.format == "coreml":
            assert art.fidelity["verified"] in (True, verify.NOT_VERIFIED_COREML)


def test_every_artifact_passes_its_gate(tiny_bundle):
    manifest = load_manifest(tiny_bundle)
    for key, art in manifest.artifacts.items():
        if art.format == "coreml" and art.fidelity["verified"] is not True:
            continue
        assert art.fidelity["verified"] is True, key
        assert art.fidelity["psnr"] >= art.fidelity["bound_psnr"], key
    # fp32 conversions are numerically the same model; int8 is close but not equal.
    assert manifest.artifacts["tflite_fp32"].fidelity["psnr"] >= 60
    assert manifest.artifacts["onnx"].fidelity["psnr"] >= 60
    assert 25 <= manifest.artifacts["tflite_int8"].fidelity["psnr"] < 100


def test_runtimes_reproduce_the_reference_pairs(tiny_bundle):
    """Run the ONNX model in ONNX Runtime and each TFLite variant in LiteRT on the stored pairs."""
    manifest = load_manifest(tiny_bundle)
    ref = manifest.references[0]
    x = np.asarray(Image.open(tiny_bundle / ref["input"]).convert("RGB"))
    want = np.asarray(Image.open(tiny_bundle / ref["output"]).convert("RGB"))
    assert x.shape == want.shape == (64, 64, 3)
    assert np.abs(x.astype(int) - want.astype(int)).mean() > 2  # the look changes the photo
    for key in ("onnx", *TFLITE_KEYS):
        art = manifest.artifacts[key]
        got = open_bundle(tiny_bundle, artifact=key).stylize(x)
        # Both sides are rounded to uint8 here, so allow rounding flips on top of the bound.
        assert psnr(got, want) >= min(art.fidelity["bound_psnr"], 45.0), key


def test_gate_measures_the_pixels_stylize_produces(tiny_bundle, tiny_generator):
    """The gate's pixels, rounded, are stylize's pixels, and the manifest's figures come from them."""
    manifest = load_manifest(tiny_bundle)
    crops = np.stack([np.asarray(Image.open(tiny_bundle / r["input"]).convert("RGB")) for r in manifest.references])
    reference = verify.reference_pixels(tiny_generator, crops)
    checked = 0
    for key, art in manifest.artifacts.items():
        if art.fidelity.get("verified") is not True:
            continue  # Core ML off macOS
        gate_pixels, _ = verify.artifact_pixels(tiny_bundle / art.file, art, crops, stride=manifest.model["stride"])
        stylizer = open_bundle(tiny_bundle, artifact=key, backend=verify.GATE_BACKENDS[art.format],
                                        threads=verify.GATE_THREADS)
        for crop, pixels in zip(crops, gate_pixels):
            assert np.array_equal(stylizer.stylize(crop), to_uint8(pixels)), f"{key}: gate and stylize disagree"
        if art.fidelity["images"] == len(crops):  # every held-out crop is stored as a reference
            assert verify.fidelity(reference, gate_pixels)["psnr"] == art.fidelity["psnr"], key
        checked += 1
    assert checked >= 6  # torchscript, onnx, four TFLite variants


def test_interpreter_crash_fails_the_export_with_a_clear_error(tiny_generator, tmp_path):
    """A diverged model (one layer's weights x1e30), converted for real, makes LiteRT abort natively
    (SIGABRT in its quantisation checks); the gate's child dies, `export` says which artifact."""
    import copy

    import torch

    from styleforge.export.bundle import ExportError, export_bundle

    diverged = copy.deepcopy(tiny_generator)
    with torch.no_grad():
        next(p for p in diverged.parameters() if p.ndim == 4).mul_(1e30)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError) as err:
        export_bundle(diverged, out, formats=("tflite",), size=(64, 64), tflite_variants=("tflite_int8",),
                      progress=False)
    message = str(err.value)
    assert "tflite_int8 (model_int8.tflite) on litert" in message, message
    assert "died (killed by SIG" in message and "nothing was written" in message, message
    assert list(tmp_path.iterdir()) == []  # no half bundle, no temp folder


def test_int8_model_is_integer_inside(tiny_bundle):
    art = load_manifest(tiny_bundle).artifacts["tflite_int8"]
    assert art.extra["float_leftovers"]["float_ops"] == []
    assert art.compatibility["int8_npu"]["verdict"] in ("full", "partial")
    assert art.compatibility["int8_npu"]["notes"] == []
    fp32 = load_manifest(tiny_bundle).artifacts["tflite_fp32"]
    assert fp32.compatibility["int8_npu"]["verdict"] == "no"
    assert art.size_bytes < fp32.size_bytes


def test_failing_gate_writes_nothing(tiny_generator, tmp_path):
    from styleforge.export.bundle import export_bundle

    out = tmp_path / "bundle"
    with pytest.raises(verify.FidelityError, match="onnx: PSNR .* below its bound of 101"):
        export_bundle(tiny_generator, out, formats=("onnx",), size=(64, 64), bounds={"onnx": 101},
                      progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temp folder left behind either


def test_refuses_to_overwrite_unless_forced(tiny_generator, tmp_path):
    from styleforge.export.bundle import ExportError, export_bundle

    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(tiny_generator, out, formats=("onnx",), size=(64, 64), progress=False)
    assert (out / "keep.txt").read_text() == "user data"
    manifest = export_bundle(tiny_generator, out, formats=("onnx",), size=(64, 64), progress=False, force=True)
    assert not (out / "keep.txt").exists()
    assert set(manifest.artifacts) == {"torchscript", "onnx"}
    assert load_manifest(out) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_size_must_fit_the_model_stride(tiny_generator, tmp_path):
    from styleforge.export.bundle import ExportError, export_bundle

    stride = tiny_generator.stride
    with pytest.raises(ExportError, match="multiple of the model stride"):
        export_bundle(tiny_generator, tmp_path / "b", formats=("onnx",), size=(64 + stride // 2 + 1, 64),
                      progress=False)
    assert not (tmp_path / "b").exists()


def test_coreml_compression_and_image_input(tmp_path):
    """--coreml-quantize palettize6 and an ImageType input; unverifiable off macOS and says so."""
    import sys

    import torch

    from styleforge.export.bundle import export_bundle
    from styleforge.export.coreml_export import coreml_available
    from styleforge.train.models.registry import build_generator

    if coreml_available():
        pytest.skip(coreml_available())
    torch.manual_seed(0)
    # ResNet trunk convs have > 2048 weights, so coremltools palettises them (it skips tiny ones).
    model = build_generator("resnet", ngf=8, n_blocks=1).eval()
    manifest = export_bundle(model, tmp_path / "cm", formats=("coreml",), size=(64, 64),
                             coreml_quantize="palettize6", coreml_image_input=True, progress=False)
    assert set(manifest.artifacts) == {"torchscript", "coreml_fp32", "coreml_fp16"}
    fp16 = manifest.artifacts["coreml_fp16"]
    assert fp16.extra["quantize"] == "palettize6" and fp16.extra["input_type"] == "image"
    assert fp16.input.dtype == "uint8" and fp16.input.value_range == (0.0, 255.0)
    assert any("lut" in op for op in fp16.ops), fp16.ops  # palettised weights are look-up tables
    if sys.platform != "darwin":
        assert fp16.fidelity["verified"] == verify.NOT_VERIFIED_COREML


def test_interrupted_export_leaves_nothing(tmp_path):
    """Ctrl-C in the middle (here: while tracing for ONNX) removes the half-built bundle."""
    import torch

    from styleforge.export.bundle import export_bundle

    class Interrupts(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 3:  # reference run and TorchScript trace succeed, ONNX export is "interrupted"
                raise KeyboardInterrupt
            return torch.tanh(self.conv(x))

    with pytest.raises(KeyboardInterrupt):
        export_bundle(Interrupts().eval(), tmp_path / "b", formats=("onnx",), size=(32, 32), progress=False)
    assert list(tmp_path.iterdir()) == []
