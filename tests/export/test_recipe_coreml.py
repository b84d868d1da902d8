"""A look recipe's Core ML graphs: ``recipe_fp32.mlpackage`` and ``recipe_fp16.mlpackage`` converted
from the recipe graph (``export RUN --formats cube,onnx,coreml``), hashed, with the manifest facts of
the recipe's other graphs; each package reads back as a spec of the stated size whose MIL program
holds no refused op. Off macOS (no Core ML prediction) they are marked not verified, listed by the
runtime and refused with one line when asked to run, as every Core ML artifact is."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from styleforge.export import verify
from styleforge.export.coreml_export import coreml_available
from styleforge.export.recipe_export import export_recipe_bundle
from styleforge.export.recipe_graph import (
    COREML_FILES,
    REFUSED_MIL_OPS,
    GraphOptions,
    RecipeGraphError,
)
from styleforge.runtime import open_bundle
from styleforge.runtime.manifest import load_manifest

from .test_recipe_graph import EVERY_OP, photos, recipe

pytestmark = pytest.mark.skipif(coreml_available() is not None, reason=str(coreml_available()))
SIZE = (64, 96)
ON_MACOS = sys.platform == "darwin"
# bloom at 12 % of the short side: sigma 7.7 px at 64 px, so the graph goes down a pyramid level
OPS = [(name, {**p, "radius": 0.12}) if name == "bloom" else (name, p) for name, p in EVERY_OP]
VIGNETTE = [op for op in EVERY_OP if op[0] == "vignette"]  # one cheap operator where the CLI is the point


def _export(run: Path, out: Path, *options: str) -> int:
    from styleforge.cli import main

    return main(["export", str(run), "--size", f"{SIZE[0]}x{SIZE[1]}", "--out", str(out), "--quiet", *options])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """Every operator, Core ML only (the ONNX graph has its own tests)."""
    out = tmp_path_factory.mktemp("recipe-coreml") / "bundle"
    export_recipe_bundle(recipe(OPS), out, style="every-op", progress=False, ffmpeg_size=(160, 120),
                         graphs=GraphOptions(formats=("coreml",), size=SIZE))
    return out


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory) -> Path:
    from styleforge.train.recipe_run import save_recipe_run

    model = recipe(VIGNETTE)
    run = tmp_path_factory.mktemp("recipe-coreml-run") / "run"
    save_recipe_run(model, run, {"generator": {"arch": "recipe", "config": model.config}, "style": "vignette"}, "")
    return run


def test_the_bundle_holds_core_ml_graphs_of_the_recipe(bundle):
    manifest = load_manifest(bundle)
    assert {"recipe", "lut_cube", "coreml_fp32", "coreml_fp16"} <= set(manifest.artifacts)
    assert not any(a.format in ("onnx", "tflite") for a in manifest.artifacts.values())
    assert not (bundle / "recipe.onnx").exists() and not (bundle / ".recipe-graph-work").exists()
    steps = ["colour_lut", *(name for name, _ in OPS)]
    for key, file in COREML_FILES.items():
        art = manifest.artifacts[key]
        precision = key.split("_", 1)[1]
        assert art.file == file and (bundle / file).is_dir() and art.format == "coreml" and art.precision == precision
        assert art.input.shape == art.output.shape == (1, 3, *SIZE) and art.input.layout == "NCHW"
        assert art.extra["whole_photo"] is True and art.extra["size"] == list(SIZE) and art.extra["steps"] == steps
        assert art.extra["compute_precision"] == precision and art.extra["converter"].startswith("coremltools ")
        assert art.fidelity["bound_psnr"] == verify.DEFAULT_BOUNDS_DB[precision]
        assert art.ops and not REFUSED_MIL_OPS & set(art.ops)
        assert art.compatibility["coreml"]["verdict"].startswith("converted")
        if ON_MACOS:
            assert art.fidelity["verified"] is True and art.fidelity["psnr"] >= art.fidelity["bound_psnr"]
        else:
            assert art.fidelity == {"verified": verify.NOT_VERIFIED_COREML, "bound_psnr": art.fidelity["bound_psnr"]}
            assert art.compatibility["coreml"]["notes"] == [verify.NOT_VERIFIED_COREML]


def test_the_cli_exports_a_recipe_run_with_onnx_and_core_ml_graphs(recipe_run, tmp_path, capfd):
    """... and under --quiet says only where the bundle is: none of coremltools' pass bars or warnings."""
    assert _export(recipe_run, tmp_path / "b", "--formats", "cube,onnx,coreml") == 0
    out, err = capfd.readouterr()
    assert "Running MIL" not in err and "coremltools" not in err and "passes/s" not in err, err
    assert len(out.strip().splitlines()) == 1 and out.strip().endswith("onnx, coreml_fp32, coreml_fp16)"), out
    manifest = load_manifest(tmp_path / "b")
    assert {"recipe", "lut_cube", "onnx", *COREML_FILES} <= set(manifest.artifacts) and manifest.style == "vignette"
    assert all(manifest.artifacts[k].input.shape == (1, 3, *SIZE) for k in ("onnx", *COREML_FILES))
    assert manifest.artifacts["onnx"].fidelity["verified"] is True
    assert manifest.artifacts["onnx"].compatibility["coreml"]["verdict"].startswith("converted")


def test_the_packages_read_back_as_specs_of_the_stated_size(bundle):
    """The spec, read from the package on disk, is the manifest's I/O and ops report; its MIL program
    has the recipe graph's ops (gathers for the LUT, the pyramid for bloom) and no refused one."""
    import coremltools as ct

    from styleforge.export.coreml_export import coreml_ops

    manifest = load_manifest(bundle)
    for key, file in COREML_FILES.items():
        spec = ct.utils.load_spec(str(bundle / file))
        assert spec.WhichOneof("Type") == "mlProgram"
        (inp,), (out,) = spec.description.input, spec.description.output
        assert (inp.name, out.name) == ("input", "output")
        for feature in (inp, out):
            assert list(feature.type.multiArrayType.shape) == [1, 3, *SIZE]
        ops = coreml_ops(bundle / file)
        assert ops == manifest.artifacts[key].ops
        assert {"gather", "conv", "pad", "avg_pool", "upsample_bilinear", "sigmoid"} <= set(ops), ops
        io = manifest.artifacts[key].extra["coreml_io"]
        assert io["input"]["shape"] == io["output"]["shape"] == [1, 3, *SIZE]
        assert io["input"]["dtype"] == ("float16" if key == "coreml_fp16" else "float32")


def test_the_packages_are_hash_checked(bundle, tmp_path):
    from styleforge.runtime.bundle_files import verified_package
    from styleforge.runtime.contract import BundleError

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    art = load_manifest(copy).artifacts["coreml_fp16"]
    assert verified_package(copy, art) == copy / art.file
    weights = next(p for p in sorted((copy / art.file).rglob("*")) if p.is_file() and p.stat().st_size > 64)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: only the hash can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        verified_package(copy, load_manifest(copy).artifacts["coreml_fp16"])


@pytest.mark.skipif(ON_MACOS, reason="Core ML runs there")
def test_the_runtime_lists_them_and_refuses_to_run_them_with_one_line(bundle, tmp_path, capsys):
    from PIL import Image

    from styleforge.cli import main
    from styleforge.runtime.backends import BackendError

    assert open_bundle(bundle).artifact.key == "recipe"  # auto: the recipe, at any size
    with pytest.raises(BackendError, match="coreml_fp16") as err:
        open_bundle(bundle, artifact="coreml")
    assert "\n" not in str(err.value) and "only macOS runs it" in str(err.value)
    photo = tmp_path / "photo.png"
    Image.fromarray(photos(SIZE, 1)[0]).save(photo)
    capsys.readouterr()
    for option in (["--artifact", "coreml_fp32"], ["--backend", "coreml"]):
        assert main(["stylize", str(bundle), str(photo), *option, "--out", str(tmp_path / "out"), "--quiet"]) == 2
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and "Traceback" not in err_lines[0], err_lines
        assert not (tmp_path / "out" / "photo.png").exists()
    assert main(["stylize", str(bundle), str(photo), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "photo.png").is_file()  # the recipe runs

    assert main(["info", str(bundle)]) == 0
    listed = capsys.readouterr().out
    assert all(key in listed and file in listed for key, file in COREML_FILES.items())
    assert main(["preview", str(bundle), str(photo), "--out", str(tmp_path / "page")]) == 0
    assert "Core ML" not in (tmp_path / "page" / "index.html").read_text().split("<script")[0]
    capsys.readouterr()
    assert main(["preview", str(bundle), str(photo), "--artifacts", "coreml", "--out", str(tmp_path / "page2")]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "whole-photo graph" in err_lines[0]


@pytest.mark.skipif(ON_MACOS, reason="Core ML runs there")
def test_bench_lists_them_as_skipped_off_macos(bundle):
    from styleforge.benchmarks.bench import BenchSettings, benchmark

    result = benchmark([bundle], backends=["coreml"], artifacts=["coreml_fp16"], threads=[1],
                       settings=BenchSettings(warmup=0, runs=1), probe_environment=False)
    (cell,) = result["cells"]
    assert cell["artifact"] == "coreml_fp16" and cell["status"] == "skipped" and "macOS" in cell["error"], cell


def test_a_failed_export_keeps_the_bundle_it_would_replace(bundle, tmp_path):
    """The ONNX graph below an impossible bound: the Core ML packages are converted after it, but
    nothing of the new bundle lands and the old one is left whole."""
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    with pytest.raises(RecipeGraphError, match="gate failed; nothing was written") as err:
        export_recipe_bundle(recipe(VIGNETTE), target, force=True, progress=False, ffmpeg_size=(160, 120),
                             graphs=GraphOptions(formats=("onnx", "coreml"), size=SIZE, bounds={"onnx": 200.0}))
    assert "onnx" in str(err.value) and "coreml" not in str(err.value)  # Core ML is not gated off macOS
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_compression_and_image_input_are_refused_for_a_recipe(recipe_run, tmp_path, capsys):
    for option in (["--coreml-quantize", "int8"], ["--coreml-image-input"]):
        capsys.readouterr()
        assert _export(recipe_run, tmp_path / "x", "--formats", "coreml", *option) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "model bundles" in err[0] and not (tmp_path / "x").exists()


def test_the_graph_it_converts_is_the_torch_recipe():
    """What coremltools converts is the traced recipe graph: the trace equals the torch recipe here
    (Core ML's own arithmetic can only be checked on macOS)."""
    import torch

    from styleforge.export.recipe_graph import RecipeGraph

    model = recipe(OPS)
    traced = torch.jit.trace(RecipeGraph(model, SIZE).eval(), torch.zeros(1, 3, *SIZE), check_trace=False)
    rgb = photos(SIZE, 1)[0]
    x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert torch.abs(traced(x) - model(x)).max() < 1e-5
