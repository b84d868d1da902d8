"""Every subcommand, fed the bad inputs users give it, ends in one clear line and a non-zero exit.

Missing paths, the wrong kind of folder (a bundle where a run is expected and back), a corrupt
manifest, checkpoint or model file, unsupported formats and empty folders. Each case runs the
real console script in a fresh process and fails on a traceback, on the "this is a bug" line
(an error type we did not turn into a message), on more than one error line, or on an output
left behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from styleforge.photo.album import album_paths

STYLEFORGE = Path(sys.executable).parent / "styleforge"


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, str]:
    """Good and bad inputs, built once: a tiny colour run, a LUT bundle, and broken copies."""
    from styleforge.cli import main
    from styleforge.photo.dataset import make_dataset

    root = tmp_path_factory.mktemp("bad-inputs")
    data = make_dataset("film-warm", root / "data", seed=0, size=64, show_progress=False)
    run = root / "run"
    assert main(["train", "--paired", str(data / "paired"), "--model", "colour", "--preset", "tiny",
                 "--steps", "1", "--out", str(run), "--quiet"]) == 0
    bundle = root / "bundle"
    assert main(["export", "--look", "film-warm", "--lut-size", "17", "--out", str(bundle), "--quiet"]) == 0
    (root / "empty").mkdir()
    (root / "text.txt").write_text("not a model\n")
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("no images here\n")
    for name, text in (("not-json", "{nope"), ("no-fields", "{}")):
        (root / name).mkdir()
        (root / name / "manifest.json").write_text(text)
    corrupt_run = root / "corrupt-run"
    shutil.copytree(run, corrupt_run)
    for weights in corrupt_run.rglob("*.safetensors"):
        weights.write_bytes(b"\x00garbage")
    replaced = root / "replaced-cube"
    shutil.copytree(bundle, replaced)
    cube = bytearray((replaced / "look.cube").read_bytes())
    cube[len(cube) // 2] ^= 0x01  # same size, one bit changed: only the hash can tell
    (replaced / "look.cube").write_bytes(bytes(cube))
    truncated = root / "truncated-cube"
    shutil.copytree(bundle, truncated)
    (truncated / "look.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    photo = root / "photo.jpg"
    shutil.copy(album_paths()[0], photo)
    return {"root": str(root), "run": str(run), "bundle": str(bundle), "photo": str(photo),
            "album": str(Path(album_paths()[0]).parent), "data": str(data)}


# (command line with {placeholders}, a piece of the expected message)
CASES = [
    ("info {root}/missing", "unknown generator"),
    ("info {root}/empty", "holds no checkpoints"),
    ("info {root}/not-json", "not valid JSON"),  # a bundle folder: its manifest is read as untrusted
    ("info {root}/corrupt-run", "corrupt or truncated weights file"),
    ("make-dataset --look no-such-look --out {root}/out", "unknown look"),
    ("make-dataset --look film-warm --photos {root}/empty --out {root}/out", "scene"),
    ("make-dataset --look film-warm --out {root}/text.txt", "not a folder"),
    ("train --content {root}/missing --style {root}/empty --out {root}/out", "not found"),
    ("train --content {root}/empty --style {root}/empty --out {root}/out", "has no images"),
    ("train --content {root}/notes --style {root}/notes --out {root}/out", "has no images"),
    ("train --paired {root}/empty --out {root}/out", "does not exist"),
    ("train --out {root}/empty --resume", "no checkpoint"),
    ("train --out {root}/corrupt-run --resume", "corrupt or truncated weights file"),
    ("train --content {album} --style {album} --out {root}/text.txt", "is a file"),
    ("distill --teacher {root}/missing --content {album} --out {root}/out", "not a styleforge run"),
    ("distill --teacher {bundle} --content {album} --out {root}/out", "holds no checkpoints"),
    ("distill --teacher {root}/corrupt-run --content {album} --out {root}/out", "corrupt or truncated"),
    ("distill --teacher {root}/text.txt --content {album} --out {root}/out", "not a TorchScript file"),
    ("distill --teacher {run} --content {root}/empty --out {root}/out", "no readable photos"),
    ("distill --teacher {run} --content {album} --out {root}/text.txt", "is a file"),
    ("export {root}/missing --out {root}/out", "no such run"),
    ("export {root}/empty --out {root}/out", "holds no checkpoints"),
    ("export {bundle} --out {root}/out", "holds no checkpoints"),
    ("export {root}/corrupt-run --out {root}/out", "corrupt or truncated weights file"),
    ("export {root}/text.txt --out {root}/out", "not a run folder"),
    ("export {run} --formats onnx,bogus --out {root}/out", "--formats: unknown bogus"),
    ("export {run} --calib {root}/empty --out {root}/out", "no images"),
    ("export --look glow --out {root}/out", "not a colour transform"),
    ("export --look no-such-look --out {root}/out", "unknown look"),
    ("export --model no_such_module:build --out {root}/out", "cannot import"),
    ("export", "nothing to export"),
    ("stylize {root}/missing {photo} --out {root}/out", "bundle not found"),
    ("stylize {run} {photo} --out {root}/out", "not a styleforge bundle"),
    ("stylize {root}/empty {photo} --out {root}/out", "not a styleforge bundle"),
    ("stylize {root}/not-json {photo} --out {root}/out", "not valid JSON"),
    ("stylize {root}/no-fields {photo} --out {root}/out", "not a styleforge bundle manifest"),
    ("stylize {root}/replaced-cube {photo} --out {root}/out", "sha256"),
    ("stylize {root}/truncated-cube {photo} --out {root}/out", "truncated, grown or replaced"),
    ("stylize {bundle} {photo} --artifact tflite_int8 --out {root}/out", "no 'tflite_int8' artifact"),
    ("stylize {bundle} {root}/empty --out {root}/out", "no images found"),
    ("stylize {bundle} {root}/notes --out {root}/out", "no images found"),
    ("bench {root}/missing", "not found"),
    ("bench {run}", "not a styleforge bundle"),
    ("bench {root}/not-json", "not valid JSON"),
    ("bench {root}/text.txt", "not a bundle folder or a model file"),
    ("bench {bundle} --artifact onnx", "nothing to run"),
    ("bench --compare {root}/text.txt {root}/text.txt", "cannot read benchmark JSON"),
    ("eval-looks --looks no-such-look --out {root}/out", "unknown look"),
]


@pytest.mark.parametrize("line,message", CASES, ids=[c[0].split(" {")[0] + ":" + c[1] for c in CASES])
def test_bad_input_is_one_line(place, line, message):
    argv = [part.format(**place) for part in line.split()]
    proc = subprocess.run([str(STYLEFORGE), *argv], capture_output=True, text=True, timeout=300,
                          cwd=place["root"], env={"PATH": "/usr/bin:/bin", "HOME": place["root"]})
    err = proc.stderr
    command = argv[0]
    assert proc.returncode != 0, (line, proc.stdout[-500:], err[-500:])
    assert "Traceback" not in err and "this is a bug" not in err, err[-2000:]
    errors = [x for x in err.splitlines() if ": error: " in x]
    assert len(errors) == 1 and errors[0].startswith(f"styleforge {command}: error: "), err[-2000:]
    assert message in errors[0], errors[0]
    assert not (Path(place["root"]) / "out").exists(), "a failed command left an output behind"


def test_debug_shows_the_traceback(place):
    proc = subprocess.run([str(STYLEFORGE), "--debug", "export", f"{place['root']}/corrupt-run", "--out",
                           f"{place['root']}/out"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("styleforge export: error: ")


def test_a_colour_run_exports_its_lut_graphs_by_cli(place, tmp_path):
    """The case that ended in a GridSample traceback: a colour run, --formats onnx."""
    proc = subprocess.run([str(STYLEFORGE), "export", place["run"], "--formats", "onnx", "--size", "64x64",
                           "--out", str(tmp_path / "b"), "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"torchscript", "lut_cube", "lut_hald", "lut_onnx"}


@pytest.mark.slow
def test_a_colour_run_exports_with_the_default_formats(place, tmp_path):
    """`styleforge export RUN` of a colour run: cube, and the LUT as ONNX, TFLite and Core ML."""
    proc = subprocess.run([str(STYLEFORGE), "export", place["run"], "--size", "64x64", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert {"lut_cube", "lut_hald", "lut_onnx", "lut_tflite_fp32", "lut_tflite_fp16"} <= set(manifest["artifacts"])
