"""A look recipe as a static mobile graph: the graph module is the torch recipe at its size, its
ONNX holds only mobile-friendly ops and passes the gate, the runtime runs it on photos of exactly
its size (and refuses others with one line), ``bench`` measures it; the TFLite conversion (slow)
passes the fp32/fp16/int8 floors with its ops report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from styleforge.export import calibration as cal
from styleforge.export.recipe_export import export_recipe_bundle
from styleforge.export.recipe_graph import REFUSED_OPS, GraphOptions, RecipeGraph
from styleforge.runtime import open_bundle
from styleforge.runtime.lut import identity_table
from styleforge.runtime.metrics import psnr
from styleforge.train.models.recipe import RecipeGenerator

EVERY_OP = [
    ("clarity", {"amount": 0.6, "radius": 0.03}),
    ("smooth_skin", {"amount": 0.5, "radius": 0.01, "edge": 0.05}),
    ("detail", {"fine": 0.3, "medium": 0.2, "coarse": -0.2}),
    ("sharpen", {"amount": 0.8, "radius": 0.002}),
    ("bloom", {"strength": 0.5, "threshold": 0.55, "radius": 0.05, "r": 1.3, "g": 0.9, "b": 0.6}),
    ("vignette", {"amount": -0.4, "midpoint": 0.45, "roundness": 0.3, "feather": 0.5, "center_x": 0.55,
                  "center_y": 0.45}),
    ("fade", {"amount": 0.12, "r": 0.6, "g": 0.45, "b": 0.5}),
    ("grain", {"amount": 0.04, "size": 0.003, "luma_dependence": 0.5}),
]


def recipe(ops=EVERY_OP) -> RecipeGenerator:
    """A colour LUT that treats R, G and B differently, then ``ops``."""
    table = identity_table(17)
    table = np.clip(table**0.8 * np.array([1.0, 0.93, 0.85], np.float32) + 0.04 * table[..., ::-1], 0, 1)
    return RecipeGenerator.from_steps([("colour_lut", {"table": table.astype(np.float32)}), *ops])


def photos(size: tuple[int, int], n: int = 2) -> np.ndarray:
    return cal.heldout_crops(cal.split_default_photos()[1][:n], size)


def torch_recipe(model, rgb_u8: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(rgb_u8.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        return ((model(x)[0].permute(1, 2, 0).numpy() + 1.0) * 127.5).clip(0, 255)


def reordered(order: str) -> RecipeGenerator:
    """The LUT of :func:`recipe` and ``EVERY_OP`` in another order: ``mixed`` (luma steps before the
    LUT and between colour steps), ``lut_last`` (the graph ends in the LUT's flat layout)."""
    lut, ops = ("colour_lut", {"table": recipe([]).stack.ops[0].table.detach().numpy()}), dict(EVERY_OP)
    names = {"mixed": ["smooth_skin", "detail", "colour_lut", "grain", "fade", "clarity", "bloom", "sharpen",
                       "vignette"], "lut_last": ["clarity", "vignette", "colour_lut"]}[order]
    return RecipeGenerator.from_steps([lut if n == "colour_lut" else (n, ops[n]) for n in names])


@pytest.mark.parametrize("tflite", [False, True], ids=["onnx", "tflite"])
@pytest.mark.parametrize("order", ["lut_first", "mixed", "lut_last"])
@pytest.mark.parametrize("size", [(64, 64), (75, 131)])  # odd sizes: pyramid levels repeat an edge
def test_the_graph_is_the_torch_recipe_at_its_size(size, order, tflite):
    """Also where luma steps add up before a colour step (the graph sums their ``[1, 1, H, W]``
    terms and moves the luma by them instead of recomputing it), and in the form converted to
    TFLite (pads as slices, blurs folded)."""
    model = recipe() if order == "lut_first" else reordered(order)
    graph = RecipeGraph(model, size, tflite=tflite).eval()
    for rgb in photos(size):
        x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            assert torch.abs(graph(x) - model(x)).max() < 1e-5


GLOW = [("smooth_skin", {"amount": 0.7, "radius": 0.05, "edge": 0.05}), ("clarity", {"amount": 0.6, "radius": 0.03}),
        ("bloom", {"strength": 0.5, "threshold": 0.55, "radius": 0.05}), ("fade", {"amount": 0.12, "r": 0.6, "g": 0.45, "b": 0.5})]


@pytest.mark.parametrize("size, level", [((96, 128), 1), ((170, 200), 2), ((330, 401), 3)])
def test_smooth_skins_fast_guided_filter_graph_at_its_level(size, level):
    """smooth_skin's statistics on the blur's level (one 2-field ``Resize`` to full size, the
    amount in the second blur's taps) are the torch twin's at every level."""
    from styleforge.runtime.look_blur import pyramid_level

    assert pyramid_level(0.05 * min(size), *size) == level
    model = recipe(GLOW)
    graph = RecipeGraph(model, size).eval()
    spread, amount = graph.steps[1].spread, model.stack.ops[1].params()["amount"]
    assert spread.level == level and float(spread.taps_y[0].sum() * spread.taps_x[0].sum()) == pytest.approx(amount)
    for rgb in photos(size):
        x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            assert torch.abs(graph(x) - model(x)).max() < 1e-5


def test_the_tflite_source_graph_has_no_reflect_pad_and_narrow_concats(tmp_path):
    """The ONNX graph onnx2tf converts (``tflite=True``): blurs folded, no ``Pad`` (TFLite's ``MIRROR_PAD``, which
    XNNPACK does not take), no ``Concat`` wider than XNNPACK's 5 inputs, node names TensorFlow
    accepts; ONNX Runtime runs it to the torch recipe."""
    import onnx
    import onnxruntime as ort

    from styleforge.export.onnx_export import export_onnx
    from styleforge.export.recipe_graph import XNNPACK_CONCAT_INPUTS, ready_for_tflite

    size, model = (96, 128), recipe(GLOW)
    graph = RecipeGraph(model, size, tflite=True).eval()
    assert graph.steps[1].spread.taps_y.dim() == 3  # smooth skin's 2-channel fields: folded
    path = tmp_path / "g.onnx"
    with torch.no_grad():
        export_onnx(graph, path, size)
    assert max(len(n.input) for n in onnx.load(str(path)).graph.node if n.op_type == "Concat") > XNNPACK_CONCAT_INPUTS
    assert ready_for_tflite(path) > 0
    nodes = onnx.load(str(path)).graph.node
    assert "Pad" not in {n.op_type for n in nodes} and all(n.name[:1].isalnum() for n in nodes)
    assert max(len(n.input) for n in nodes if n.op_type == "Concat") <= XNNPACK_CONCAT_INPUTS
    rgb = photos(size, 1)[0]
    x = rgb.astype(np.float32)[None].transpose(0, 3, 1, 2) / 127.5 - 1.0
    ours = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        assert np.abs(ours - model(torch.from_numpy(x)).numpy()).max() < 1e-5


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe-graph") / "bundle"
    export_recipe_bundle(recipe(), out, style="every-op", progress=False, ffmpeg_size=(160, 120),
                         graphs=GraphOptions(formats=("onnx",), size=(96, 128)))
    return out


def test_the_onnx_graph_passes_the_gate_with_mobile_ops_only(onnx_bundle):
    from styleforge.runtime.manifest import load_manifest

    manifest = load_manifest(onnx_bundle)
    assert {"recipe", "lut_cube", "onnx"} <= set(manifest.artifacts)
    assert not any(a.format == "tflite" for a in manifest.artifacts.values())
    art = manifest.artifacts["onnx"]
    assert art.fidelity["verified"] is True and art.fidelity["psnr_min"] >= 60.0, art.fidelity
    assert art.input.shape == (1, 3, 96, 128) and art.input.layout == "NCHW" and art.extra["whole_photo"] is True
    assert {"AveragePool", "Conv", "Resize", "Gather"} <= set(art.ops) and not REFUSED_OPS & set(art.ops)
    assert art.extra["steps"][0] == "colour_lut" and len(art.extra["steps"]) == 1 + len(EVERY_OP)
    assert art.compatibility["onnxruntime_cpu"]["verdict"] == "full"
    assert all(ref["input"].endswith(".png") for ref in manifest.references)  # references at the graph's size


def test_the_runtime_runs_the_graph_on_photos_of_its_size_only(onnx_bundle, tmp_path, capsys):
    from PIL import Image

    from styleforge.cli import main

    assert open_bundle(onnx_bundle).artifact.key == "recipe"  # auto: the recipe, at any size
    stylizer = open_bundle(onnx_bundle, artifact="onnx")
    rgb = photos((96, 128), 1)[0]
    ours = stylizer.stylize(rgb).astype(np.float64)
    assert psnr(ours, np.rint(torch_recipe(recipe(), rgb))) >= 50.0
    assert np.abs(ours - open_bundle(onnx_bundle).stylize(rgb)).max() <= 1  # and the numpy recipe
    with pytest.raises(ValueError, match=r"fixed at 96x128 .* this photo is 100x128") as err:
        stylizer.stylize(np.zeros((100, 128, 3), np.uint8))
    assert "\n" not in str(err.value)
    Image.fromarray(rgb).save(tmp_path / "fits.png")
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(tmp_path / "small.png")
    code = main(["stylize", str(onnx_bundle), str(tmp_path / "fits.png"), str(tmp_path / "small.png"),
                 "--artifact", "onnx", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 1 and (tmp_path / "out" / "fits.png").is_file() and not (tmp_path / "out" / "small.png").exists()
    assert "fixed at 96x128" in capsys.readouterr().err


def test_preview_shows_the_recipe_not_its_one_size_graph(onnx_bundle, tmp_path, capsys):
    from PIL import Image

    from styleforge.cli import main

    Image.fromarray(photos((150, 200), 1)[0]).save(tmp_path / "other-size.png")
    assert main(["preview", str(onnx_bundle), str(tmp_path / "other-size.png"), "--out", str(tmp_path / "page")]) == 0
    page = (tmp_path / "page" / "index.html").read_text()
    assert "recipe" in page and "ONNX" not in page.split("<script")[0]
    capsys.readouterr()
    assert main(["preview", str(onnx_bundle), str(tmp_path / "other-size.png"), "--artifacts", "onnx",
                 "--out", str(tmp_path / "page2")]) == 2
    err = capsys.readouterr().err
    assert "whole-photo graph" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bench_measures_the_graph(onnx_bundle):
    from styleforge.benchmarks.bench import BenchSettings, benchmark

    result = benchmark([onnx_bundle], backends=["onnxruntime"], artifacts=["onnx"], threads=[1],
                       settings=BenchSettings(warmup=1, runs=3), probe_environment=False)
    (cell,) = result["cells"]
    assert cell["status"] == "ok" and cell["size"] == [96, 128] and cell["latency_ms"]["p50"] > 0
    assert cell["fidelity"]["psnr"] >= 40.0  # uint8 against the torch recipe's reference outputs


@pytest.mark.slow
def test_tflite_graphs_pass_their_floors_and_report_their_ops(tmp_path):
    """One onnx2tf conversion at 128x128: fp32 >= 60, fp16 >= 40, int8 (calibrated on the album's
    photos) >= 30 dB against the torch recipe, NHWC, the ops report and delegate table."""
    pytest.importorskip("onnx2tf")
    from styleforge.runtime.manifest import load_manifest

    out = tmp_path / "bundle"
    export_recipe_bundle(recipe(), out, progress=False, ffmpeg_size=(160, 120),
                         graphs=GraphOptions(formats=("tflite",), size=(128, 128)))
    manifest = load_manifest(out)
    assert {"recipe", "lut_cube", "tflite_fp32", "tflite_fp16", "tflite_int8"} <= set(manifest.artifacts)
    assert "onnx" not in manifest.artifacts and not (out / "recipe.onnx").exists()
    for key, floor in (("tflite_fp32", 60.0), ("tflite_fp16", 40.0), ("tflite_int8", 30.0)):
        art = manifest.artifacts[key]
        assert art.fidelity["psnr"] >= floor and art.fidelity["bound_psnr"] == floor, (key, art.fidelity)
        assert art.input.layout == "NHWC" and art.input.shape == (1, 128, 128, 3)
        assert {"AVERAGE_POOL_2D", "CONV_2D", "RESIZE_BILINEAR", "GATHER"} <= set(art.ops)  # blurs: grouped CONV_2D
        assert not {"TRANSPOSE_CONV", "DEPTH_TO_SPACE", "MIRROR_PAD"} & set(art.ops)
        assert {"xnnpack", "gpu_delegate", "int8_npu"} <= set(art.compatibility)
    assert manifest.artifacts["tflite_int8"].extra["calibration_crops"] == cal.MIN_CALIBRATION_CROPS
    rgb = photos((128, 128), 1)[0]
    fp16 = open_bundle(out, artifact="fp16").stylize(rgb).astype(np.float64)
    assert psnr(fp16, np.rint(torch_recipe(recipe(), rgb))) >= 40.0


@pytest.mark.slow
def test_tflite_graphs_of_smooth_skin_above_level_0_pass_their_floors(tmp_path):
    """Glow's operators with smooth_skin at pyramid level 1 (radius 0.05 of 128 px): the fields
    computed on the level and resized once convert in fp32, fp16 and int8 within their floors."""
    pytest.importorskip("onnx2tf")
    from styleforge.runtime.manifest import load_manifest

    export_recipe_bundle(recipe(GLOW), tmp_path / "b", progress=False, ffmpeg_size=(160, 120),
                         graphs=GraphOptions(formats=("tflite",), size=(128, 128)))
    manifest = load_manifest(tmp_path / "b")
    for key, floor in (("tflite_fp32", 60.0), ("tflite_fp16", 40.0), ("tflite_int8", 30.0)):
        art = manifest.artifacts[key]
        assert art.fidelity["psnr"] >= floor and art.output.layout == "NHWC", (key, art.fidelity)


@pytest.mark.slow
def test_a_recipe_ending_in_its_lut_converts_to_nhwc(tmp_path):
    """The LUT's flat ``[24, H W]`` layout as the last step: the output still leaves TFLite as an
    NHWC image (the graph ends in a 1x1 convolution), fp32 at 60 dB."""
    pytest.importorskip("onnx2tf")
    from styleforge.runtime.manifest import load_manifest

    export_recipe_bundle(reordered("lut_last"), tmp_path / "b", progress=False, ffmpeg_size=(160, 120),
                         graphs=GraphOptions(formats=("tflite",), size=(64, 64), variants=("tflite_fp32",)))
    art = load_manifest(tmp_path / "b").artifacts["tflite_fp32"]
    assert art.output.layout == "NHWC" and art.output.shape == (1, 64, 64, 3)
    assert art.fidelity["psnr"] >= 60.0, art.fidelity


def test_cli_exports_a_recipe_run_with_its_graph(tmp_path, capsys):
    """``export RUN --formats cube,onnx --size HxW`` on a recipe run; Core ML compression and a TFLite
    list with no recipe variant are refused with one line (Core ML graphs: test_recipe_coreml.py)."""
    from styleforge.cli import main
    from styleforge.runtime.manifest import load_manifest
    from styleforge.train.recipe_run import save_recipe_run

    model = recipe([op for op in EVERY_OP if op[0] == "vignette"])  # one cheap operator: the CLI is the point
    save_recipe_run(model, tmp_path / "run", {"generator": {"arch": "recipe", "config": model.config},
                                              "style": "vignette"}, "")
    assert main(["export", str(tmp_path / "run"), "--formats", "cube,onnx", "--size", "64x96",
                 "--out", str(tmp_path / "b"), "--quiet"]) == 0
    manifest = load_manifest(tmp_path / "b")
    assert {"recipe", "lut_cube", "onnx"} <= set(manifest.artifacts) and manifest.style == "vignette"
    assert manifest.artifacts["onnx"].input.shape == (1, 3, 64, 96)
    capsys.readouterr()
    for formats, option, expect in (("coreml", ["--coreml-quantize", "int8"], "for model bundles"),
                                    ("tflite", ["--tflite-variants", "dynamic_int8"], "asks for none of them"),
                                    ("tflite", ["--int8-io", "uint8"], "float input and output")):
        assert main(["export", str(tmp_path / "run"), "--formats", formats, *option,
                     "--out", str(tmp_path / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0] and not (tmp_path / "x").exists()
