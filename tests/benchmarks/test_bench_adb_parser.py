"""The benchmark_model parser on real recorded outputs (sources in data/SOURCES.md) and the adb driver's
failure paths. No phone is attached here: the adb run itself is not exercised."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from styleforge.benchmarks.adb import AdbDevice, AdbError, parse_benchmark_model, to_cell_metrics

DATA = Path(__file__).parent / "data"


def _read(name: str) -> str:
    return (DATA / name).read_text()


def test_full_log_with_op_profiling_riscv():
    parsed = parse_benchmark_model(_read("benchmark_model_riscv64_mobilenet_v1.txt"))
    assert parsed["init_us"] == 17187
    assert parsed["first_us"] == 3512391
    assert parsed["warmup_avg_us"] == pytest.approx(3.51239e6)
    assert parsed["avg_us"] == pytest.approx(2.95034e6)
    # the regular-run line, not the warmup line (count=1) nor the op profiler's trailing
    # "Timings (microseconds): count=50 ... avg=2.9499e+06" after the summary
    runs = parsed["runs"]
    assert runs["count"] == 50 and runs["min"] == 2727568 and runs["max"] == 3189954
    assert runs["avg"] == pytest.approx(2.95034e6) and runs["std"] == 109798
    assert parsed["memory_init_mb"] == pytest.approx(4.21094)
    assert parsed["memory_overall_mb"] == pytest.approx(46.0859)
    assert parsed["params"]["Num threads"] == "4"
    assert parsed["params"]["Graph"] == "./mobilenet_v1_1.0_224.tflite"
    assert parsed["model_size_mb"] == pytest.approx(16.9008)


def test_short_phone_log_to_cell_schema():
    parsed = parse_benchmark_model(_read("benchmark_model_mi11_yolov5s.txt"))
    assert parsed["avg_us"] == pytest.approx(92571.2)
    assert parsed["memory_overall_mb"] == pytest.approx(61.0547)  # "Peak memory footprint" wording
    cell = to_cell_metrics(parsed)
    lat = cell["latency_ms"]
    assert lat["min"] == pytest.approx(89.745) and lat["max"] == pytest.approx(96.719)
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert lat["p50"] is None and lat["p99"] is None  # not printed by this build: n/a, not invented
    assert cell["ips"] == pytest.approx(1000.0 / lat["mean"])
    assert cell["load_ms"] == pytest.approx(365.972) and cell["first_ms"] == pytest.approx(120.877)
    assert cell["runs"] == 50
    assert cell["fidelity"] is None
    assert all(math.isfinite(v) for v in (lat["min"], lat["mean"], lat["std"], cell["rss_increase_mb"]))


def test_logcat_prefixed_lines_parse_the_same():
    text = _read("benchmark_model_mi11_yolov5s.txt")
    prefixed = "\n".join(f"I tflite  : {line}" for line in text.splitlines())
    assert parse_benchmark_model(prefixed) == parse_benchmark_model(text)


def test_failed_delegate_run_raises_with_the_tools_reason():
    with pytest.raises(AdbError, match="Benchmarking failed") as info:
        parse_benchmark_model(_read("benchmark_model_mi11_yolov5s_int8_nnapi_failed.txt"))
    assert "NNAPI" in str(info.value)


def test_missing_adb_is_a_clear_error(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0")
    with pytest.raises(AdbError, match="not found on PATH"):
        AdbDevice(adb="adb-that-does-not-exist").push(model)


FAKE_ADB = """#!/bin/sh
# Stands in for Android's adb (no phone here): logs its arguments, answers getprop, and replays a
# recorded real benchmark_model output for the benchmark command.
echo "$@" >> "{log}"
case "$*" in
  *getprop*ro.product.model*) echo "Mi 11" ;;
  *getprop*) echo "" ;;
  *--graph=*) cat "{recording}" ;;
esac
"""


def test_adb_matrix_cell_from_a_replayed_phone(tiny_bundle, tmp_path, monkeypatch):
    from styleforge.benchmarks.bench import BenchSettings, benchmark

    log = tmp_path / "adb.log"
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text(FAKE_ADB.format(log=log, recording=DATA / "benchmark_model_mi11_yolov5s.txt"))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    settings = BenchSettings(warmup=2, runs=50, adb_serial="R58M123", adb_binary="/data/local/tmp/bm")
    result = benchmark([tiny_bundle], backends=["adb"], artifacts=["tflite_fp32", "tflite_int8"],
                       threads=[4], delegate="gpu", settings=settings, probe_environment=False)

    calls = log.read_text().splitlines()
    assert all(c.startswith("-s R58M123 ") for c in calls)
    pushes = [c for c in calls if " push " in c]
    assert len(pushes) == 2 and pushes[0].endswith("/data/local/tmp/styleforge/model_fp32.tflite")
    runs = [c for c in calls if "/data/local/tmp/bm" in c]
    assert len(runs) == 2
    for flag in ("--graph=/data/local/tmp/styleforge/model_fp32.tflite", "--num_threads=4",
                 "--warmup_runs=2", "--num_runs=50", "--use_gpu=true"):
        assert flag in runs[0]
    assert result["environment"]["adb_devices"][0]["model"] == "Mi 11"
    for cell in result["cells"]:
        assert cell["status"] == "ok", cell
        assert cell["backend"] == "adb" and cell["threads"] == 4
        assert cell["latency_ms"]["mean"] == pytest.approx(92.5712) and cell["fidelity"] is None
        assert cell["size"] == [64, 64] and cell["artifact_bytes"] > 0
        assert cell["gmacs_per_s"] == pytest.approx(cell["macs"] / 0.0925712 / 1e9)  # no p50: mean

