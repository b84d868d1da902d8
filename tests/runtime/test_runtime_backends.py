"""Every backend available here reproduces the bundle's reference outputs; bad bundles fail clearly."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import BundleError, TensorSpec, open_bundle
from styleforge.runtime.backends import (
    BackendError,
    BackendOptions,
    available_backends,
    load_backend,
)
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.metrics import psnr
from styleforge.runtime.tensors import effective_spec, from_output, to_input

# (artifact, backend, minimum PSNR in dB against PyTorch fp32's reference output)
CASES = [
    ("tflite_fp32", "litert", 45.0),
    ("tflite_fp16", "litert", 40.0),
    ("tflite_dynamic_int8", "litert", 30.0),
    ("tflite_int8", "litert", 28.0),
    ("onnx", "onnxruntime", 45.0),
    ("torchscript", "torch", 45.0),
]


def _references(bundle: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["references"], "tiny_bundle has no reference pairs"
    return [
        (np.asarray(Image.open(bundle / r["input"]).convert("RGB")), np.asarray(Image.open(bundle / r["output"]).convert("RGB")))
        for r in manifest["references"]
    ]


def test_import_runtime_pulls_no_interpreter():
    code = (
        "import sys\n"
        "import styleforge.runtime\n"
        "from styleforge.runtime import Stylizer, open_bundle\n"
        "from styleforge.runtime.backends import available_backends\n"
        "available_backends()\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'onnxruntime', 'ai_edge_litert', 'tflite_runtime', 'skimage') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("artifact,backend,min_psnr", CASES, ids=[f"{a}-{b}" for a, b, _ in CASES])
def test_backend_matches_reference(tiny_bundle, artifact, backend, min_psnr):
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    stylizer = open_bundle(tiny_bundle, artifact=artifact, backend=backend, threads=1)
    assert stylizer.artifact.key == artifact and stylizer.backend.name == backend
    for ref_in, ref_out in _references(tiny_bundle):
        styled = stylizer.stylize(ref_in)
        assert styled.shape == ref_out.shape and styled.dtype == np.uint8
        assert psnr(styled, ref_out) >= min_psnr, f"{artifact} on {backend}: {psnr(styled, ref_out):.1f} dB"
        assert psnr(ref_in, ref_out) < 40.0  # the reference really is a change, so the bound means something
    info = stylizer.info()
    assert info["artifact"] == artifact and info["backend"] == backend and info["version"]


def test_auto_choices(tiny_bundle):
    auto = open_bundle(tiny_bundle)
    assert (auto.artifact.key, auto.backend.name) == ("tflite_fp16", "litert")
    assert open_bundle(tiny_bundle, backend="onnxruntime").artifact.key == "onnx"
    assert open_bundle(tiny_bundle, artifact="int8").artifact.key == "tflite_int8"
    assert open_bundle(tiny_bundle, artifact="torch").backend.name == "torch"
    with pytest.raises(BundleError, match="no 'tflite_nope' artifact"):
        open_bundle(tiny_bundle, artifact="tflite_nope")
    with pytest.raises(BackendError, match="cannot run"):
        open_bundle(tiny_bundle, artifact="onnx", backend="litert")


def test_int8_tensors_quantise_with_the_interpreter_scale():
    """uint8 pixels -> int8 with scale/zero point as reported by the interpreter, and back."""
    manifest_spec = TensorSpec("x", (1, 4, 4, 3), "int8", "NHWC", scale=0.5, zero_point=3)  # stale values
    reported = {"shape": (1, 4, 4, 3), "dtype": "int8", "scale": 1 / 127.5, "zero_point": -1}
    spec = effective_spec(manifest_spec, reported, "test")
    assert (spec.scale, spec.zero_point) == (1 / 127.5, -1)
    pixels = np.array([0, 1, 127, 128, 254, 255] * 8, np.uint8).reshape(1, 4, 4, 3)
    q = to_input(pixels, spec)
    assert q.dtype == np.int8
    expected = np.clip(np.rint((pixels.astype(np.float64) / 127.5 - 1.0) * 127.5) - 1, -128, 127)
    assert np.abs(q.astype(np.int32) - expected).max() <= 1  # ties (x.5) may round either way in float32
    assert q[pixels == 0].min() == -128 and q[pixels == 255].max() == 126  # 1.0 / scale + zero point
    back = from_output(q, spec)
    assert np.abs(back - pixels).max() <= 1.0  # one quantisation step of [-1, 1] is ~1 pixel level
    uint8_spec = TensorSpec("x", (1, 3, 4, 4), "uint8", "NCHW", scale=2 / 255, zero_point=128)
    qu = to_input(pixels, uint8_spec)
    assert qu.dtype == np.uint8 and qu.shape == (1, 3, 4, 4)
    assert np.abs(from_output(qu, uint8_spec) - pixels).max() <= 1.0
    with pytest.raises(BundleError, match="dtype"):
        effective_spec(manifest_spec, {**reported, "dtype": "float32"}, "test")


def test_tflite_int8_uses_the_interpreters_own_quantisation(tiny_bundle):
    stylizer = open_bundle(tiny_bundle, artifact="int8")
    reported = stylizer.backend.input_details()
    assert stylizer.input_spec.dtype == reported["dtype"]
    if stylizer.input_spec.is_quantized:
        assert stylizer.input_spec.scale == pytest.approx(reported["scale"])
        assert stylizer.input_spec.zero_point == reported["zero_point"]


def test_coreml_is_a_clear_error_off_macos(tiny_bundle):
    if sys.platform == "darwin":
        pytest.skip("Core ML runs here")
    with pytest.raises(BackendError, match="only on macOS"):
        load_backend("coreml", tiny_bundle / "model_fp16.mlpackage", None, BackendOptions())
    assert "coreml" not in available_backends()


# ai_edge_litert's Delegate.__del__ trips over its own failed constructor; not our error to show.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_missing_delegate_and_wrong_tile_are_clear(tiny_bundle, tmp_path):
    _one_line_error(BackendError, "cannot load TFLite delegate",
                    lambda: open_bundle(tiny_bundle, delegate=str(tmp_path / "libedgetpu.so.1")))
    gc.collect()  # let that half-built Delegate go now, under this test's warning filter
    with pytest.raises(BundleError, match="fixed 64x64 input"):
        open_bundle(tiny_bundle, tile=128)


def test_onnxruntime_unknown_provider_is_named(tiny_bundle):
    with pytest.raises(BackendError, match="NoSuchExecutionProvider.*CPUExecutionProvider"):
        open_bundle(tiny_bundle, backend="onnxruntime", providers=["NoSuchExecutionProvider"])


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A writable copy of tiny_bundle with its manifest and the fp16 TFLite + ONNX files."""
    dst = tmp_path / "bundle"
    dst.mkdir()
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    keep = {k: v for k, v in manifest["artifacts"].items() if k in ("tflite_fp16", "onnx")}
    for art in keep.values():
        (dst / art["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tiny_bundle / art["file"], dst / art["file"])
    manifest["artifacts"] = keep
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def _edit_manifest(bundle: Path, key: str, **changes) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"][key].update(changes)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _one_line_error(exc_type, match, fn):
    with pytest.raises(exc_type, match=match) as err:
        fn()
    assert "\n" not in str(err.value), str(err.value)


def test_bad_bundles_fail_with_one_line(bundle_copy, tmp_path):
    fp16 = json.loads((bundle_copy / "manifest.json").read_text())["artifacts"]["tflite_fp16"]
    model = bundle_copy / fp16["file"]
    load = lambda: open_bundle(bundle_copy, artifact="tflite_fp16")  # noqa: E731
    assert load().artifact.key == "tflite_fp16"  # the copy itself is fine

    _one_line_error(BundleError, "bundle not found", lambda: open_bundle(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    _one_line_error(BundleError, "no manifest.json", lambda: open_bundle(tmp_path / "empty"))

    original = model.read_bytes()
    model.write_bytes(original + b"\0")  # grown: refused by its size before it is read
    _one_line_error(BundleError, "the manifest says", load)
    model.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, one bit flipped
    _one_line_error(BundleError, "sha256", load)

    model.write_bytes(b"this is not a flatbuffer" * 10)
    junk_size, junk_sha = file_facts(model)
    _edit_manifest(bundle_copy, "tflite_fp16", size_bytes=junk_size, sha256=junk_sha)  # a forged, consistent manifest
    _one_line_error(BundleError, "not a TFLite flatbuffer", load)
    model.write_bytes(original[:8] + b"\0" * 200)  # a TFLite header on nothing: the interpreter must refuse it
    junk_size, junk_sha = file_facts(model)
    _edit_manifest(bundle_copy, "tflite_fp16", size_bytes=junk_size, sha256=junk_sha)
    _one_line_error(BackendError, "cannot load", load)

    model.write_bytes(original)
    _edit_manifest(bundle_copy, "tflite_fp16", size_bytes=fp16["size_bytes"], sha256=fp16["sha256"])
    _edit_manifest(bundle_copy, "tflite_fp16", input={**fp16["input"], "shape": [1, 128, 128, 3]})
    _one_line_error(BundleError, "shape", load)  # manifest disagrees with the model

    _edit_manifest(bundle_copy, "tflite_fp16", input={**fp16["input"], "dtype": "uint8", "scale": 0.01, "zero_point": 0})
    _one_line_error(BundleError, "dtype", load)

    model.unlink()
    _one_line_error(BundleError, "missing", load)
