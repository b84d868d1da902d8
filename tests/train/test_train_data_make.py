"""`styleforge make-dataset`: album photos split by scene group, exact ground truth, atomic writes."""

import json

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.photo.album import album_photos
from styleforge.photo.looks import apply_look
from styleforge.runtime.imageio import list_images
from styleforge.train.data import PairedDataset, UnpairedDataset

ARGS = ["--look", "film-warm", "--size", "64", "--quiet"]
FOLDERS = {  # side of the split -> folders holding its photos
    "content": ("content", "paired/A", "paired/B"),
    "style": ("style",),
    "test": ("test/input", "test/target"),
    "val_content": ("val/content",),
    "val_style": ("val/style",),
}


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("made") / "film"
    assert main(["make-dataset", "--out", str(out), *ARGS]) == 0
    return out


def test_layout_counts_and_one_file_per_photo(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["look"] == "film-warm" and meta["seed"] == 0 and meta["size"] == 64
    sides = meta["split"]["sides"]
    assert sum(s["photos"] for s in sides.values()) == 23 and sum(s["groups"] for s in sides.values()) == 11
    for side, folders in FOLDERS.items():
        assert meta["counts"][side] == sides[side]["photos"] > 0, side
        for folder in folders:
            files = list_images(dataset / folder)
            assert len(files) == sides[side]["photos"], folder
            assert all(min(_load(f).shape[:2]) == 64 for f in files)  # whole photo, short side 64
    assert meta["counts"]["paired"] == meta["counts"]["content"]
    assert [p.name for p in list_images(dataset / "paired/A")] == [p.name for p in list_images(dataset / "paired/B")]
    assert "CC-BY-SA-4.0" in meta["credit"]
    assert not [p for p in dataset.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_no_scene_group_on_two_sides(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    group = {p.name: p.group for p in album_photos()}
    side_of_group: dict = {}
    for rel, record in meta["files"].items():
        side = record["side"]
        assert rel.startswith(FOLDERS[side]), rel
        previous = side_of_group.setdefault(group[record["source"]], side)
        assert previous == side, f"scene group {group[record['source']]} on {previous} and {side}"
    test = meta["split"]["sides"]["test"]
    assert test["people_groups"] >= 2 and test["photos"] >= 4


def test_rotated_photos_stay_upright(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    stored = {p.name: p.size for p in album_photos()}
    for rel, record in meta["files"].items():
        width, height = stored[record["source"]]
        w, h = _load(dataset / rel).shape[1::-1]
        assert (w > h) == (width > height), f"{rel} from {record['source']} is sideways"
        assert [w, h] == record["size"]


def test_targets_are_the_look_of_the_inputs(dataset):
    for a_dir, b_dir in (("paired/A", "paired/B"), ("test/input", "test/target")):
        for a in list_images(dataset / a_dir):
            np.testing.assert_array_equal(_load(dataset / b_dir / a.name), apply_look("film-warm", _load(a)))
    for a in list_images(dataset / "content"):
        np.testing.assert_array_equal(_load(a), _load(dataset / "paired/A" / a.name))


def test_same_seed_same_dataset_and_refuses_to_overwrite(dataset, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["make-dataset", "--out", str(again), *ARGS]) == 0
    assert (again / "dataset.json").read_text() == (dataset / "dataset.json").read_text()
    before = (again / "dataset.json").read_text()
    assert main(["make-dataset", "--out", str(again), *ARGS, "--seed", "5"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (again / "dataset.json").read_text() == before  # untouched
    assert main(["make-dataset", "--out", str(again), *ARGS, "--seed", "5", "--force", "--val-groups", "0"]) == 0
    meta = json.loads((again / "dataset.json").read_text())
    assert meta["seed"] == 5 and meta["split"]["sides"]["val_style"]["photos"] == 0
    assert not (again / "val").exists()
    assert main(["make-dataset", "--out", str(tmp_path / "x"), "--look", "nope", "--quiet"]) == 2
    assert "unknown look" in capsys.readouterr().err


def test_dataset_loads_for_training(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    unpaired = UnpairedDataset(dataset / "content", dataset / "style", patch_size=32)
    paired = PairedDataset(dataset / "paired", patch_size=32)
    assert len(paired) == meta["counts"]["content"] and not unpaired.skipped and not paired.skipped
    rng = np.random.default_rng(0)
    assert tuple(paired.get(0, rng)["style"].shape) == (3, 32, 32)


def test_looks_command_lists_every_look(capsys):
    assert main(["looks"]) == 0
    out = capsys.readouterr().out
    for name in ("film-warm", "noir", "teal-orange", "glow", "toon", "portrait-retouch", "dreamy-bloom",
                 "random-tone-N", "random-local-N"):
        assert name in out


def _own_photo(path, when):
    exif = Image.Exif()
    if when:
        exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    source = album_photos()[len(list(path.parent.iterdir())) % 23].path
    Image.open(source).convert("RGB").resize((100, 80)).save(path, exif=exif)


def test_own_photos_folder_is_grouped_by_exif_time(tmp_path, capsys):
    photos = tmp_path / "mine"
    photos.mkdir()
    times = ["2024:01:01 09:00:00", "2024:01:01 09:10:00",  # one scene: a burst
             "2024:01:02 12:00:00", "2024:01:03 12:00:00", "2024:01:04 12:00:00", None]
    for i, when in enumerate(times):
        _own_photo(photos / f"shot{i}.jpg", when)
    out = tmp_path / "ds"
    assert main(["make-dataset", "--out", str(out), "--photos", str(photos), *ARGS]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    used = sorted(name for names in meta["sources"].values() for name in names)
    assert used == [f"shot{i}.jpg" for i in range(6)]
    burst = [side for side, names in meta["sources"].items() if {"shot0.jpg", "shot1.jpg"} & set(names)]
    assert len(burst) == 1  # the burst never straddles a split
    notes = " ".join(meta["split"]["notes"])
    assert "shot5.jpg" in notes and "people rule not checked" in notes
    assert "EXIF" in meta["split"]["grouping"]
    assert "note:" in capsys.readouterr().out
    for name in ("shot2.jpg", "shot3.jpg", "shot4.jpg", "shot5.jpg"):
        (photos / name).unlink()
    assert main(["make-dataset", "--out", str(tmp_path / "ds2"), "--photos", str(photos), *ARGS]) == 2
