"""Single cells and edge paths of ``styleforge bench``: raw model files, absent CUDA, absent adb,
user errors, and the Raspberry Pi promise (no torch / TensorFlow / matplotlib needed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from styleforge.benchmarks.bench import BenchSettings, benchmark
from styleforge.cli import main

QUICK = BenchSettings(warmup=0, runs=3, timeout_s=300)
HEAVY = ("torch", "tensorflow", "onnx", "onnxruntime", "matplotlib", "skimage", "tf_keras", "coremltools")


def test_raw_model_file_has_no_fidelity_and_duration_mode(tiny_bundle):
    timed = BenchSettings(warmup=0, runs=1, duration_s=0.3, timeout_s=300)
    result = benchmark([tiny_bundle / "model.onnx"], backends=["onnxruntime"], settings=timed,
                       probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell
    assert cell["artifact"] == "model.onnx" and cell["fidelity"] is None and cell["macs"] is None
    assert cell["size"] == [64, 64]  # read from the model itself
    assert math.isfinite(cell["latency_ms"]["p50"])
    # ran for the duration, not for --runs: at least 3 runs, together at least ~0.3 s
    assert cell["runs"] >= 3 and cell["runs"] * cell["latency_ms"]["mean"] >= 250


def test_missing_delegate_is_a_cell_error(tiny_bundle, tmp_path):
    result = benchmark([tiny_bundle], backends=["litert"], artifacts=["tflite_fp32"],
                       delegate=str(tmp_path / "libvendor_npu_delegate.so"), settings=QUICK,
                       probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "error" and "delegate" in cell["error"], cell


def test_cuda_cells_skip_cleanly_without_a_gpu(tiny_bundle):
    result = benchmark([tiny_bundle], backends=["torch", "onnxruntime"], artifacts=["torchscript", "onnx"],
                       device="cuda", settings=QUICK, probe_environment=False)
    assert {c["backend"] for c in result["cells"]} == {"torch", "onnxruntime"}
    for cell in result["cells"]:
        assert cell["device"] == "cuda"
        if cell["status"] == "ok":  # a machine with a GPU (and onnxruntime-gpu for the ORT cell)
            assert "cuda" in json.dumps(cell["backend_info"]).lower()
            continue
        assert cell["status"] == "skipped", cell
        assert "CUDA not available" in cell["error"]


def test_adb_without_adb_is_a_cell_error_not_a_crash(tiny_bundle, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = benchmark([tiny_bundle], backends=["adb"], artifacts=["tflite_fp32"], settings=QUICK,
                       probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "error" and "not found on PATH" in cell["error"]


def test_user_errors_are_one_line_exit_2(tiny_bundle, tmp_path, capsys):
    assert main(["bench", str(tmp_path / "missing")]) == 2
    assert main(["bench", str(tiny_bundle), "--backend", "tensorrt"]) == 2
    assert main(["bench", str(tiny_bundle), "--threads", "two"]) == 2
    assert main(["bench", str(tiny_bundle), "--backend", "onnxruntime", "--artifact", "tflite_int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("styleforge bench: error:") for line in err)
    assert "unknown backend 'tensorrt'" in err[1]


def test_bench_modules_import_light():
    code = textwrap.dedent(f"""
        import sys
        from styleforge.cli import build_parser
        import styleforge.benchmarks.bench, styleforge.benchmarks.report, styleforge.benchmarks.adb
        import styleforge.benchmarks.environment, styleforge.benchmarks.worker, styleforge.benchmarks.cli
        build_parser().parse_args(["bench", "x", "--threads", "1,2"])
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        assert not heavy, heavy
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


# Makes the heavy libraries unimportable, as on a Raspberry Pi with only numpy, Pillow and LiteRT.
BLOCKER = f"""
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None
sys.meta_path.insert(0, _Absent())
"""


def test_bench_runs_with_only_numpy_pillow_and_litert(tiny_bundle, tmp_path):
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    out = tmp_path / "pi.json"
    proc = subprocess.run(
        [sys.executable, "-m", "styleforge", "bench", str(tiny_bundle), "--artifact", "tflite_fp32",
         "--runs", "3", "--warmup", "0", "--json", str(out), "--plot", str(tmp_path / "pi.png")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "needs matplotlib" in proc.stderr and not (tmp_path / "pi.png").exists()
    result = json.loads(out.read_text())
    assert result["settings"]["backends"] == ["litert"]  # 'all' = what is importable here
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell
    assert cell["backend_info"]["library"] == "ai_edge_litert"
    assert cell["fidelity"]["psnr"] > 35.0
    assert result["environment"].get("onnxruntime_providers") is None
    assert result["environment"].get("torch_cuda") is None


# Kills the process the way a broken native delegate does, after it printed its last words.
CRASHER = """
import os, sys
class _Crash:
    def find_spec(self, name, path=None, target=None):
        if name == "ai_edge_litert":
            sys.stderr.write("F0000 vendor_delegate.cc:42] Check failed: npu_handle != nullptr\\n")
            sys.stderr.flush()
            os.kill(os.getpid(), 11)
        return None
sys.meta_path.insert(0, _Crash())
"""


def test_a_worker_crash_becomes_a_cell_error_with_its_last_words(tiny_bundle, tmp_path, monkeypatch):
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(CRASHER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    result = benchmark([tiny_bundle], backends=["litert"], artifacts=["tflite_fp32"], settings=QUICK,
                       probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "error"
    assert cell["error"].startswith("worker died (signal 11)") and "npu_handle" in cell["error"], cell["error"]


def test_xnnpack_off_is_really_off(tiny_bundle):
    result = benchmark([tiny_bundle], backends=["litert"], artifacts=["tflite_fp32"], xnnpack=[False],
                       settings=QUICK, probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "ok" and cell["xnnpack"] is False
    assert cell["backend_info"]["xnnpack_applied"] is False  # nothing in the interpreter's log
    assert cell["fidelity"]["psnr"] > 35.0  # the reference kernels agree with PyTorch too
