"""``styleforge stylize``: folders, naming, bad inputs reported one per line, inputs never overwritten."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of real photos (one in a sub-folder) plus a truncated JPEG and a text file."""
    from styleforge.photo.album import album_paths

    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, path in enumerate(album_paths()[:3]):
        img = Image.open(path).convert("RGB")
        img = img.resize((img.width // 6, img.height // 6))
        img.save(root / ("sub" if i == 2 else ".") / f"photo{i}.jpg", quality=92)
    data = (root / "photo0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "notes.png").write_text("not an image at all\n")
    return root


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["stylize", *map(str, argv), "--quiet"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_folder_with_bad_files_writes_the_rest_and_exits_nonzero(capsys, tiny_bundle, photos, tmp_path):
    out = tmp_path / "out"
    rc, stdout, stderr = _run(capsys, tiny_bundle, photos, "--out", out)
    assert rc == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo0.jpg", "photo1.jpg"]  # the sub-folder needs --recursive
    for name in written:
        assert Image.open(out / name).size == Image.open(photos / name).size
    failures = [line for line in stderr.splitlines() if line.startswith("failed:")]
    assert len(failures) == 2
    assert any("truncated.jpg" in line and "truncated or corrupt" in line for line in failures)
    assert any("notes.png" in line and "not an image" in line for line in failures)
    assert "2/4" in stdout


def test_recursive_suffix_and_format(capsys, tiny_bundle, photos, tmp_path):
    good = tmp_path / "good"
    shutil.copytree(photos, good, ignore=shutil.ignore_patterns("truncated.jpg", "notes.png"))
    out = tmp_path / "out"
    rc, _, stderr = _run(capsys, tiny_bundle, good, "--out", out, "--recursive", "--suffix", "_styled",
                         "--format", "png", "--strength", "0.7", "--backend", "onnxruntime", "--threads", "1")
    assert rc == 0, stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == [
        "photo0_styled.png", "photo1_styled.png", "sub/photo2_styled.png",
    ]


def test_refuses_to_overwrite_inputs(capsys, tiny_bundle, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy2(photos / "photo0.jpg", folder / "photo0.jpg")
    before = (folder / "photo0.jpg").read_bytes()
    rc, _, stderr = _run(capsys, tiny_bundle, folder, "--out", folder)
    assert rc == 2 and "refusing to overwrite input" in stderr and len(stderr.strip().splitlines()) == 1
    assert (folder / "photo0.jpg").read_bytes() == before
    rc, _, _ = _run(capsys, tiny_bundle, folder, "--out", folder, "--suffix", "_styled")
    assert rc == 0 and (folder / "photo0_styled.jpg").is_file()
    assert (folder / "photo0.jpg").read_bytes() == before


def test_decompression_bomb_is_refused_unless_allowed(capsys, tiny_bundle, tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (16000, 16000)).save(bomb)  # 256 MP that compress to a few kB
    assert bomb.stat().st_size < 200_000
    rc, _, stderr = _run(capsys, tiny_bundle, bomb, "--out", tmp_path / "out")
    assert rc == 1 and "exceeds the pixel limit" in stderr
    small = tmp_path / "small.png"
    Image.new("RGB", (200, 150), (120, 90, 60)).save(small)
    rc, _, stderr = _run(capsys, tiny_bundle, small, "--out", tmp_path / "out", "--max-pixels", "10000")
    assert rc == 1 and "pixel limit" in stderr
    rc, _, _ = _run(capsys, tiny_bundle, small, "--out", tmp_path / "out", "--max-pixels", "0")
    assert rc == 0 and (tmp_path / "out" / "small.png").is_file()


def test_bad_bundles_and_options_are_one_line_errors(capsys, tiny_bundle, photos, tmp_path):
    photo = photos / "photo0.jpg"
    broken = tmp_path / "broken"
    broken.mkdir()
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    art = manifest["artifacts"]["tflite_fp16"]
    shutil.copy2(tiny_bundle / art["file"], broken / art["file"])
    art["input"]["shape"] = [1, 32, 32, 3]  # disagrees with the model
    manifest["artifacts"] = {"tflite_fp16": art}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(broken, corrupt)
    (corrupt / art["file"]).write_bytes(b"\0" * 100)

    cases = [
        ((tmp_path / "no-bundle", photo), "bundle not found"),
        ((broken, photo), "shape"),
        ((corrupt, photo), "is 100 bytes, the manifest says"),
        ((tiny_bundle, photo, "--artifact", "tflite_int16"), "no 'tflite_int16' artifact"),
        ((tiny_bundle, photo, "--strength", "2"), "--strength"),
        ((tiny_bundle, tmp_path / "empty-folder"), "no images found"),
    ]
    (tmp_path / "empty-folder").mkdir()
    for args, message in cases:
        rc, _, stderr = _run(capsys, *args, "--out", tmp_path / "out")
        assert rc == 2, (args, stderr)
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_missing_input_file_is_reported(capsys, tiny_bundle, photos, tmp_path):
    rc, _, stderr = _run(capsys, tiny_bundle, photos / "photo0.jpg", tmp_path / "missing.jpg", "--out", tmp_path / "out")
    assert rc == 1 and "missing.jpg: no such file" in stderr
    assert np.asarray(Image.open(tmp_path / "out" / "photo0.jpg")).shape[2] == 3


def test_folder_run_styles_what_pillow_opens_and_lists_the_rest(capsys, tiny_bundle, photos, tmp_path):
    """A GIF is styled (first frame); a text file and a truncated JPEG are listed with their reasons."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    photo = Image.open(photos / "photo0.jpg").convert("RGB")
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "clip.gif", save_all=True, append_images=frames[1:])
    (folder / "readme.txt").write_text("shot list\n")
    data = (photos / "photo0.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    rc, stdout, stderr = _run(capsys, tiny_bundle, folder, "--out", out)
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["clip.png"]  # GIF is not an output format: PNG
    styled = np.asarray(Image.open(out / "clip.png").convert("RGB"))
    first = np.asarray(Image.open(folder / "clip.gif").convert("RGB"))
    assert styled.shape == first.shape and np.abs(styled.astype(int) - first.astype(int)).mean() > 1
    failures = [line for line in stderr.splitlines() if line.startswith("failed:")]
    assert len(failures) == 2, stderr
    assert any("readme.txt" in line and "not an image" in line for line in failures)
    assert any("cut.jpg" in line and "truncated or corrupt" in line for line in failures)
    assert "1/3 file(s)" in stdout
