"""Listing and loading a folder of photos: one function for every command (runtime.imageio)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from styleforge.runtime.imageio import list_images, load_images, scan_images


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    photo.save(tmp_path / "a.jpg", quality=90)
    photo.save(tmp_path / "b.gif")
    photo.save(tmp_path / "c_no_suffix", format="PNG")  # Pillow opens it: admitted
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "d_truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "e_garbage.png").write_text("not a png")
    (tmp_path / "notes.txt").write_text("shot list")
    (tmp_path / ".hidden.jpg").write_bytes(data)
    (tmp_path / "sub").mkdir()
    photo.save(tmp_path / "sub" / "f.png")
    return tmp_path


def test_scan_admits_what_pillow_opens_and_names_the_rest(tmp_path):
    scan = scan_images(_folder(tmp_path))
    assert [p.name for p in scan.images] == ["a.jpg", "b.gif", "c_no_suffix", "d_truncated.jpg"]  # header only
    assert [(p.name, why) for p, why in scan.broken] == [("e_garbage.png", "not an image (or a format Pillow cannot read)")]
    assert [p.name for p, _ in scan.others] == ["notes.txt"]
    assert [p.name for p, _ in scan.skipped] == ["e_garbage.png", "notes.txt"]
    assert [p.name for p in scan_images(tmp_path, recursive=True).images][-1] == "f.png"
    # loaders get the photo-named broken files too, so they report them when loading fails
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.gif", "c_no_suffix", "d_truncated.jpg", "e_garbage.png"]


def test_load_images_collects_failures_with_reasons(tmp_path):
    folder = _folder(tmp_path)
    loaded = load_images(list_images(folder), prepare=lambda rgb: np.asarray(rgb).shape)
    assert [p.name for p in loaded.paths] == ["a.jpg", "b.gif", "c_no_suffix"]
    assert loaded.images == [(40, 60, 3)] * 3  # the GIF's first frame, as RGB
    reasons = dict((p.name, why) for p, why in loaded.skipped)
    assert set(reasons) == {"d_truncated.jpg", "e_garbage.png"}
    assert reasons["d_truncated.jpg"].startswith("truncated or corrupt")
    assert reasons["e_garbage.png"].startswith("not an image")
