"""`styleforge make-dataset`: disjoint content/style/test sources, exact ground truth, atomic writes."""

import json

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.runtime.imageio import list_images
from styleforge.train.data import PairedDataset, UnpairedDataset
from styleforge.train.looks import apply_look
from styleforge.train.samples import sample_photos

ARGS = ["--look", "film-warm", "--count", "6", "--test-count", "4", "--size", "64", "--quiet"]


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("made") / "film"
    assert main(["make-dataset", "--out", str(out), *ARGS]) == 0
    return out


def test_layout_and_counts(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["look"] == "film-warm" and meta["seed"] == 0 and meta["size"] == 64
    expected = {"content": 6, "style": 6, "paired/A": 6, "paired/B": 6, "test/input": 4, "test/target": 4}
    for folder, count in expected.items():
        files = list_images(dataset / folder)
        assert len(files) == count, folder
        assert all(_load(f).shape == (64, 64, 3) for f in files)
    assert [p.name for p in list_images(dataset / "paired/A")] == [p.name for p in list_images(dataset / "paired/B")]
    assert not [p for p in dataset.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_content_style_and_test_sources_are_disjoint(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    sources = {group: set(names) for group, names in meta["sources"].items()}
    assert sources["content"] and sources["style"] and sources["test"]
    assert not sources["content"] & sources["style"]
    assert not sources["test"] & (sources["content"] | sources["style"])
    stereo = {"motorcycle_left.png", "motorcycle_right.png"}  # one scene: must not straddle groups
    assert sum(bool(stereo & names) for names in sources.values()) <= 1
    for rel, record in meta["files"].items():
        group = "test" if rel.startswith("test/") else "style" if rel.startswith("style/") else "content"
        assert record["source"] in sources[group], rel


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
    assert main(["make-dataset", "--out", str(again), *ARGS, "--seed", "5", "--force"]) == 0
    assert json.loads((again / "dataset.json").read_text())["seed"] == 5
    assert main(["make-dataset", "--out", str(tmp_path / "x"), "--look", "nope", "--quiet"]) == 2
    assert "unknown look" in capsys.readouterr().err


def test_dataset_loads_for_training(dataset):
    unpaired = UnpairedDataset(dataset / "content", dataset / "style", patch_size=32)
    paired = PairedDataset(dataset / "paired", patch_size=32)
    assert len(unpaired) == 6 and len(paired) == 6 and not unpaired.skipped and not paired.skipped
    rng = np.random.default_rng(0)
    assert tuple(paired.get(0, rng)["style"].shape) == (3, 32, 32)


def test_looks_command_lists_every_look(capsys):
    assert main(["looks"]) == 0
    out = capsys.readouterr().out
    for name in ("film-warm", "noir", "teal-orange", "glow", "toon"):
        assert name in out


def test_own_photos_folder(tmp_path):
    photos = tmp_path / "mine"
    photos.mkdir()
    for i, path in enumerate(sample_photos()[:4]):
        Image.open(path).convert("RGB").resize((100, 80)).save(photos / f"shot{i}.jpg")
    out = tmp_path / "ds"
    assert main(["make-dataset", "--out", str(out), "--photos", str(photos), *ARGS]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    used = [name for names in meta["sources"].values() for name in names]
    assert sorted(used) == [f"shot{i}.jpg" for i in range(4)] and len(set(used)) == 4
    (photos / "shot3.jpg").unlink()
    (photos / "shot2.jpg").unlink()
    assert main(["make-dataset", "--out", str(tmp_path / "ds2"), "--photos", str(photos), *ARGS]) == 2
