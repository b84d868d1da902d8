"""ONNX -> TFLite (fp32, fp16, dynamic-range int8, full int8) through onnx2tf, fully offline.

This is the only styleforge module that imports TensorFlow, and it does so only in a child
process (``python -m styleforge.export.tflite_convert JOB.json``): TensorFlow's memory, threads
and log noise stay out of the exporting process, and a crash in the converter cannot take the
export down with a half-written bundle.

Why the network guard: onnx2tf fetches a sample-image ``.npy`` from GitHub
(``onnx2tf.utils.common_functions.download_test_image_data``) for *every* model whose input
looks like an image batch (it uses it for a dummy inference while converting), and again to
calibrate int8 when it is not handed its own data. We never let it: the child process

1. blocks ``socket`` connections and DNS look-ups (any attempt is recorded in
   ``network_attempts.txt`` and fails the export, even where onnx2tf swallows the error);
2. replaces ``download_test_image_data`` with our own photo crops, and also drops them under
   the file name onnx2tf looks for in its working directory, so even an unpatched call
   path reads the local file;
3. does the int8 calibration itself with ``tf.lite.TFLiteConverter`` on the saved model onnx2tf
   wrote, fed with the user's calibration crops normalised exactly as the model expects
   (NHWC float32 in ``[-1, 1]``). That also skips onnx2tf's int16-activation variants, which
   we do not ship.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.subproc import run_guarded

# Output file names inside the job folder, by artifact key.
TFLITE_FILES = {
    "tflite_fp32": "model_fp32.tflite",
    "tflite_fp16": "model_fp16.tflite",
    "tflite_dynamic_int8": "model_dynamic_int8.tflite",
    "tflite_int8": "model_int8.tflite",
}
NETWORK_LOG = "network_attempts.txt"
# onnx2tf's download helper reads this file from the working directory when it exists.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


class TFLiteConversionError(StyleforgeError, RuntimeError):
    """onnx2tf or the TFLite converter failed; the message carries the converter's last lines."""


class NetworkBlocked(OSError):
    """Raised inside the converter process for any connection attempt."""


def convert_tflite(
    onnx_path: Path,
    work_dir: Path,
    calibration_nhwc: np.ndarray,
    variants: tuple[str, ...] = tuple(TFLITE_FILES),
    int8_io: str = "float",
    timeout_s: float = 3600.0,
) -> dict[str, Path]:
    """Convert ``onnx_path`` into the requested TFLite ``variants`` (keys of :data:`TFLITE_FILES`).

    ``calibration_nhwc``: float32 ``[N, H, W, 3]`` in ``[-1, 1]`` at the model size, real photo
    crops: the int8 calibration set, and (the first 20) what onnx2tf would otherwise download
    for its sample inference. onnx2tf uses that inference to pick layout permutations, so blank
    images can give a wrong model; the fidelity gate would catch it, but better not to.
    ``int8_io``: ``float`` (int8 inside, float32 input/output), ``int8`` or ``uint8``.
    The ONNX model must have a static input shape (TFLite artifacts are static: that is what
    mobile delegates and NPUs need).
    Returns ``{key: path}`` of the written files. Raises :class:`TFLiteConversionError`.
    """
    if int8_io not in ("float", "int8", "uint8"):
        raise ValueError(f"int8_io must be float, int8 or uint8, got {int8_io!r}")
    unknown = set(variants) - set(TFLITE_FILES)
    if unknown:
        raise ValueError(f"unknown TFLite variants {sorted(unknown)}")
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if calibration_nhwc is None or len(calibration_nhwc) == 0:
        raise ValueError("convert_tflite needs photo crops (onnx2tf's sample inference; int8 calibration)")
    calib = np.ascontiguousarray(calibration_nhwc, dtype=np.float32)
    if calib.ndim != 4 or calib.shape[-1] != 3:
        raise ValueError(f"calibration must be [N, H, W, 3], got {calib.shape}")
    np.save(work_dir / "calibration.npy", calib)
    job = {
        "onnx": str(Path(onnx_path).resolve()),
        "variants": list(variants),
        "int8_io": int8_io,
    }
    (work_dir / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "styleforge.export.tflite_convert", str(work_dir / "job.json")]
    proc = run_guarded(cmd, timeout_s=timeout_s, env=env, cwd=str(work_dir))  # dies with export, children too
    if proc.timed_out:
        raise TFLiteConversionError(f"onnx2tf did not finish within {timeout_s:.0f} s")
    (work_dir / "converter.log").write_text(proc.stdout + "\n" + proc.stderr)
    attempts = _read_lines(work_dir / NETWORK_LOG)
    if attempts:
        raise TFLiteConversionError(
            "the TFLite converter tried to reach the network (blocked: "
            + "; ".join(attempts[:3])
            + "); export must run offline"
        )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise TFLiteConversionError(f"onnx2tf/TFLite conversion failed (exit {proc.returncode}):\n{tail}")
    written = {key: work_dir / TFLITE_FILES[key] for key in variants}
    missing = [k for k, p in written.items() if not p.is_file()]
    if missing:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise TFLiteConversionError(f"the converter wrote no {', '.join(missing)}:\n{tail}")
    return written


def _read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


# --------------------------------------------------------------------------------------------
# Child process side
# --------------------------------------------------------------------------------------------


def install_network_guard(log_path: Path) -> None:
    """Make every socket connection and DNS look-up in this process fail, and record it."""

    def record(what: str) -> None:
        with open(log_path, "a") as f:
            f.write(what + "\n")

    def blocked_connect(self, address, *args, **kwargs):
        record(f"connect {address!r}")
        raise NetworkBlocked(f"styleforge export runs offline: blocked connection to {address!r}")

    def blocked_getaddrinfo(host, *args, **kwargs):
        record(f"getaddrinfo {host!r}")
        raise NetworkBlocked(f"styleforge export runs offline: blocked DNS look-up of {host!r}")

    socket.socket.connect = blocked_connect
    socket.socket.connect_ex = blocked_connect
    socket.getaddrinfo = blocked_getaddrinfo


def _onnx2tf_sample_images(calib: np.ndarray) -> np.ndarray:
    """Our crops in the shape and range onnx2tf's download would have: 20 x 128 x 128 x 3 in [0, 1]."""
    import tensorflow as tf

    idx = np.arange(20) % len(calib)
    images = (calib[idx] + 1.0) / 2.0
    return np.asarray(tf.image.resize(images, (128, 128)), dtype=np.float32).clip(0.0, 1.0)


def _child_main(job_path: str) -> int:
    work = Path(job_path).resolve().parent
    os.chdir(work)  # onnx2tf looks for its sample file in the working directory
    install_network_guard(work / NETWORK_LOG)
    job = json.loads(Path(job_path).read_text())
    calib = np.load(work / "calibration.npy")

    import onnx2tf.onnx2tf as onnx2tf_main  # noqa: E402  (heavy: TensorFlow)
    import tensorflow as tf

    samples = _onnx2tf_sample_images(calib)
    np.save(work / ONNX2TF_SAMPLE_FILE, samples)
    onnx2tf_main.download_test_image_data = lambda: samples.copy()

    variants = set(job["variants"])
    saved = work / "saved_model"
    onnx2tf_main.convert(
        input_onnx_file_path=job["onnx"],
        output_folder_path=str(saved),
        output_dynamic_range_quantized_tflite="tflite_dynamic_int8" in variants,
        output_integer_quantized_tflite=False,  # we calibrate ourselves below
        copy_onnx_input_output_names_to_tflite=False,  # that path shells out to curl for a schema
        non_verbose=True,
    )
    stem = Path(job["onnx"]).stem
    produced = {
        "tflite_fp32": saved / f"{stem}_float32.tflite",
        "tflite_fp16": saved / f"{stem}_float16.tflite",
        "tflite_dynamic_int8": saved / f"{stem}_dynamic_range_quant.tflite",
    }
    for key, src in produced.items():
        if key in variants:
            if not src.is_file():
                print(f"onnx2tf did not write {src.name}", file=sys.stderr)
                return 3
            shutil.copyfile(src, work / TFLITE_FILES[key])

    if "tflite_int8" in variants:
        model, float_fallback = _full_int8(tf, saved, calib, job["int8_io"])
        (work / TFLITE_FILES["tflite_int8"]).write_bytes(model)
        (work / "int8_info.json").write_text(json.dumps({"float_fallback": float_fallback}))
    return 0


def _full_int8(tf, saved_model: Path, calib: np.ndarray, int8_io: str) -> tuple[bytes, bool]:
    """Full-integer quantisation calibrated on ``calib`` (NHWC float32 in [-1, 1], one per step)."""

    def representative_dataset():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    def make(ops):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = ops
        if int8_io != "float":
            io_type = tf.int8 if int8_io == "int8" else tf.uint8
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
        return converter

    # Builtin int8 kernels only, first: that is what int8-only NPUs need. If some op has no int8
    # kernel, fall back to allowing float builtins for it, and say so (the op report then lists
    # the float tensors that remain).
    try:
        return make([tf.lite.OpsSet.TFLITE_BUILTINS_INT8]).convert(), False
    except Exception as err:  # the converter raises ConverterError or RuntimeError
        print(f"int8-only conversion failed, allowing float fallback ops: {err}", file=sys.stderr)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return make(ops).convert(), True


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
