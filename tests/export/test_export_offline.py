"""onnx2tf never reaches the network; a CycleGAN ResNet generator converts and passes the gate."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from styleforge.export import calibration as cal
from styleforge.export.tflite_convert import NETWORK_LOG, ONNX2TF_SAMPLE_FILE, convert_tflite
from styleforge.runtime.manifest import load_manifest


def test_network_guard_blocks_and_records_what_onnx2tf_would_do(tmp_path):
    """The guard the converter process installs stops requests.get (what onnx2tf downloads with)."""
    log = tmp_path / NETWORK_LOG
    code = (
        "import sys, requests\n"
        "from pathlib import Path\n"
        "from styleforge.export.tflite_convert import install_network_guard\n"
        f"install_network_guard(Path({str(log)!r}))\n"
        "try:\n"
        "    requests.get('https://github.com/PINTO0309/onnx2tf/releases/download/1.20.4/x.npy', timeout=(1, 5))\n"
        "except Exception as err:\n"
        "    print('blocked:', type(err).__name__)\n"
        "    sys.exit(0)\n"
        "sys.exit('the request went through')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "blocked" in proc.stdout
    assert "github.com" in log.read_text()


def test_real_conversion_attempts_no_connection(tiny_bundle, tmp_path, monkeypatch):
    """Convert with the real onnx2tf: fp32 and calibrated int8, with sockets patched to fail here too."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: network access attempted to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    crops = cal.calibration_crops(cal.default_photos(), (64, 64), count=100, show_progress=False)
    work = tmp_path / "work"
    written = convert_tflite(tiny_bundle / "model.onnx", work, cal.to_model_range(crops),
                             variants=("tflite_fp32", "tflite_int8"))
    assert attempts == []
    assert not (work / NETWORK_LOG).exists(), (work / NETWORK_LOG).read_text()
    # onnx2tf's sample-image file is ours (our crops, in its [0, 1] layout), not a download.
    samples = np.load(work / ONNX2TF_SAMPLE_FILE)
    assert samples.shape == (20, 128, 128, 3) and 0.0 <= samples.min() and samples.max() <= 1.0
    assert samples.std() > 0.05
    assert set(written) == {"tflite_fp32", "tflite_int8"} and all(p.stat().st_size > 0 for p in written.values())


def test_cyclegan_resnet_generator_exports_and_passes(tmp_path):
    """InstanceNorm + ReflectionPad + ConvTranspose through ONNX and onnx2tf, gated at fp32/fp16."""
    import torch

    from styleforge.export.bundle import export_bundle
    from styleforge.train.models.registry import build_generator

    torch.manual_seed(0)
    model = build_generator("resnet", ngf=8, n_blocks=1).eval()
    out = tmp_path / "resnet"
    manifest = export_bundle(model, out, formats=("onnx", "tflite"), size=(64, 64), style="test",
                             tflite_variants=("tflite_fp32", "tflite_fp16"), progress=False)
    assert load_manifest(out) == manifest
    onnx_ops = manifest.artifacts["onnx"].ops
    assert {"InstanceNormalization", "ConvTranspose", "Pad"} <= set(onnx_ops)
    fp32, fp16 = manifest.artifacts["tflite_fp32"], manifest.artifacts["tflite_fp16"]
    assert "MIRROR_PAD" in fp32.ops and "TRANSPOSE_CONV" in fp32.ops
    assert fp32.fidelity["psnr"] >= 60 and fp16.fidelity["psnr"] >= 40
    assert fp16.size_bytes < fp32.size_bytes
    assert manifest.model["arch"] == "resnet" and manifest.model["config"]["ngf"] == 8


@pytest.mark.slow
def test_dynamic_onnx_and_uint8_io(tiny_generator, tmp_path):
    """--dynamic ONNX runs at another size; full-int8 with uint8 I/O records its quantisation."""
    from styleforge.export.bundle import export_bundle
    from styleforge.runtime import open_bundle

    out = tmp_path / "dyn"
    manifest = export_bundle(tiny_generator, out, formats=("onnx", "tflite"), size=(64, 64), dynamic=True,
                             int8_io="uint8", tflite_variants=("tflite_int8",), progress=False)
    onnx = manifest.artifacts["onnx"]
    assert onnx.input.shape == (1, 3, None, None)
    x = cal.heldout_crops(cal.default_photos()[:1], (96, 128))[0]
    assert open_bundle(out, artifact="onnx").stylize_unrounded(x).shape == (96, 128, 3)
    int8 = manifest.artifacts["tflite_int8"]
    assert int8.input.dtype == "uint8" and int8.input.scale and int8.input.zero_point is not None
    assert int8.input.shape == (1, 64, 64, 3)
    assert int8.fidelity["psnr"] >= int8.fidelity["bound_psnr"]
