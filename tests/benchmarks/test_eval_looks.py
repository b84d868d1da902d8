"""eval-looks end to end on the tiny preset: every stage really runs (train, distill, export to
TFLite, paired train), every method is scored against ground truth, and a rerun reuses stages."""

import json
import math

import pytest

from styleforge.benchmarks.eval_looks import CLASSICAL, run_all

METHODS = {
    "identity", *CLASSICAL, "teacher", "student fp32", "student int8 (TFLite)", "paired teacher",
}


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    out = tmp_path_factory.mktemp("evals")
    report = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64)
    return out, report


def test_every_method_scored_with_finite_metrics(tiny_eval):
    out, report = tiny_eval
    saved = json.loads((out / "results.json").read_text())
    assert saved["looks"][0]["look"] == "film-warm"
    scores = saved["looks"][0]["scores"]
    assert set(scores) == METHODS
    for method, s in scores.items():
        assert all(math.isfinite(s[k]) for k in ("psnr", "ssim", "delta_e2000")), method
        assert 5.0 < s["psnr"] < 100.0 and 0.0 < s["ssim"] <= 1.0 and s["delta_e2000"] >= 0.0
    # The classical baselines really change the photos; the identity is the input itself.
    assert scores["histogram match"]["psnr"] != pytest.approx(scores["identity"]["psnr"], abs=1e-3)
    gate = saved["looks"][0]["int8_vs_fp32"]
    assert gate["passes_ship_gate"] == (gate["psnr"] >= gate["ship_gate_db"])
    summary = saved["summary"]["film-warm"]
    assert summary["best_classical"] in CLASSICAL
    expected = scores["student int8 (TFLite)"]["psnr"] - scores["teacher"]["psnr"]
    assert summary["int8_minus_teacher_db"] == pytest.approx(expected)


def test_outputs_for_a_person(tiny_eval):
    out, _ = tiny_eval
    assert (out / "film-warm" / "grid.png").stat().st_size > 10_000
    markdown = (out / "results.md").read_text()
    assert "film-warm" in markdown and "PSNR" in markdown and "ship gate" in markdown


def test_rerun_reuses_finished_stages(tiny_eval):
    out, first = tiny_eval
    again = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64)
    assert again["looks"][0]["scores"] == first["looks"][0]["scores"]
    assert again["wall_seconds"] < first["wall_seconds"]
