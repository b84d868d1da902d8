"""Scene-disjoint splits of the album and scene grouping of your own folder (groups.json, EXIF)."""

import json

import pytest
from PIL import Image

from styleforge.photo.scenes import (
    SIDES,
    Grouping,
    SceneGroup,
    SplitError,
    album_grouping,
    group_folder,
    split_groups,
)

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_album_split_never_puts_a_group_on_two_sides(seed):
    grouping = album_grouping()
    split = split_groups(grouping, seed)
    side_of: dict = {}
    for side, groups in split.sides.items():
        for g in groups:
            assert g.name not in side_of, f"group {g.name} on {side_of[g.name]} and {side}"
            side_of[g.name] = side
    assert set(side_of) == {g.name for g in grouping.groups}  # every group used once
    photos = [p for side in SIDES for p in split.photos(side)]
    assert len(photos) == len(set(photos)) == 23
    test = split.sides["test"]
    assert sum(g.people for g in test) >= 2 and len(split.photos("test")) >= 4
    for side in ("content", "style", "val_content", "val_style"):
        assert split.sides[side], side
    assert sum(g.people for g in split.sides["content"]) >= 1 and sum(g.people for g in split.sides["style"]) >= 1
    assert not split.to_json()["notes"]


def test_split_is_seeded():
    grouping = album_grouping()
    assert split_groups(grouping, 3).to_json() == split_groups(grouping, 3).to_json()
    tests = {tuple(sorted(g.name for g in split_groups(grouping, s).sides["test"])) for s in SEEDS}
    assert len(tests) >= 4  # seeds really give different held-out scenes


def test_split_json_counts():
    info = split_groups(album_grouping(), 0, val_groups=0).to_json()
    assert info["sides"]["val_content"]["photos"] == 0 and info["rules"]["val_groups_per_side"] == 0
    assert sum(s["photos"] for s in info["sides"].values()) == 23
    assert sum(s["groups"] for s in info["sides"].values()) == 11
    for side in info["sides"].values():
        assert side["photos"] == sum(len(files) for files in side["members"].values())


def test_too_few_groups_is_an_error_and_small_folders_drop_validation(tmp_path):
    two = Grouping(tuple(SceneGroup(f"g{i}", (tmp_path / f"{i}.jpg",)) for i in range(2)), "test")
    with pytest.raises(SplitError, match="at least 3"):
        split_groups(two, 0)
    four = Grouping(tuple(SceneGroup(f"g{i}", (tmp_path / f"{i}.jpg",)) for i in range(4)), "test")
    split = split_groups(four, 0)
    assert len(split.sides["content"]) == len(split.sides["style"]) == 1 and not split.sides["val_style"]
    assert any("validation" in n for n in split.notes) and any("fewer than 4" in n for n in split.notes)


def _jpeg(path, when=None, colour=(120, 90, 60)):
    exif = Image.Exif()
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    Image.new("RGB", (64, 48), colour).save(path, exif=exif)
    return path


def test_own_folder_groups_by_exif_time(tmp_path):
    _jpeg(tmp_path / "a.jpg", "2024:05:01 10:00:00")
    _jpeg(tmp_path / "b.jpg", "2024:05:01 10:25:00")  # 25 min after a: same scene
    _jpeg(tmp_path / "c.jpg", "2024:05:01 10:50:00")  # 25 min after b: chained
    _jpeg(tmp_path / "d.jpg", "2024:05:01 12:00:00")  # 70 min later: a new scene
    _jpeg(tmp_path / "e.jpg")  # no EXIF time: its own group, and said so
    grouping = group_folder(sorted(tmp_path.glob("*.jpg")), tmp_path)
    members = sorted(tuple(p.name for p in g.photos) for g in grouping.groups)
    assert members == [("a.jpg", "b.jpg", "c.jpg"), ("d.jpg",), ("e.jpg",)]
    assert "EXIF" in grouping.method
    notes = " ".join(grouping.notes)
    assert "e.jpg" in notes and "grouping not checked" in notes and "people rule not checked" in notes


def test_own_folder_groups_json(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        _jpeg(tmp_path / name, "2024:05:01 10:00:00")  # EXIF would make one group of all four
    spec = {"groups": {"beach": ["a.jpg", "b.jpg"], "dog": ["c.jpg"]}, "people": {"beach": True, "dog": False}}
    (tmp_path / "groups.json").write_text(json.dumps(spec))
    grouping = group_folder(sorted(tmp_path.glob("*.jpg")), tmp_path)
    by_name = {g.name: g for g in grouping.groups}
    assert [p.name for p in by_name["beach"].photos] == ["a.jpg", "b.jpg"] and by_name["beach"].people
    assert by_name["dog"].people is False
    assert [p.name for g in grouping.groups if g.name not in ("beach", "dog") for p in g.photos] == ["d.jpg"]
    assert "groups.json" in grouping.method
    (tmp_path / "groups.json").write_text(json.dumps({"groups": {"x": ["nope.jpg"]}}))
    with pytest.raises(SplitError, match="nope.jpg"):
        group_folder(sorted(tmp_path.glob("*.jpg")), tmp_path)
