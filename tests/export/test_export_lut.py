"""Shipping a look as a LUT: bake any colour function, gate with colour-science's reader,
refuse a swapped axis and a model whose local branch matters, and match ffmpeg's lut3d."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from styleforge.export import calibration as cal
from styleforge.export import lut_export as le
from styleforge.runtime import lut as rlut


def asymmetric(rgb01: np.ndarray) -> np.ndarray:
    """A colour function that treats R, G and B differently (numpy, [M, 3] in [0, 1])."""
    r, g, b = rgb01[:, 0], rgb01[:, 1], rgb01[:, 2]
    return np.stack([r**0.6 * 0.9 + 0.1 * b, 0.2 + 0.6 * g + 0.2 * r * b, b**1.8 * 0.8 + 0.15 * r], axis=1)


@pytest.fixture(scope="module")
def heldout_u8() -> np.ndarray:
    return cal.heldout_crops(cal.split_default_photos()[1], le.HELDOUT_SIZE)


def test_bake_samples_the_lattice_red_index_first():
    lut = le.bake_lut(asymmetric, 5)
    np.testing.assert_allclose(lut.table[1, 0, 0], asymmetric(np.array([[0.25, 0.0, 0.0]], np.float32))[0], atol=1e-6)
    np.testing.assert_allclose(lut.table[0, 0, 4], asymmetric(np.array([[0.0, 0.0, 1.0]], np.float32))[0], atol=1e-6)


def test_gate_reads_back_with_colour_science_and_catches_swapped_axes(tmp_path, heldout_u8):
    lut = le.bake_lut(asymmetric, 33)
    good = rlut.write_cube(lut, tmp_path / "good.cube")
    figures = le.verify_cube(good, asymmetric, heldout_u8)
    assert figures["psnr"] >= 40.0, figures
    assert "colour-science" in figures["reader"]
    swapped = rlut.write_cube(rlut.Lut3D(lut.table.transpose(2, 1, 0, 3)), tmp_path / "swapped.cube")  # R<->B axes
    bad = le.verify_cube(swapped, asymmetric, heldout_u8)
    assert bad["psnr"] < 30.0, bad


def test_export_lut_bundle_of_a_look(tmp_path):
    from styleforge.runtime.manifest import load_manifest
    from styleforge.runtime.stylizer_base import sha256_of

    out = tmp_path / "fw"
    le.export_lut_bundle(le.look_colour_fn("film-warm"), out, size=17, style="film-warm", progress=False)
    manifest = load_manifest(out)
    cube, hald = manifest.artifacts["lut_cube"], manifest.artifacts["lut_hald"]
    assert cube.sha256 == sha256_of(out / "look.cube") and hald.sha256 == sha256_of(out / "look_hald.png")
    assert cube.extra["lut_size"] == 17 and cube.fidelity["verified"] is True
    assert cube.fidelity["psnr"] >= 40.0 and cube.extra["runtime_fidelity"]["psnr"] >= 40.0
    assert Image.open(out / "look_hald.png").size == (512, 512)
    assert rlut.read_cube(out / "look.cube").size == 17
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    with pytest.raises(le.LutExportError, match="already exists"):
        le.export_lut_bundle(le.look_colour_fn("film-warm"), out, progress=False)


def test_local_looks_and_bad_sizes_are_refused(tmp_path, heldout_u8):
    with pytest.raises(le.LutExportError, match="not a colour transform"):
        le.look_colour_fn("glow")
    with pytest.raises(le.LutExportError, match="lut-size"):
        le.write_lut_artifacts(tmp_path, asymmetric, size=20, heldout_u8=heldout_u8)


class ColourStandIn:
    """A torch generator with a colour part (the contract of the colour generator): ``colour``
    maps ``[M, 3]`` in [0, 1]; ``forward`` is NCHW [-1, 1] = colour (+ an optional local blur)."""

    def __new__(cls, local: float = 0.0, adaptive: bool = False):
        import torch
        from torch import nn

        class Model(nn.Module):
            stride = 1

            def __init__(self):
                super().__init__()
                self.matrix = nn.Parameter(torch.tensor([[0.9, 0.1, 0.0], [0.05, 0.85, 0.1], [0.0, 0.2, 0.8]]))
                self.gamma = nn.Parameter(torch.tensor([0.8, 1.0, 1.25]))
                self.local = local
                self.adaptive = int(adaptive)

            def adaptive_params(self, u):  # [N, 3, H, W] -> [N, 1]: the photo's mean brightness
                return u.mean(dim=(1, 2, 3))[:, None]

            def colour(self, rgb, params=None):
                if params is not None:  # brighten dark photos, darken bright ones
                    rgb = torch.clamp(rgb * (1.0 + (0.5 - params[0, 0])), 0.0, 1.0)
                return torch.clamp(rgb @ self.matrix.T, 1e-6, 1.0) ** self.gamma

            def forward(self, x):
                u = (x + 1) / 2
                n, c, h, w = u.shape
                params = self.adaptive_params(u) if self.adaptive else None
                ys = [self.colour(u[i : i + 1].permute(0, 2, 3, 1).reshape(-1, 3),
                                  None if params is None else params[i : i + 1]) for i in range(n)]
                y = torch.stack(ys).reshape(n, h, w, 3).permute(0, 3, 1, 2)
                if self.local:
                    blur = torch.nn.functional.avg_pool2d(y, 15, stride=1, padding=7, count_include_pad=False)
                    y = y + self.local * (y - blur)  # unsharp mask: depends on the neighbours
                return torch.clamp(y, 0, 1) * 2 - 1

        return Model().eval()


def test_torch_colour_part_and_the_35db_rule(tmp_path, heldout_u8):
    pytest.importorskip("torch")
    model = ColourStandIn()
    baked = le.bake_lut(model.colour, 9)  # a bound method of an nn.Module: run with torch
    x = rlut.identity_table(9).reshape(-1, 3)
    import torch

    with torch.no_grad():
        expected = model.colour(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(baked.table.reshape(-1, 3), expected, atol=1e-6)
    arts = le.write_lut_artifacts(tmp_path, model.colour, size=33, heldout_u8=heldout_u8, full_model=model)
    assert arts["lut_cube"].extra["full_vs_colour_part"]["psnr"] >= 35.0
    assert arts["lut_cube"].fidelity["psnr"] >= 40.0
    sharp = ColourStandIn(local=1.5)
    with pytest.raises(le.LutExportError, match=r"only \d+\.\d+ dB") as err:
        le.write_lut_artifacts(tmp_path / "x", sharp.colour, size=33, heldout_u8=heldout_u8, full_model=sharp)
    assert "no .cube written" in str(err.value)
    assert not (tmp_path / "x").exists()


def test_the_colour_part_is_a_declared_protocol_and_a_model_without_one_is_refused(tmp_path):
    """The LUT export asks the model protocols (:mod:`styleforge.train.models.protocols`): a model
    with ``colour`` (and ``adaptive`` / ``adaptive_params``) qualifies without inheriting anything;
    a conv net has no colour part and is refused with a message that says what would do."""
    torch = pytest.importorskip("torch")
    from styleforge.runtime.contract import Manifest
    from styleforge.train.models.protocols import has_colour_part, is_adaptive

    assert has_colour_part(ColourStandIn()) and not is_adaptive(ColourStandIn())
    assert is_adaptive(ColourStandIn(adaptive=True))
    conv = torch.nn.Conv2d(3, 3, 1)
    assert not has_colour_part(conv) and not is_adaptive(conv)
    with pytest.raises(le.LutExportError, match=r"Conv2d has no colour part .* cannot ship as a \.cube"):
        le.add_lut_to_bundle(tmp_path, Manifest(name="conv", style="", artifacts={}), conv)
    assert list(tmp_path.iterdir()) == []


def test_cli_look_export_and_refusals(tmp_path, capsys):
    from styleforge.cli import main

    assert main(["export", "--look", "teal-orange", "--formats", "cube", "--lut-size", "17",
                 "--out", str(tmp_path / "to"), "--quiet"]) == 0
    assert (tmp_path / "to" / "look.cube").is_file()
    for argv, message in (
        (["--look", "toon", "--formats", "cube"], "not a colour transform"),
        (["--look", "film-warm", "--formats", "onnx"], "use --formats cube"),
    ):
        assert main(["export", *argv, "--out", str(tmp_path / "no"), "--quiet"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def _ffmpeg_with_lut3d() -> tuple[str | None, str]:
    candidates = [shutil.which("ffmpeg")]
    try:
        import imageio_ffmpeg

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    for exe in filter(None, candidates):
        proc = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True)
        if any(line.split()[1:2] == ["lut3d"] for line in proc.stdout.splitlines() if line.strip()):
            return exe, ""
    if not any(candidates):
        return None, "no ffmpeg: neither the Debian package nor the imageio-ffmpeg wheel is installed"
    return None, "the installed ffmpeg has no lut3d filter"


def test_ffmpeg_lut3d_matches_the_runtime(tmp_path, heldout_u8):
    exe, reason = _ffmpeg_with_lut3d()
    if exe is None:
        pytest.skip(reason)
    lut = le.bake_lut(asymmetric, 33)
    cube = rlut.write_cube(lut, tmp_path / "look.cube")
    ours = rlut.LutApplier(lut, threads=2)
    for i, photo in enumerate(heldout_u8):
        src, dst = tmp_path / f"in{i}.png", tmp_path / f"out{i}.png"
        Image.fromarray(photo).save(src)
        subprocess.run([exe, "-v", "error", "-y", "-i", str(src), "-vf", f"lut3d=file={cube.name}:interp=trilinear",
                        "-pix_fmt", "rgb24", str(dst)], check=True, cwd=tmp_path)
        theirs = np.asarray(Image.open(dst).convert("RGB")).astype(int)
        assert theirs.shape == photo.shape
        assert np.abs(theirs - ours.apply(photo)).max() <= 1  # ffmpeg truncates, we round
        assert np.abs(theirs - photo).max() > 20  # the LUT really changed the photo


def test_a_colour_model_exports_its_lut_and_the_lut_as_its_graphs(tmp_path):
    """A model whose colour part is its look ships look.cube without asking, and onnx means the
    LUT's gather graph (lut_onnx), not the model's; the TorchScript stays as the reference."""
    pytest.importorskip("torch")
    from styleforge.export.bundle import export_bundle
    from styleforge.runtime import open_bundle

    out = tmp_path / "both"
    manifest = export_bundle(ColourStandIn(), out, formats=("onnx",), size=(64, 64), style="stand-in",
                             progress=False, lut_size=17)
    assert set(manifest.artifacts) == {"torchscript", "lut_cube", "lut_hald", "lut_onnx"}
    assert manifest.artifacts["lut_onnx"].fidelity["psnr"] >= 40.0  # the LUT's gather graph, gated too
    assert manifest.artifacts["lut_cube"].extra["full_vs_colour_part"]["psnr"] >= 35.0
    stylizer = open_bundle(out)  # auto: the LUT
    assert stylizer.info()["backend"] == "lut" and stylizer.info()["lut_size"] == 17
    # A colour part that is not the look (a strong local branch): the model's own graph, no .cube.
    sharp = export_bundle(ColourStandIn(local=1.5), tmp_path / "sharp", formats=("onnx",), size=(64, 64),
                          progress=False)
    assert set(sharp.artifacts) == {"torchscript", "onnx"}


def test_a_colour_generator_whose_local_branch_matters_says_what_to_do(tmp_path):
    """Its full graph has a 5-D GridSample (no ONNX opset 17) and its LUT is not the look: one
    clear error naming the figure and `styleforge distill`, nothing written."""
    torch = pytest.importorskip("torch")
    from styleforge.export.bundle import ExportError, export_bundle
    from styleforge.train.models.colour import ColourGenerator

    torch.manual_seed(0)
    model = ColourGenerator(curve_knots=8, lut_size=9, local=4)
    with torch.no_grad():
        model.local[-1].weight.normal_(0.0, 0.5)  # a local residual that changes the look
    with pytest.raises(ExportError, match=r"only \d+\.\d+ dB.*styleforge distill") as err:
        export_bundle(model.eval(), tmp_path / "no", formats=("onnx",), size=(64, 64), progress=False)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_lut_as_mobile_graphs_pass_the_gate_and_run_in_the_runtime(tmp_path):
    """ONNX opset 17 and TFLite fp32/fp16 graphs built from gathers, each run by the runtime's own
    backend and compared with the runtime's LUT path (Core ML: converted, not verified on Linux)."""
    pytest.importorskip("onnx2tf")
    from styleforge.runtime import open_bundle
    from styleforge.runtime.manifest import load_manifest

    out = tmp_path / "graphs"
    le.export_lut_bundle(asymmetric, out, size=17, style="asym", progress=False, graph_formats=("onnx", "tflite"),
                         graph_size=(64, 96))
    manifest = load_manifest(out)
    for key, bound in (("lut_onnx", 40.0), ("lut_tflite_fp32", 40.0), ("lut_tflite_fp16", 35.0)):
        fid = manifest.artifacts[key].fidelity
        assert fid["verified"] is True and fid["psnr"] >= bound, (key, fid)
    assert manifest.artifacts["lut_onnx"].ops.get("Gather", 0) == 4  # the cell table once, r/g/b index rows 3x
    assert "GridSample" not in manifest.artifacts["lut_onnx"].ops
    assert "GATHER" in manifest.artifacts["lut_tflite_fp32"].ops
    from ai_edge_litert.interpreter import Interpreter

    for precision in ("fp32", "fp16"):  # the converted graph's own output is NHWC (an image), not [1, 3, H, W]
        shape = Interpreter(model_path=str(out / f"lut_{precision}.tflite")).get_output_details()[0]["shape"]
        assert tuple(shape) == (1, 64, 96, 3), (precision, shape)
    assert manifest.artifacts["lut_tflite_fp16"].compatibility["int8_npu"]["verdict"] == "no"
    photo = cal.heldout_crops(cal.split_default_photos()[1][:1], (150, 130))[0]  # not the graph size: tiles
    lut_path = open_bundle(out).stylize(photo).astype(int)
    for key in ("lut_onnx", "lut_tflite_fp16"):
        assert np.abs(open_bundle(out, artifact=key).stylize(photo).astype(int) - lut_path).max() <= 1


def test_lut_graph_matches_the_runtime_lut_and_converts_to_core_ml(tmp_path):
    """The one-gather graph equals ``Lut3D.__call__`` (lattice edges included) and coremltools
    converts it (sizes traced as Python ints: no ``int`` ops it would refuse)."""
    torch = pytest.importorskip("torch")
    from styleforge.export import coreml_export as cm
    from styleforge.export.lut_graph import lut_module, write_lut_graphs

    lut = rlut.Lut3D(np.random.default_rng(3).random((9, 9, 9, 3), dtype=np.float32))
    photo = np.random.default_rng(4).random((24, 40, 3), dtype=np.float32)
    photo[0, :8] = [[0, 0, 0], [1, 1, 1], [1, 0, 1], [0, 1, 0], [0.5, 1, 0], [1, 0.25, 1], [-0.1, 1.2, 0.5], [1, 1, 0]]
    with torch.no_grad():
        out = lut_module(lut, (24, 40))(torch.from_numpy(photo * 2 - 1).permute(2, 0, 1)[None])
    assert np.abs((out[0].permute(1, 2, 0).numpy() + 1) / 2 - lut(np.clip(photo, 0, 1))).max() < 1e-5
    if cm.coreml_available() is not None:
        pytest.skip(cm.coreml_available())
    held = cal.heldout_crops(cal.split_default_photos()[1][:1], (32, 48))
    artifacts, failures = write_lut_graphs(tmp_path, lut, held, formats=("coreml",), show=False)
    assert failures == [] and set(artifacts) == {"lut_coreml_fp32", "lut_coreml_fp16"}
    assert "gather" in artifacts["lut_coreml_fp16"].ops and "conv" in artifacts["lut_coreml_fp16"].ops


def test_ffmpeg_haldclut_reads_our_hald_png(tmp_path, heldout_u8):
    """ffmpeg's haldclut filter applies look_hald.png: a check of the HALD pixel order by other code."""
    exe, reason = _ffmpeg_with_lut3d()
    if exe is None:
        pytest.skip(reason)
    lut64 = le.bake_lut(asymmetric, 64)
    Image.fromarray(rlut.hald_image(lut64, level=8)).save(tmp_path / "hald.png")
    photo = heldout_u8[0]
    Image.fromarray(photo).save(tmp_path / "in.png")
    subprocess.run([exe, "-v", "error", "-y", "-i", "in.png", "-i", "hald.png", "-filter_complex",
                    "[0][1]haldclut=interp=trilinear", "-frames:v", "1", "-pix_fmt", "rgb24", "out.png"],
                   check=True, cwd=tmp_path)
    theirs = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(np.float32)
    ours = lut64(photo.astype(np.float32) / 255.0) * 255.0  # the same lattice, float trilinear
    assert np.abs(theirs - ours).max() <= 1.6  # 8-bit HALD nodes (0.5) + ffmpeg's truncation (1)
    swapped = rlut.Lut3D(lut64.table.transpose(2, 1, 0, 3))(photo.astype(np.float32) / 255.0) * 255.0
    assert np.abs(theirs - swapped).max() > 20


def test_adaptive_model_bakes_the_median_mix_and_says_so(tmp_path):
    pytest.importorskip("torch")
    from styleforge.export.bundle import export_bundle

    manifest = export_bundle(ColourStandIn(adaptive=True), tmp_path / "adaptive", formats=(), size=(64, 64),
                             progress=False, lut_size=17, lut=True)
    extra = manifest.artifacts["lut_cube"].extra
    assert extra["full_vs_colour_part"]["psnr"] >= 35.0  # per-photo parameters: the colour part is the look
    note = extra["adaptive"]
    assert "median" in note["baked"] and len(note["median_params"]) == 1
    assert note["median_mix_vs_per_photo"]["psnr"] < 60.0  # one .cube cannot adapt: the figure says how much
