"""Opt-in (``-m slow``): a 24-megapixel photo in bounded memory; a TFLite model with int8 I/O."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import open_bundle
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.metrics import psnr

MEASURE = r"""
import sys, time


def peak_mb():  # VmHWM: peak RSS since the reset below (ru_maxrss would include the forking pytest's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


open("/proc/self/clear_refs", "w").write("5")  # reset the peak to now (Linux >= 4.0)
from styleforge.runtime import open_bundle
stylizer = open_bundle(sys.argv[1])
before = peak_mb()
start = time.perf_counter()
stylizer.stylize_file(sys.argv[2], sys.argv[3])
print(time.perf_counter() - start, before, peak_mb())
"""


@pytest.mark.slow
def test_24_megapixel_photo_in_bounded_memory(tiny_bundle, tmp_path):
    from styleforge.photo.album import album_paths

    src, dst = tmp_path / "big.jpg", tmp_path / "big_styled.jpg"
    Image.open(album_paths()[0]).convert("RGB").resize((6000, 4000), Image.BICUBIC).save(src, quality=90)
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(tiny_bundle), str(src), str(dst)],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    seconds, rss_before_mb, peak_mb = map(float, proc.stdout.split())
    print(f"24 MP: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB (after loading the model: {rss_before_mb:.0f} MB)")
    assert Image.open(dst).size == (6000, 4000)
    # One uint8 copy of the photo is 72 MB; a float64 copy alone would be 576 MB.
    assert peak_mb < 600, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.slow
def test_int8_io_tflite_quantises_with_its_own_scale(tiny_bundle, tmp_path):
    """A full-int8 TFLite with int8 input/output tensors: the runtime quantises pixels itself."""
    from styleforge.export.calibration import calibration_crops, default_photos, to_model_range
    from styleforge.export.tflite_convert import convert_tflite

    calib = to_model_range(calibration_crops(default_photos(), (64, 64), count=16, seed=0, show_progress=False))
    written = convert_tflite(tiny_bundle / "model.onnx", tmp_path / "work", calib, variants=("tflite_int8",), int8_io="int8")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle / "reference", bundle / "reference")
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    art = manifest["artifacts"]["tflite_int8"]
    shutil.copy2(written["tflite_int8"], bundle / "model_int8_io.tflite")
    size_bytes, sha256 = file_facts(bundle / "model_int8_io.tflite")
    art.update(file="model_int8_io.tflite", size_bytes=size_bytes, sha256=sha256)
    for side in ("input", "output"):  # the manifest's scale is a stale guess: the interpreter's wins
        art[side].update(dtype="int8", scale=0.5, zero_point=0)
    manifest["artifacts"] = {"tflite_int8": art}
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    stylizer = open_bundle(bundle, artifact="int8")
    reported = stylizer.backend.input_details()
    assert reported["dtype"] == "int8" and stylizer.input_spec.scale == pytest.approx(reported["scale"])
    assert stylizer.input_spec.scale != 0.5
    for ref in manifest["references"]:
        ref_in = np.asarray(Image.open(tiny_bundle / ref["input"]).convert("RGB"))
        ref_out = np.asarray(Image.open(tiny_bundle / ref["output"]).convert("RGB"))
        assert psnr(stylizer.stylize(ref_in), ref_out) >= 28.0
