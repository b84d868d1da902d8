"""A bundle is untrusted input: every case of the hostile corpus (tests/runtime/hostile_bundles.py)
is refused by ``open_bundle``, ``styleforge stylize`` and ``styleforge bench`` with one
line, no traceback, nothing written, and no file outside the bundle opened; good bundles load."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import styleforge
from styleforge.cli import main
from styleforge.errors import StyleforgeError
from styleforge.runtime import load_manifest, open_bundle
from styleforge.runtime import lut as rlut
from styleforge.runtime.contract import BundleError
from styleforge.runtime.manifest import validate_manifest

REPO = Path(__file__).resolve().parents[2]


def _helper():
    """tests/runtime/hostile_bundles.py (tests are not a package: --import-mode=importlib)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_bundles", Path(__file__).with_name("hostile_bundles.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


hostile = _helper()
MODEL_FILE, MODEL_KEY = hostile.MODEL_FILE, hostile.MODEL_KEY


# ------------------------------------------------------------------------------ watching open()

_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # cannot be removed again; idle unless a test is watching


@contextmanager
def watching_opens():
    """Every path passed to open()/os.open() (builtins, io, pathlib, numpy, Pillow) meanwhile, resolved."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def outside_opens(opened: list[str], bundle: Path) -> list[str]:
    """Opened paths that are neither in the bundle nor Python's own (imports, package data)."""
    allowed = [os.path.realpath(p) for p in (bundle, sys.prefix, sys.base_prefix, REPO, Path(styleforge.__file__).parent)]
    return [p for p in opened if not any(p == a or p.startswith(a + os.sep) for a in allowed)]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def lut_bundle(tmp_path_factory) -> Path:
    from styleforge.export.lut_export import export_lut_bundle

    grid = rlut.identity_table(33)
    warm = np.clip(grid * np.float32([1.08, 1.0, 0.88]) + np.float32([0.02, 0.0, -0.01]), 0.0, 1.0)
    out = tmp_path_factory.mktemp("lut") / "warm"
    export_lut_bundle(rlut.Lut3D(warm, "warm"), out, size=33, style="warm", progress=False)
    return out


@pytest.fixture(scope="module")
def corpus(tiny_bundle, lut_bundle, recipe_bundle, tmp_path_factory):
    return hostile.build_corpus(tiny_bundle, lut_bundle, tmp_path_factory.mktemp("hostile"), recipe_bundle)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "p.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------------------------ the corpus


def test_open_bundle_refuses_every_case_opening_nothing_outside(corpus):
    assert len(corpus) >= 50 and sum(case.name.startswith("recipe-") for case in corpus) >= 16
    for case in corpus:
        with watching_opens() as opened, pytest.raises(StyleforgeError) as err:
            open_bundle(case.path, artifact=case.artifact)
        message = str(err.value)
        assert "\n" not in message, (case.name, message)
        assert re.search(case.expect, message), (case.name, message)
        assert not outside_opens(opened, case.path), (case.name, outside_opens(opened, case.path))


def test_stylize_cli_refuses_every_case_in_one_line(corpus, photo, tmp_path, capsys):
    for case in corpus:
        out = tmp_path / case.name
        with watching_opens() as opened:
            rc = main(["stylize", str(case.path), str(photo), "--out", str(out), "--artifact", case.artifact, "--quiet"])
        captured = capsys.readouterr()
        assert rc == 2, (case.name, captured)
        line = _one_line(captured.err)
        assert line.startswith("styleforge stylize: error: ") and "Traceback" not in captured.err, (case.name, line)
        assert re.search(case.expect, line), (case.name, line)
        assert not out.exists() and not captured.out, case.name
        # the input photo is the one file outside the bundle the command may open (it did not get that far)
        assert not outside_opens([p for p in opened if p != str(photo.resolve())], case.path), case.name


def test_bench_refuses_every_case_in_one_line(corpus, tmp_path, capsys):
    for case in corpus:
        report = tmp_path / f"{case.name}.json"
        key = "lut_cube" if case.artifact == "lut" else case.artifact
        args = ["bench", str(case.path), "--artifact", key, "--backend", case.backend, "--runs", "1",
                "--warmup", "0", "--json", str(report)]
        rc = main(args + (["--size", "32"] if case.backend == "lut" else []))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out, case.name
        if case.bench_refuses:
            assert rc == 2, (case.name, captured)
            line = _one_line(captured.err)
            assert line.startswith("styleforge bench: error: "), (case.name, line)
            assert re.search(case.expect, line), (case.name, line)
            assert not report.exists() and not captured.out, case.name
        else:  # the interpreter's error is the (only) cell's, on one line; the matrix fails
            assert rc == 1, (case.name, captured)
            cells = [ln for ln in captured.err.splitlines() if ln.startswith("[1/1]")]
            assert len(cells) == 1 and ": error: " in cells[0] and re.search(case.expect, cells[0]), captured.err


# ------------------------------------------------------------------------------ good bundles, opt-out


def test_good_bundles_load_and_open_only_their_own_files(tiny_bundle, lut_bundle, recipe_bundle):
    for bundle, artifact in ((tiny_bundle, MODEL_KEY), (tiny_bundle, "onnx"), (tiny_bundle, "torchscript"),
                             (lut_bundle, "lut"), (recipe_bundle, "recipe")):
        with watching_opens() as opened:
            stylizer = open_bundle(bundle, artifact=artifact)
            out = stylizer.stylize(np.full((16, 24, 3), 100, np.uint8))
        assert out.shape == (16, 24, 3)
        assert not outside_opens(opened, bundle), outside_opens(opened, bundle)
        inside = {p for p in opened if p.startswith(os.path.realpath(bundle))}
        assert os.path.realpath(bundle / "manifest.json") in inside


def test_demo_manifests_pass_the_schema():
    for name in ("manifest.json", "lut_manifest.json"):
        path = REPO / "docs" / "results" / "demo" / name
        validate_manifest(json.loads(path.read_text()), path.parent)


def test_verify_false_skips_only_the_hash(tiny_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    data = bytearray((copy / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped weight byte: same size, another sha256
    (copy / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        open_bundle(copy, artifact=MODEL_KEY)
    open_bundle(copy, artifact=MODEL_KEY, verify=False)  # development opt-out: loads
    (copy / MODEL_FILE).write_bytes(bytes(data[:1000]))
    with pytest.raises(BundleError, match="is 1000 bytes, the manifest says"):  # the size is still checked
        open_bundle(copy, artifact=MODEL_KEY, verify=False)
    hostile.rehash(copy, MODEL_KEY)
    assert load_manifest(copy).artifacts[MODEL_KEY].size_bytes == 1000


def test_unknown_keys_are_ignored_and_symlinks_inside_are_followed(tiny_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    data = json.loads((copy / "manifest.json").read_text())
    data["from_the_future"] = {"anything": [1, 2]}
    data["artifacts"][MODEL_KEY]["new_field"] = "ignored"
    (copy / "manifest.json").write_text(json.dumps(data))
    (copy / "models").mkdir()
    os.replace(copy / MODEL_FILE, copy / "models" / MODEL_FILE)
    os.symlink(Path("models") / MODEL_FILE, copy / MODEL_FILE)  # a link that stays inside the bundle
    stylizer = open_bundle(copy, artifact=MODEL_KEY)
    assert stylizer.artifact.key == MODEL_KEY
