"""``styleforge bench`` on a look-recipe bundle: the recipe at full resolution beside the same
operators done with Pillow's filters, its CPU time and peak RSS, and PIL in/out beside arrays."""

from __future__ import annotations

import pytest

from styleforge.benchmarks import report
from styleforge.benchmarks.bench import BenchSettings, benchmark, plan_cells, resolve_target
from styleforge.benchmarks.recipe_bench import EXAMPLE_STEPS
from styleforge.cli import main


def test_recipe_cells_default_to_a_frame_and_a_24mp_photo(recipe_bundle):
    cells, _ = plan_cells([resolve_target(recipe_bundle)], ["lut"], artifacts=["recipe"])
    assert [(c.artifact, c.size) for c in cells] == [("recipe", (1080, 1920)), ("recipe", (4000, 6000))]


def test_bench_measures_the_recipe_beside_pillow(recipe_bundle, tmp_path, capsys):
    result = benchmark([recipe_bundle], backends=["lut"], artifacts=["recipe"], sizes=[(120, 200)], threads=[2],
                       settings=BenchSettings(warmup=1, runs=2), probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell
    recipe = cell["recipe"]
    assert recipe["steps"] == [name for name, _ in EXAMPLE_STEPS]
    assert recipe["cpu_ms"] > 0 and recipe["peak_rss_mb"] > 0 and recipe["pillow_ms"] > 0
    assert recipe["ratio_vs_pillow"] == pytest.approx(cell["latency_ms"]["p50"] / recipe["pillow_ms"])
    assert recipe["pillow_psnr"] > 35.0  # the Pillow baseline does the same operators (measured 47 dB at 960x640)
    assert recipe["pil_vs_array"] == pytest.approx(recipe["pil_ms"] / recipe["array_ms"])
    assert cell["fidelity"]["psnr"] >= 50.0  # the 8-bit path against PyTorch's reference outputs
    text = report.format_table(result)
    assert "Look recipe" in text and "runtime / Pillow" in text and "clarity + colour_lut + bloom + vignette" in text
    assert "### Look recipe" in report.to_markdown(result) and "### LUT path" not in report.to_markdown(result)
    # the CLI reaches it: a recipe bundle's recipe artifact is a lut-backend cell
    assert main(["bench", str(recipe_bundle), "--backend", "lut", "--artifact", "recipe", "--size", "64x96",
                 "--runs", "1", "--warmup", "0"]) == 0
    assert "Look recipe" in capsys.readouterr().out


def test_bench_measures_a_recipe_pillow_has_no_filter_for(tmp_path):
    """A recipe with smooth_skin (glow's operators) is timed like any other; the Pillow columns
    say n/a instead of failing the cell."""
    import numpy as np

    from styleforge.export import calibration as cal
    from styleforge.export.recipe_export import export_recipe_bundle
    from styleforge.runtime.lut import identity_table
    from styleforge.train.models.recipe import RecipeGenerator

    steps = [("smooth_skin", {"amount": 0.6, "radius": 0.01, "edge": 0.05}),
             ("colour_lut", {"table": np.clip(identity_table(17) ** 0.9, 0, 1).astype(np.float32)}),
             ("bloom", {"strength": 0.4, "threshold": 0.7, "radius": 0.04})]
    bundle = tmp_path / "glow"
    export_recipe_bundle(RecipeGenerator.from_steps(steps, lut_size=17), bundle, heldout_images=cal.default_photos()[:1],
                         style="glow", progress=False, ffmpeg_size=(160, 120))
    result = benchmark([bundle], backends=["lut"], artifacts=["recipe"], sizes=[(400, 600)], threads=[2],
                       settings=BenchSettings(warmup=0, runs=1), probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell
    assert cell["recipe"]["steps"] == ["smooth_skin", "colour_lut", "bloom"] and cell["latency_ms"]["p50"] > 0
    assert cell["recipe"]["pillow_ms"] is None and cell["recipe"]["ratio_vs_pillow"] is None
    assert "n/a (no Pillow filter)" in report.format_table(result)
