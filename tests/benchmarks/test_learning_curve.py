"""Learning-curve cells: disjoint scene groups per side, and the report over split seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from styleforge.benchmarks.learning_curve import (
    CLASSICAL,
    COLOUR,
    IDENTITY,
    SAMPLE_CELL,
    SAMPLES,
    draw_sides,
    photo_grouping,
    write_report,
    write_sides,
)
from styleforge.benchmarks.scoring import save_comparison_grid
from styleforge.photo.album import people_photos
from styleforge.photo.photos import load_photos


def test_sides_are_whole_distinct_groups_without_people():
    grouping = photo_grouping(None)  # the corpus that ships
    people = {p for g in grouping.groups if g.people for p in g.photos}
    for n in (7, 20, 60):
        content, style = draw_sides(grouping, n, seed=1)
        flat_c = [p for g in content for p in g]
        flat_s = [p for g in style for p in g]
        assert len(flat_c) == len(flat_s) == n
        assert not set(flat_c) & set(flat_s) and not (set(flat_c) | set(flat_s)) & people
    assert draw_sides(grouping, 7, seed=1) == draw_sides(grouping, 7, seed=1)
    assert draw_sides(grouping, 7, seed=1) != draw_sides(grouping, 7, seed=2)
    with pytest.raises(ValueError, match="photos a side need"):
        draw_sides(grouping, 500, seed=0)


def test_written_sides_carry_their_scene_groups(tmp_path):
    from styleforge.photo.scenes import group_folder
    from styleforge.runtime.imageio import list_images

    content, style = draw_sides(photo_grouping(None), 3, seed=0)
    write_sides(tmp_path, "film-warm", content, style)
    for side, groups in (("content", content), ("style", style)):
        folder = tmp_path / side
        found = group_folder(list_images(folder), folder)
        assert found.method == "groups.json" and len(found.groups) == len(groups)


def test_report_gives_mean_and_sd_per_method_and_size(tmp_path):
    for n, seed, base in ((7, 0, 20.0), (7, 1, 22.0), (20, 0, 25.0)):
        scores = {IDENTITY: 18.0, **{c: base - i for i, c in enumerate(CLASSICAL)}, COLOUR: base + 1.0}
        cell = {"look": "film-warm", "per_side": n, "split_seed": seed, "scores": scores,
                "verdict": {"ok": True, "failed": []}, "evidence": {"freedom": 0.1 * n}, "train_seconds": 60.0,
                "samples": "samples.jpg"}
        path = tmp_path / "film-warm" / f"n-{n}" / f"split-{seed}" / "cell.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(cell))
    report = write_report(tmp_path)
    seven = report["summary"]["film-warm"]["7"]
    assert seven[COLOUR] == {"mean": 22.0, "sd": 1.41, "splits": 2}
    assert report["summary"]["film-warm"]["20"][COLOUR]["sd"] == 0.0
    md = (tmp_path / "curve.md").read_text()
    assert "| margin | +1.00 (vs reinhard (Lab mean/std)) | +1.00" in md
    # the first split's sample sheets are shown (split 1's is not)
    assert "![film-warm n=7](film-warm/n-7/split-0/samples.jpg)" in md and "split-1/samples" not in md
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "curve.json").read_text())["summary"] == report["summary"]


def test_sample_sheet_is_one_small_jpeg_row_per_photo(tmp_path):
    photo = load_photos(people_photos()[:1], 1, 160)[0]
    columns = {IDENTITY: [photo], "a method name much too long for one line of its column": [photo[:, ::-1]],
               "ground truth": [photo]}
    path = save_comparison_grid(columns, tmp_path / SAMPLES, cell=SAMPLE_CELL, max_rows=1)
    with Image.open(path) as sheet:
        assert sheet.format == "JPEG" and sheet.width == 3 * SAMPLE_CELL
        label = sheet.height - SAMPLE_CELL
        assert 30 < label < 80  # the long name wrapped onto several lines above the photos
        pixels = np.asarray(sheet.convert("RGB"))
    # the photo sits in its column: the identity cell's centre is the photo's centre, up to JPEG
    h, w = photo.shape[:2]
    centre = pixels[label + SAMPLE_CELL // 2, SAMPLE_CELL // 2].astype(int)
    assert np.abs(centre - photo[h // 2, w // 2].astype(int)).max() < 40, (centre, photo[h // 2, w // 2])


def test_the_colour_oracle_is_the_ceiling_of_colour_maps_not_of_local_looks():
    from styleforge.photo.album import album_paths
    from styleforge.photo.baselines import colour_oracle
    from styleforge.photo.looks import apply_look
    from styleforge.photo.photos import load_photos
    from styleforge.runtime.metrics import psnr

    photos = load_photos(album_paths()[:4], 4, 96)
    for look, low, high in (("film-warm", 38.0, 99.0), ("glow", 0.0, 34.0)):
        targets = [apply_look(look, x) for x in photos]
        oracle = colour_oracle(photos, targets)
        scores = [psnr(oracle(x).astype(float), t.astype(float)) for x, t in zip(photos, targets)]
        identity = [psnr(x.astype(float), t.astype(float)) for x, t in zip(photos, targets)]
        assert low <= np.mean(scores) <= high and np.mean(scores) > np.mean(identity), (look, scores)
