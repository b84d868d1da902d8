"""``styleforge bench`` end to end on the shared tiny bundle: a 2-backend x 3-artifact x 2-thread
matrix with real interpreters, each cell in its own worker process; the JSON schema, the
consistency of every number, the markdown and plot outputs, and ``--compare``.

No test asserts a speed: the machine is shared, only internal consistency is checked.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from PIL import Image

from styleforge.benchmarks import report
from styleforge.cli import main

ARTIFACTS = ("tflite_fp32", "tflite_int8", "onnx")


@pytest.fixture(scope="module")
def matrix(tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rc = main([
        "bench", str(tiny_bundle), "--backend", "litert,onnxruntime", "--artifact", ",".join(ARTIFACTS),
        "--threads", "1,2", "--runs", "5", "--warmup", "1",
        "--json", str(out / "a.json"), "--markdown", str(out / "a.md"), "--plot", str(out / "a.png"),
    ])
    assert rc == 0
    return out, json.loads((out / "a.json").read_text())


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_matrix_plans_only_runnable_cells(matrix):
    _, result = matrix
    assert result["schema"] == "styleforge-bench/1"
    got = sorted((c["artifact"], c["backend"], c["threads"]) for c in result["cells"])
    want = sorted([(a, "litert", t) for a in ("tflite_fp32", "tflite_int8") for t in (1, 2)]
                  + [("onnx", "onnxruntime", t) for t in (1, 2)])
    assert got == want
    assert [c for c in result["cells"] if c["status"] != "ok"] == []


def test_environment_block(matrix):
    _, result = matrix
    env = result["environment"]
    assert env["cpu"]["logical_cores"] >= 1 and env["cpu"]["arch"]
    assert env["python"] and env["packages"]["onnxruntime"]
    assert "ai-edge-litert" in env["packages"] or "tensorflow" in env["packages"]
    assert "CPUExecutionProvider" in env["onnxruntime_providers"]


def test_every_number_is_finite_and_consistent(matrix, tiny_bundle):
    _, result = matrix
    for cell in result["cells"]:
        where = f"{cell['artifact']}/{cell['backend']}/t{cell['threads']}"
        lat = cell["latency_ms"]
        assert all(_finite(lat[k]) and lat[k] > 0 for k in ("min", "p10", "p50", "p90", "p99", "max", "mean")), where
        assert lat["min"] <= lat["p10"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], where
        assert lat["min"] <= lat["mean"] <= lat["max"] and lat["std"] >= 0, where
        assert cell["runs"] == 5
        assert cell["ips"] == pytest.approx(1000.0 / lat["mean"], rel=1e-9)
        assert all(_finite(cell[k]) and cell[k] > 0 for k in ("import_ms", "load_ms", "first_ms")), where
        assert cell["size"] == [64, 64]
        # memory: each cell is a fresh process, so the peak is this cell's own
        assert 0 < cell["rss_before_mb"] <= cell["rss_after_load_mb"] <= cell["rss_peak_mb"], where
        assert cell["rss_increase_mb"] == pytest.approx(cell["rss_peak_mb"] - cell["rss_before_mb"])
        assert cell["artifact_bytes"] == (tiny_bundle / _file_of(tiny_bundle, cell["artifact"])).stat().st_size
        if cell["macs"] is not None:
            assert cell["gmacs_per_s"] == pytest.approx(cell["macs"] / (lat["p50"] / 1000) / 1e9)
        fid = cell["fidelity"]
        assert fid is not None and fid["references"] >= 1, where
        assert _finite(fid["psnr"]) and fid["psnr"] <= fid["psnr_mean"], where
        # loose: int8 of a 64x64 nano model still lands well above 20 dB of the fp32 reference
        assert fid["psnr"] > (20.0 if cell["artifact"] == "tflite_int8" else 35.0), (where, fid)
        assert cell["backend_info"]["threads"] in (cell["threads"], None) or cell["backend"] == "onnxruntime"


def test_xnnpack_detected_from_the_interpreter_log(matrix):
    _, result = matrix
    fp32 = [c for c in result["cells"] if c["artifact"] == "tflite_fp32"]
    assert fp32 and all(c["backend_info"]["xnnpack_applied"] is True for c in fp32)


def test_markdown_and_plot_written(matrix):
    out, result = matrix
    md = (out / "a.md").read_text()
    assert "## Environment" in md and "| p50 |" in md
    for artifact in ARTIFACTS:
        assert f"| {artifact} |" in md
    assert md.count("\n| tiny |") == len(result["cells"])
    with Image.open(out / "a.png") as png:
        assert png.size[0] > 300 and png.size[1] > 100


def test_compare_ratios_and_differences(matrix, tmp_path, capsys):
    out, result = matrix
    slower = copy.deepcopy(result)
    for cell in slower["cells"]:
        cell["latency_ms"] = {k: v * 2 for k, v in cell["latency_ms"].items()}
        cell["ips"] /= 2
        cell["fidelity"]["psnr"] -= 1.5
    slower["cells"].pop()  # one cell only in A
    comparison = report.compare(result, slower)
    assert len(comparison["rows"]) == len(result["cells"]) - 1 and len(comparison["only_a"]) == 1
    for row in comparison["rows"]:
        assert row["p50_ratio"] == pytest.approx(2.0) and row["ips_ratio"] == pytest.approx(0.5)
        assert row["psnr_diff_db"] == pytest.approx(-1.5)
    report.write_json(slower, tmp_path / "b.json")
    capsys.readouterr()
    assert main(["bench", "--compare", str(out / "a.json"), str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    assert "2.00x" in printed and "-1.50" in printed and "only in A" in printed


def _file_of(bundle, key: str) -> str:
    return json.loads((bundle / "manifest.json").read_text())["artifacts"][key]["file"]
