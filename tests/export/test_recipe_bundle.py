"""A look recipe end to end: ``train --paired`` on a local look ships a recipe run, ``export`` gates
it into ``recipe.json`` + ``look.cube``, the torch-free runtime runs it at any size as PyTorch does,
``info`` prints it, and hostile recipe files are refused with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.cli import main
from styleforge.runtime import open_bundle
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.contract import BundleError
from styleforge.runtime.metrics import psnr
from styleforge.train.checkpoint import load_generator


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    assert main(["make-dataset", "--look", "glow", "--out", str(root / "ds"), "--size", "128", "--quiet"]) == 0
    assert main(["train", "--paired", str(root / "ds" / "paired"), "--preset", "tiny", "--steps", "60",
                 "--out", str(root / "run"), "--quiet"]) == 0
    assert main(["export", str(root / "run"), "--out", str(root / "bundle"), "--quiet"]) == 0
    return root


def test_train_paired_on_a_local_look_ships_a_recipe_with_its_choice(recipe_run, capsys):
    model, info = load_generator(recipe_run / "run")
    assert info["arch"] == "recipe" and "bloom" in model.config["ops"]
    meta = json.loads(next((recipe_run / "run" / "checkpoints").iterdir()).joinpath("meta.json").read_text())
    choice = meta["run"]["paired_choice"]
    assert choice["generator"] == "recipe" and choice["held_out"]
    assert {o["op"] for o in choice["ops"] if o["kept"]} == set(model.config["ops"]) - {"colour_lut"}
    assert json.loads((recipe_run / "run" / "recipe.json").read_text())["steps"][0]["op"] in model.config["ops"]
    evaluated = json.loads((recipe_run / "run" / "eval.json").read_text())
    assert evaluated["psnr"] > evaluated["identity"]["psnr"] + 3  # a glow learned from 7 pairs at 128 px
    # a resumed recipe run is done: nothing is refitted
    assert main(["train", "--paired", str(recipe_run / "ds" / "paired"), "--preset", "tiny", "--steps", "60",
                 "--out", str(recipe_run / "run"), "--resume", "--quiet"]) == 0


def test_the_bundle_runs_the_recipe_as_pytorch_does_at_any_size(recipe_run):
    bundle = recipe_run / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"recipe", "lut_cube", "ffmpeg"}
    assert manifest["artifacts"]["recipe"]["fidelity"]["verified"] is True
    model, _ = load_generator(recipe_run / "run")
    stylizer = open_bundle(bundle)
    assert stylizer.artifact.key == "recipe" and any(line.endswith("colour_lut  look.cube") for line in stylizer.info()["recipe"])
    photo = np.asarray(Image.open(next((recipe_run / "ds" / "test" / "input").iterdir())).convert("RGB"))
    for scale in (1, 3):  # the recipe is in units of the photo: the same look at 3x the size
        rgb = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * scale, photo.shape[0] * scale)))
        ours = stylizer.stylize(rgb)
        with torch.no_grad():
            x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
            ref = ((model(x)[0].permute(1, 2, 0).numpy() + 1.0) * 127.5).clip(0, 255)
        assert ours.shape == rgb.shape and ours.dtype == np.uint8
        assert psnr(ours.astype(np.float64), np.rint(ref)) >= 50.0
    half = stylizer.stylize(photo, strength=0.5).astype(np.float64)
    full = stylizer.stylize(photo).astype(np.float64)
    assert np.abs(half - (photo + 0.5 * (full - photo))).max() <= 1.0
    # the .cube alone is the colour part, still runnable on its own
    assert open_bundle(bundle, artifact="cube").info()["recipe"] == ["1. colour_lut  look.cube"]


def test_info_prints_the_recipe(recipe_run, capsys):
    assert main(["info", str(recipe_run / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "recipe.json" in out and "colour_lut  look.cube" in out and "bloom" in out
    assert main(["info", str(recipe_run / "run")]) == 0
    assert "of the short side" in capsys.readouterr().out


def _tamper(bundle: Path, edit) -> None:
    path = bundle / "recipe.json"
    text = path.read_text()
    path.write_text(edit(text))
    data = json.loads((bundle / "manifest.json").read_text())
    art = data["artifacts"]["recipe"]
    art["size_bytes"], art["sha256"] = file_facts(path)  # a competent forger: the hash is right
    (bundle / "manifest.json").write_text(json.dumps(data, indent=2))


def _steps(fn):
    def edit(text: str) -> str:
        data = json.loads(text)
        fn(data["steps"])
        return json.dumps(data)
    return edit


HOSTILE = {
    "unknown operator": (_steps(lambda s: s.append({"op": "deep_dream"})), "unknown operator"),
    "NaN parameter": (lambda t: t.replace('"strength": ', '"strength": NaN, "x": ', 1), "NaN"),
    "absurd radius": (_steps(lambda s: [st.update(radius=1e9) for st in s if "radius" in st]), "outside"),
    "thousands of steps": (_steps(lambda s: s.extend([s[-1]] * 2000)), "more than"),  # under the 1 MiB size cap
    "lut outside the bundle": (_steps(lambda s: [st.update(lut="../look.cube") for st in s if st["op"] == "colour_lut"]),
                               "not a .cube artifact"),
    "not JSON": (lambda t: t[: len(t) // 2], "artifact 'recipe'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_recipes_are_refused_with_one_line(recipe_run, tmp_path, case, capsys):
    edit, expect = HOSTILE[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(recipe_run / "bundle", bundle)
    _tamper(bundle, edit)
    with pytest.raises(BundleError, match=expect) as err:
        open_bundle(bundle)
    assert "\n" not in str(err.value)
    photo = next((recipe_run / "ds" / "test" / "input").iterdir())
    assert main(["stylize", str(bundle), str(photo), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("styleforge stylize: error:")
    assert main(["info", str(bundle)]) == 2  # info reads the recipe as untrusted input too
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("styleforge info: error:") and "this is a bug" not in lines[0]
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_the_demo_report_shows_the_local_look(recipe_run):
    from styleforge.cli.demo import local_section

    text = local_section(recipe_run, recipe_run / "ds", recipe_run / "run", recipe_run / "bundle")
    assert "`glow` as a look recipe" in text and "| look recipe (torch-free runtime) |" in text
    assert "| bloom |" in text and "colour_lut  look.cube" in text
    assert (recipe_run / "comparison_recipe.png").stat().st_size > 10_000
