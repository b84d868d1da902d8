"""``styleforge bench`` on LUT bundles: the LUT path beside the conv artifacts, in the same table."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from styleforge.benchmarks import report
from styleforge.benchmarks.bench import BenchSettings, benchmark, plan_cells, resolve_target


@pytest.fixture(scope="module")
def lut_bundle(tmp_path_factory) -> Path:
    from styleforge.export.lut_export import export_lut_bundle, look_colour_fn

    out = tmp_path_factory.mktemp("lutbench") / "film-warm-lut"
    export_lut_bundle(look_colour_fn("film-warm"), out, size=17, style="film-warm", progress=False)
    return out


def test_lut_cells_default_to_a_frame_and_a_24mp_photo(lut_bundle):
    cells, _ = plan_cells([resolve_target(lut_bundle)], ["lut", "onnxruntime"])
    assert [(c.artifact, c.backend, c.size) for c in cells] == [
        ("lut_cube", "lut", (1080, 1920)), ("lut_cube", "lut", (4000, 6000))]


def test_bench_measures_the_lut_path(lut_bundle, tmp_path):
    result = benchmark([lut_bundle], backends=["lut"], sizes=[(96, 160)], threads=[1, 2],
                       settings=BenchSettings(warmup=1, runs=3), probe_environment=False)
    cells = result["cells"]
    assert [c["status"] for c in cells] == ["ok", "ok"], cells
    for cell in cells:
        assert cell["size"] == [96, 160] and cell["runs"] == 3
        lut = cell["lut"]
        assert lut["decode_ms"] > 0 and lut["encode_ms"] > 0 and lut["pillow_1t_ms"] > 0
        assert lut["pillow_max_abs"] <= 1  # the same LUT through Pillow's Color3DLUT
        assert list(lut["inputs"]) == ["smooth", "noisy", "uniform"]  # side by side, worst case last
        for kind in lut["inputs"].values():
            assert kind["p50_ms"] > 0 and kind["pillow_1t_ms"] > 0 and kind["pillow_max_abs"] <= 1
            assert kind["ratio_vs_pillow"] == pytest.approx(kind["p50_ms"] / kind["pillow_1t_ms"])
            assert kind["peak_rss_mb"] > 0
            assert kind["pil_vs_array"] == pytest.approx(kind["pil_ms"] / kind["array_ms"])  # PIL in/out beside arrays
        assert cell["fidelity"]["psnr"] >= 40.0  # vs the bundle's references (the colour function)
        assert cell["rss_peak_mb"] > 0
        assert cell["gmacs_per_s"] is None  # no MAC count for a table lookup
    text = report.format_table(result)
    assert "LUT path" in text and "Pillow 1-thread ms" in text and "uniform" in text and "PIL in/out / array" in text
    assert "### LUT path" in report.to_markdown(result)


def test_lut_beside_a_tiled_student(tiny_bundle, tmp_path):
    """A bundle with a conv student and a LUT: the LUT cell scores itself against the student."""
    from styleforge.export import calibration as cal
    from styleforge.export.lut_export import HELDOUT_SIZE, look_colour_fn, write_lut_artifacts
    from styleforge.runtime.manifest import load_manifest

    both = tmp_path / "both"
    shutil.copytree(tiny_bundle, both)
    manifest = load_manifest(both)
    heldout = cal.heldout_crops(cal.split_default_photos()[1], HELDOUT_SIZE)
    luts = write_lut_artifacts(both, look_colour_fn("film-warm"), size=17, heldout_u8=heldout)
    replace(manifest, artifacts={**manifest.artifacts, **luts}).save(both)
    result = benchmark([both], backends=["lut", "onnxruntime"], sizes=[(64, 64), (128, 192)],
                       settings=BenchSettings(warmup=1, runs=2), probe_environment=False)
    cells = {(c["backend"], tuple(c["size"])): c for c in result["cells"]}
    assert set(cells) == {("onnxruntime", (64, 64)), ("lut", (64, 64)), ("lut", (128, 192))}  # one table
    assert all(c["status"] == "ok" for c in cells.values()), result["cells"]
    student = cells[("lut", (128, 192))]["lut"]["vs_student"]
    assert student["size"] == [128, 192] and student["psnr"] > 15.0  # both are film-warm, roughly
