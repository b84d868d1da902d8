"""Image-adaptive colour looks in the torch-free runtime: each photo gets its own LUT.

The model is a real ``ColourGenerator(adaptive=3)`` with seeded non-zero predictor weights and
smooth random basis LUTs, so different photos really get different mixes. The reference is
torch's ``model(x)`` on the same photos; the runtime must match it per photo, import no torch,
and the export gate must refuse a model its per-photo LUTs cannot reproduce.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import open_bundle
from styleforge.runtime.contract import BundleError
from styleforge.runtime.metrics import psnr

torch = pytest.importorskip("torch")


def adaptive_model(seed: int = 0, rough: bool = False):
    """A seeded adaptive colour generator whose every part is non-trivial. ``rough``: white-noise
    basis LUTs (no trained model looks like that: a 33^3 bake cannot follow them)."""
    from styleforge.train.models.colour import ColourGenerator, identity_lattice

    gen = torch.Generator().manual_seed(seed)
    model = ColourGenerator(curve_knots=16, lut_size=17, adaptive=3).eval()
    with torch.no_grad():
        for p in model.predictor.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        r, g, b = identity_lattice(17)
        smooth = torch.stack([torch.sin(np.pi * r), torch.sin(np.pi * g), torch.sin(np.pi * b),
                              r * g * (1 - b), torch.sin(np.pi * r * g)])  # [5, S, S, S]
        coef = torch.randn(3, 3, 5, generator=gen) * 0.06
        if rough:
            model.basis.copy_(torch.randn(model.basis.shape, generator=gen) * 0.08)
        else:
            model.basis.copy_(torch.einsum("kcj,jbgr->kcbgr", coef, smooth))
        model.lut.copy_(0.03 * torch.stack([smooth[3], -smooth[0] * 0.5, smooth[4]])[None])
        model.matrix.add_(torch.randn(3, 3, generator=gen) * 0.05)
        knots = torch.linspace(0, 1, 16)
        model.pre.set_values(torch.stack([knots**0.8, knots, knots**1.2]))
        model.post.set_values(torch.stack([knots**1.1, knots**0.9, knots]))
    return model


@pytest.fixture(scope="module")
def model():
    return adaptive_model()


@pytest.fixture(scope="module")
def bundle(model, tmp_path_factory) -> Path:
    from styleforge.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("adaptive") / "look"
    export_bundle(model, out, formats=(), size=(64, 64), style="adaptive", progress=False, lut_size=17, lut=True)
    return out


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Four album photos of different scenes at odd sizes (the thumbnail bins do not divide)."""
    from styleforge.photo.album import album_paths

    paths = album_paths()
    out = []
    for path in paths[:: max(1, len(paths) // 4)][:4]:
        img = Image.open(path).convert("RGB")
        out.append(np.asarray(img.resize((img.width // 3 | 1, img.height // 3 | 1))))
    return out


def torch_output(model, photo: np.ndarray) -> np.ndarray:
    """``model(x)`` on a uint8 photo -> float [0, 255] ``[H, W, 3]`` (not rounded)."""
    x = torch.from_numpy(photo.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0)
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).numpy()
    return (y + 1.0) * 127.5


def test_bundle_ships_the_per_photo_lut_with_sha256_and_figures(bundle):
    from styleforge.runtime.manifest import load_manifest
    from styleforge.runtime.stylizer_base import sha256_of

    manifest = load_manifest(bundle)
    art = manifest.artifacts["lut_adaptive"]
    assert art.file == "look_adaptive.npz" and art.sha256 == sha256_of(bundle / art.file)
    assert art.size_bytes == (bundle / art.file).stat().st_size
    assert art.fidelity["verified"] is True and art.fidelity["psnr"] >= 40.0, art.fidelity
    assert art.fidelity["numpy_vs_torch"]["psnr"] >= 60.0, art.fidelity  # float32 rounding only
    assert max(art.fidelity["params_spread"]) > 0.1  # held-out photos got different parameters
    assert art.extra["bake_size"] == 33 and art.extra["basis"] == 3
    assert [layer["op"] for layer in art.extra["predictor"]][:2] == ["conv2d", "leaky_relu"]
    with np.load(bundle / art.file, allow_pickle=False) as npz:  # plain arrays, no pickle
        assert npz["basis"].shape == (3, 3, 17, 17, 17) and npz["pre"].shape == (3, 16)
        assert all(npz[k].dtype == np.float32 for k in npz.files)
    assert "lut_adaptive" in manifest.artifacts["lut_cube"].extra["adaptive"]["per_photo"]


def test_runtime_matches_torch_per_photo(model, bundle, photos):
    from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer

    stylizer = open_bundle(bundle, artifact="lut")
    assert isinstance(stylizer, AdaptiveLutStylizer) and stylizer.info()["adaptive"] is True
    assert "per photo" in stylizer.info()["per_photo"] and "per-photo" in repr(stylizer)
    median = open_bundle(bundle, artifact="lut", adaptive=False)  # the baked look.cube
    assert type(median).__name__ == "LutStylizer" and median.info()["artifact"] == "lut_cube"
    adaptive_db, median_db = [], []
    for photo in photos:
        reference = torch_output(model, photo)
        adaptive_db.append(psnr(reference, stylizer.stylize(photo).astype(np.float32), 255.0))
        median_db.append(psnr(reference, median.stylize(photo).astype(np.float32), 255.0))
    print("adaptive LUT vs torch dB:", [round(v, 2) for v in adaptive_db], "median .cube:", [round(v, 2) for v in median_db])
    assert min(adaptive_db) >= 40.0, adaptive_db
    assert min(median_db) < min(adaptive_db) - 3.0, (median_db, adaptive_db)  # the check can fail: adaptation matters


def test_thumbnail_and_parameters_are_torch_s(model, bundle, photos):
    import torch.nn.functional as F

    look = open_bundle(bundle, artifact="lut").look
    for photo in photos[:2]:
        u = torch.from_numpy(photo.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        thumb = F.interpolate(u, size=(32, 32), mode="area")[0].numpy()
        np.testing.assert_allclose(look.thumbnail(photo), thumb, atol=1e-5)
        with torch.no_grad():
            expected = model.adaptive_params(u)[0].numpy()
        np.testing.assert_allclose(look.params(photo), expected, atol=1e-4)


def test_two_photos_get_different_luts(bundle, photos):
    stylizer = open_bundle(bundle, artifact="lut")
    first, second = stylizer.lut_for(photos[0]), stylizer.lut_for(photos[1])
    assert first.size == second.size == 33
    assert np.abs(first.table - second.table).max() > 0.05
    stylizer.stylize(photos[0])
    assert np.array_equal(stylizer.last_lut.table, first.table)


def test_big_photos_take_the_table_path_and_16bit_stays_16bit(bundle, photos, monkeypatch):
    from styleforge.runtime import adaptive_lut as ral
    from styleforge.runtime import lut as rlut

    stylizer = open_bundle(bundle, artifact="lut", threads=2)
    photo = photos[0]
    small = stylizer.stylize(photo).astype(int)
    tables = []
    monkeypatch.setattr(rlut, "packed_table_u8", lambda lut, build=rlut.packed_table_u8: tables.append(1) or build(lut))
    monkeypatch.setattr(ral, "TABLE_MIN_PIXELS", 0)  # as a >= 2 MP photo: the 256^3 table of LutApplier
    assert np.abs(stylizer.stylize(photo).astype(int) - small).max() <= 1
    assert len(tables) == 1
    deep = stylizer.stylize(photo.astype(np.uint16) * 257)
    assert deep.dtype == np.uint16 and np.abs(deep / 257.0 - small).max() <= 1.0


def test_choice_between_per_photo_and_cube(bundle, tmp_path):
    assert open_bundle(bundle, artifact="cube").info()["artifact"] == "lut_cube"  # the file, by name
    assert open_bundle(bundle, artifact="adaptive").info()["artifact"] == "lut_adaptive"
    with pytest.raises(BundleError, match="adaptive=False"):
        open_bundle(bundle, artifact="lut_adaptive", adaptive=False)
    from styleforge.export.lut_export import export_lut_bundle

    plain = tmp_path / "plain"
    export_lut_bundle(lambda rgb: rgb ** 0.9, plain, size=17, progress=False)
    assert type(open_bundle(plain, artifact="lut")).__name__ == "LutStylizer"
    with pytest.raises(BundleError, match="no per-photo LUT"):
        open_bundle(plain, artifact="lut", adaptive=True)


def test_replaced_npz_is_refused(bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    with np.load(copy / "look_adaptive.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["basis"] = arrays["basis"] * 2
    np.savez(copy / "look_adaptive.npz", **arrays)
    with pytest.raises(BundleError, match="sha256"):
        open_bundle(copy, artifact="lut")


def test_runtime_path_imports_no_torch(bundle, photos, tmp_path):
    Image.fromarray(photos[0]).save(tmp_path / "p.png")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "from styleforge.runtime import open_bundle\n"
        f"s = open_bundle({str(bundle)!r}, artifact='lut')\n"
        f"out = s.stylize(np.asarray(Image.open({str(tmp_path / 'p.png')!r})))\n"
        "assert type(s).__name__ == 'AdaptiveLutStylizer', type(s)\n"
        "np.save(sys.argv[1], out)\n"
        "from styleforge.cli import main\n"
        f"rc = main(['stylize', {str(bundle)!r}, {str(tmp_path / 'p.png')!r}, '--out', {str(tmp_path / 'o')!r},"
        " '--artifact', 'lut', '--quiet'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.npy")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lut_adaptive on lut" in proc.stdout
    in_process = open_bundle(bundle, artifact="lut").stylize(photos[0])
    assert np.array_equal(np.load(tmp_path / "out.npy"), in_process)


def test_export_refuses_per_photo_luts_that_miss_torch(tmp_path):
    from styleforge.export import adaptive_lut as eal
    from styleforge.export import calibration as cal
    from styleforge.export.lut_export import LutExportError

    heldout = cal.heldout_crops(cal.split_default_photos()[1][:2], (96, 96))
    with pytest.raises(LutExportError, match=r"reaches \d+\.\d+ dB .* below the bound of 40 dB"):
        eal.write_adaptive_artifact(tmp_path, adaptive_model(rough=True), heldout, lut_size=17)
    assert not list(tmp_path.iterdir())  # nothing written
