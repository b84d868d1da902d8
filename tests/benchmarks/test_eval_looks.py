"""eval-looks end to end on the tiny preset: every stage really runs (colour generator, ResNet,
distill, export to TFLite, paired train), every method is scored against ground truth, the
summary carries the margins, selection and guard statistics, and a rerun reuses stages."""

import json
import math
from pathlib import Path

import pytest

from styleforge.benchmarks.eval_looks import (
    CLASSICAL,
    COLOUR,
    PAIRED_AUTO,
    run_all,
    summarise,
    to_markdown,
)

FULL_METHODS = {
    "identity", *CLASSICAL, COLOUR, "colour: classical init", "colour: last EMA",
    "ResNet (unpaired, CycleGAN)", "student fp32 (from colour)", "student int8 (TFLite)", "paired (ResNet)",
    PAIRED_AUTO,
}


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    out = tmp_path_factory.mktemp("evals")
    report = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64, split_seeds=[0, 1])
    return out, report


def test_every_method_scored_with_finite_metrics(tiny_eval):
    out, report = tiny_eval
    saved = json.loads((out / "results.json").read_text())
    first, second = saved["looks"]
    assert (first["look"], first["split_seed"], second["split_seed"]) == ("film-warm", 0, 1)
    assert set(first["scores"]) == FULL_METHODS  # the first split runs everything
    assert set(second["scores"]) == FULL_METHODS - {
        "ResNet (unpaired, CycleGAN)", "student fp32 (from colour)", "student int8 (TFLite)", "paired (ResNet)", PAIRED_AUTO}
    for method, s in first["scores"].items():
        assert all(math.isfinite(s[k]) for k in ("psnr", "ssim", "delta_e2000")), method
        assert 5.0 < s["psnr"] < 100.0 and 0.0 < s["ssim"] <= 1.0 and s["delta_e2000"] >= 0.0
    scores = first["scores"]
    assert scores["MKL (set-to-set)"]["psnr"] != pytest.approx(scores["identity"]["psnr"], abs=1e-3)
    # The album's 3-4 scene groups a side are too few to weigh evidence: the colour generator starts
    # from the levels fit itself (up to 8-bit rounding).
    assert first["colour"]["init_fit"].startswith("levels (fewer than 5 scene groups")
    assert scores["colour: classical init"]["psnr"] == pytest.approx(scores["levels (set-to-set)"]["psnr"], abs=0.3)
    # The interactive comparison page: identity, every classical transfer, the learned and the
    # paired models, against the ground truth, self-contained.
    page = Path(first["preview"]).read_text()
    for label in ("identity", *CLASSICAL, COLOUR, PAIRED_AUTO, "ground truth"):
        assert f"> {label}</label>" in page, label
    assert "http://" not in page and "https://" not in page and page.count("data:image/") >= 3 * 4
    gate = first["int8_vs_fp32"]
    assert gate["passes_ship_gate"] == (gate["psnr"] >= gate["ship_gate_db"])
    assert second["int8_vs_fp32"] is None
    # train --paired's own choice, recorded with the recipe fit's held-out figures and what each
    # local operator was worth: the generator is the recipe exactly when an operator was kept
    auto = first["paired_auto"]
    assert auto["generator"] == ("recipe" if any(o["kept"] for o in auto["ops"]) else "colour")
    assert {o["op"] for o in auto["ops"]} >= {"bloom", "vignette", "clarity"} and "recipe_db" in auto
    assert second["paired_auto"] is None
    # every teacher train judged carries its verdict (the tiny runs are not degenerate)
    assert set(first["verdicts"]) == {"resnet", "paired", "paired-auto"} and second["verdicts"] == {}
    selection = first["colour"]["selection"]
    assert selection["candidates"] == 3 and selection["picked_init"] == (selection["picked"] == "init")
    summary = saved["summary"]["film-warm"]
    assert len(summary["splits"]) == 2 and summary["kind"] == "tone"
    margins = [row["colour_minus_best"] for row in summary["splits"]]
    assert summary["stats"]["colour_minus_best"][0] == pytest.approx(sum(margins) / 2)
    assert 0 <= summary["init_picked"] <= 2


def test_outputs_for_a_person(tiny_eval):
    out, _ = tiny_eval
    assert (out / "film-warm" / "split-0" / "grid.png").stat().st_size > 10_000
    markdown = (out / "results.md").read_text()
    assert "| film-warm |" in markdown and "ship gate" in markdown and "init shipped" in markdown
    assert "n per split (photos / scene groups): content " in markdown
    split = json.loads((out / "results.json").read_text())["looks"][0]["split"]
    assert split["test"]["photos"] >= 4 and split["test"]["groups"] >= 2


def test_rerun_reuses_finished_stages(tiny_eval):
    out, first = tiny_eval
    again = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64, split_seeds=[0, 1])
    assert again["looks"][0]["scores"] == first["looks"][0]["scores"]
    assert again["wall_seconds"] < first["wall_seconds"]
    # Nothing retrained, nothing rescored: the saved scores stand (a cut-short run resumes cheaply);
    # a retrained colour stage is scored anew.
    assert again["looks"][0]["stage_seconds"]["score"] == first["looks"][0]["stage_seconds"]["score"]
    (out / "film-warm" / "split-1" / ".stages" / "colour.json").unlink()
    third = run_all(["film-warm"], out, preset="tiny", student="nano", export_size=64, split_seeds=[0, 1])
    assert third["looks"][1]["stage_seconds"]["score"] != first["looks"][1]["stage_seconds"]["score"]
    assert third["looks"][1]["scores"]["identity"] == first["looks"][1]["scores"]["identity"]


def test_summary_means_targets_and_guard_counts(tmp_path):
    def result(split_seed, identity, classical, colour, ok=True):
        scores = {m: {"psnr": identity, "ssim": 0.9, "delta_e2000": 5.0} for m in FULL_METHODS}
        scores["MKL (set-to-set)"]["psnr"] = classical
        scores[COLOUR] = {"psnr": colour, "ssim": 0.9, "delta_e2000": 4.0}
        scores["colour: classical init"] = {"psnr": classical, "ssim": 0.9, "delta_e2000": 4.0}
        scores["colour: last EMA"] = {"psnr": colour - 0.5, "ssim": 0.9, "delta_e2000": 4.0}
        split = {"content": {"photos": 7, "groups": 3}, "test": {"photos": 5, "groups": 2}}
        selection = {"picked": "init", "picked_init": True, "candidates": 3,
                     "criterion": {"selected": 1.0, "init": 1.0, "last": 2.0},
                     "psnr": {"selected": colour, "init": classical, "last": colour}}
        verdict = {"ok": ok, "failed": [] if ok else ["collapse"], "diversity": 1.0, "structure": 1.0,
                   "change_levels": 5.0}
        return {"look": "noir", "split_seed": split_seed, "split": split, "scores": scores,
                "colour": {"verdict": verdict, "selection": selection, "chroma_cab": 1.0},
                "int8_vs_fp32": None, "grid": str(tmp_path / "noir" / f"split-{split_seed}" / "grid.png")}

    results = [result(0, 20.0, 22.0, 25.0), result(1, 22.0, 23.0, 26.0, ok=False)]
    summary = summarise(results)["noir"]
    assert summary["stats"]["colour_minus_best"][0] == pytest.approx(3.0)
    assert summary["stats"]["colour_minus_identity"][0] == pytest.approx(4.5)
    assert summary["target_met"] and summary["flagged"] == 1 and summary["false_alarms"] == 1
    assert summary["init_picked"] == 2 and summary["noir_chroma_cab"] == 1.0
    assert summary["stats"]["last_minus_start"] == pytest.approx((2.5, 0.0))  # 25 - .5 - 22, 26 - .5 - 23
    assert summary["stats"]["selected_minus_start"] == pytest.approx((3.0, 0.0))
    results[1] = result(1, 22.0, 25.0, 25.5)  # margin mean 1.75 but identity margin (4.0) ok
    assert summarise(results)["noir"]["target_met"]
    results[1] = result(1, 22.0, 25.5, 25.5)  # margin mean 1.5 - ok; then below
    results[0] = result(0, 20.0, 24.0, 25.0)
    assert not summarise(results)["noir"]["target_met"]
    env = {"processor": "cpu", "cores": 2, "python": "3"}
    report = {"preset": "tiny", "student": "nano", "steps": None, "wall_seconds": 60.0, "environment": env,
              "split_seeds": [0, 1], "looks": results, "summary": summarise(results)}
    markdown = to_markdown(report, tmp_path)
    assert "noir (scene split 1)" in markdown and "content 7/3, test 5/2" in markdown
    assert "| noir | 21.00 ± 1.41 | 24.75 ± 1.06 | 25.25 ± 0.35 | +0.50 ± 0.71 |" in markdown
    assert "| not met | +0.00 ± 0.71 | +0.50 ± 0.71 | 2/2 |" in markdown  # last EMA / shipped − start
    assert "(noir/split-1/grid.png)" in markdown


def test_train_set_reaches_the_colour_run_and_an_out_folder_keeps_one_setting(tmp_path, capsys):
    from styleforge.cli import main as cli
    from styleforge.train.config import read_yaml

    out = tmp_path / "ev"
    base = ["eval-looks", "--preset", "tiny", "--looks", "film-warm", "--full-splits", "0", "--no-paired",
            "--out", str(out)]
    assert cli([*base, "--train-set", "loss.gan=rahinge", "--train-set", "model.shrink=1"]) == 0
    capsys.readouterr()
    trained = read_yaml(out / "film-warm" / "split-0" / "colour" / "config.yaml")
    assert trained["loss"]["gan"] == "rahinge" and trained["model"]["colour"]["shrink"] == 1.0
    assert "`loss.gan=rahinge`, `model.shrink=1`" in (out / "results.md").read_text()
    assert json.loads((out / "results.json").read_text())["train_set"] == ["loss.gan=rahinge", "model.shrink=1"]

    for argv, message in [
        ([*base, "--train-set", "loss.gan=hinge"], "other settings (train_set:"),  # would mix two settings
        ([*base, "--train-set", "loss.gan=rahinge", "--train-set", "model.shrink=1", "--steps", "5"], "steps: 0 there, 5 now"),
        ([*base[:-1], str(tmp_path / "ev2"), "--train-set", "loss.nope=1"], "--train-set: unknown config key"),
    ]:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("styleforge eval-looks: error:") and message in err, (argv, err)
    assert not (tmp_path / "ev2" / "film-warm").exists(), "a bad override is refused before anything runs"
    # The same settings again (e.g. to add looks or splits) reuse the finished stages.
    assert cli([*base, "--train-set", "loss.gan=rahinge", "--train-set", "model.shrink=1"]) == 0
