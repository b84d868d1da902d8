"""eval-looks end to end on the tiny preset: every stage really runs (train, distill, export to
TFLite, paired train), every method is scored against ground truth, and a rerun reuses stages."""

import json
import math

import pytest

from styleforge.benchmarks.eval_looks import (
    CLASSICAL,
    across_splits,
    run_all,
    summarise,
    to_markdown,
)

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
    assert "n per split (photos / scene groups): content " in markdown
    split = json.loads((out / "results.json").read_text())["looks"][0]["split"]
    assert split["test"]["photos"] >= 4 and split["test"]["groups"] >= 2


def test_rerun_reuses_finished_stages(tiny_eval):
    out, first = tiny_eval
    again = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64)
    assert again["looks"][0]["scores"] == first["looks"][0]["scores"]
    assert again["wall_seconds"] < first["wall_seconds"]


def test_several_scene_splits_are_summarised_with_their_spread():
    def result(split_seed, identity, teacher):
        scores = {m: {"psnr": identity, "ssim": 0.9, "delta_e2000": 5.0} for m in METHODS}
        scores["teacher"] = {"psnr": teacher, "ssim": 0.9, "delta_e2000": 4.0}
        split = {"content": {"photos": 7, "groups": 3}, "test": {"photos": 5, "groups": 2}}
        gate = {"psnr": 40.0, "max_abs": 3.0, "ship_gate_db": 30.0, "passes_ship_gate": True}
        return {"look": "noir", "split_seed": split_seed, "split": split, "scores": scores,
                "int8_vs_fp32": gate, "grid": f"/x/out/noir/split-{split_seed}/grid.png"}

    results = [result(0, 20.0, 24.0), result(1, 22.0, 21.0)]
    table = across_splits(results)["noir"]
    assert table["split_seeds"] == [0, 1]
    teacher = table["methods"]["teacher"]
    assert teacher["psnr_mean"] == pytest.approx(22.5) and teacher["gain_min"] == pytest.approx(-1.0)
    assert teacher["gain_max"] == pytest.approx(4.0)
    env = {"processor": "cpu", "cores": 2, "python": "3"}
    report = {"preset": "tiny", "student": "nano", "wall_seconds": 60.0, "environment": env,
              "split_seeds": [0, 1], "looks": results, "summary": summarise(results),
              "across_splits": across_splits(results)}
    markdown = to_markdown(report)
    assert "noir (scene split 1)" in markdown and "content 7/3, test 5/2" in markdown
    assert "| teacher | 22.50 [21.00, 24.00] | +1.50 [-1.00, +4.00] |" in markdown
    assert "(noir/split-1/grid.png)" in markdown
