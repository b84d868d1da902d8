"""A corpus of hostile bundles, written from real exported ones (a model bundle, a LUT bundle, a
look-recipe bundle).

Each case is a copy of a good bundle with one thing wrong, as a careless or malicious source
would ship it. Where a check must hold even against a competent attacker, the tampered file's
``size_bytes`` and ``sha256`` are recomputed (``rehash``), so the refusal cannot come from the
hash. Files a case points outside the bundle are real copies of the model (in ``outside/``): were
the runtime to follow the path, it would load them, so a refusal proves the confinement.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from styleforge.runtime.bundle_files import file_facts

MODEL_KEY, MODEL_FILE = "tflite_fp16", "model_fp16.tflite"  # what the model cases ask for (litert)


@dataclass(frozen=True)
class Case:
    name: str
    path: Path  # the hostile bundle folder
    artifact: str  # what the entry points are asked to load
    backend: str  # for bench: the backend whose cells run it
    expect: str  # regex the one-line error must match
    bench_refuses: bool = True  # False: bench reports the interpreter's error as the cell's, and goes on


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())


def _save(bundle: Path, data: dict[str, Any]) -> None:
    (bundle / "manifest.json").write_text(json.dumps(data, indent=2))


def rehash(bundle: Path, key: str) -> None:
    """Record the artifact's current file size and sha256 in the manifest (a competent forger)."""
    data = _manifest(bundle)
    art = data["artifacts"][key]
    art["size_bytes"], art["sha256"] = file_facts(bundle / art["file"])
    _save(bundle, data)


def _edit(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        data = _manifest(bundle)
        fn(data)
        _save(bundle, data)

    return apply


def _art(key: str, **fields: Any) -> Callable[[Path], None]:
    return _edit(lambda d: d["artifacts"][key].update(fields))


def _tensor(key: str, side: str, **fields: Any) -> Callable[[Path], None]:
    return _edit(lambda d: d["artifacts"][key][side].update(fields))


def _drop_dtype(d: dict[str, Any]) -> None:
    del d["artifacts"][MODEL_KEY]["input"]["dtype"]


def _write_manifest_text(text: str) -> Callable[[Path], None]:
    return lambda bundle: (bundle / "manifest.json").write_text(text)


def _duplicate_key(bundle: Path) -> None:
    data = _manifest(bundle)
    forged = dict(data["artifacts"][MODEL_KEY], file="model_fp32.tflite")
    entries = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data["artifacts"].items()]
    entries.append(f"{json.dumps(MODEL_KEY)}: {json.dumps(forged)}")  # json.loads would keep this one, silently
    data["artifacts"] = "@ARTIFACTS@"
    text = json.dumps(data, indent=2).replace('"@ARTIFACTS@"', "{" + ",\n".join(entries) + "}")
    assert json.loads(text)["artifacts"][MODEL_KEY]["file"] == "model_fp32.tflite"
    (bundle / "manifest.json").write_text(text)


def _nan_range(bundle: Path) -> None:
    text = (bundle / "manifest.json").read_text()
    data = json.loads(text)
    data["artifacts"][MODEL_KEY]["output"]["value_range"] = ["@NAN@", 1.0]
    (bundle / "manifest.json").write_text(json.dumps(data, indent=2).replace('"@NAN@"', "NaN"))


def _symlink_out(outside: Path) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        target = outside / "model_fp16.tflite"  # the real model, same size and hash
        (bundle / MODEL_FILE).unlink()
        os.symlink(target, bundle / MODEL_FILE)

    return apply


def _manifest_link_out(outside: Path) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        shutil.copy(bundle / "manifest.json", outside / "manifest.json")
        (bundle / "manifest.json").unlink()
        os.symlink(outside / "manifest.json", bundle / "manifest.json")

    return apply


def _truncate(key_file: str, keep: float, forge: str = "") -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        path = bundle / key_file
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        if forge:
            rehash(bundle, forge)

    return apply


def _flip_byte(bundle: Path) -> None:
    path = bundle / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _other_format(bundle: Path) -> None:
    shutil.copy(bundle / "model.onnx", bundle / MODEL_FILE)
    rehash(bundle, MODEL_KEY)


def _duplicate_file(bundle: Path) -> None:
    data = _manifest(bundle)
    data["artifacts"]["tflite_fp32"].update(file=MODEL_FILE, size_bytes=data["artifacts"][MODEL_KEY]["size_bytes"],
                                            sha256=data["artifacts"][MODEL_KEY]["sha256"])
    _save(bundle, data)


def _cube_rows(fn: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        path = bundle / "look.cube"
        path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")
        rehash(bundle, "lut_cube")

    return apply


def _cube_nan(lines: list[str]) -> list[str]:
    rows = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    lines[rows[len(rows) // 2]] = "0.5 nan 0.5"  # a row that parses: float("nan")
    return lines


def _cube_huge(lines: list[str]) -> list[str]:
    return [("LUT_3D_SIZE 100000" if line.startswith("LUT_3D_SIZE") else line) for line in lines]


def _hald_wrong_size(bundle: Path) -> None:
    Image.new("RGB", (64, 64), (128, 128, 128)).save(bundle / "look_hald.png")


def _gigabyte_manifest(bundle: Path) -> None:
    with open(bundle / "manifest.json", "r+b") as f:
        f.truncate(1 << 30)  # sparse: costs no disk, but 1 GB to anyone who reads it


def model_cases(outside: Path) -> dict[str, tuple[Callable[[Path], None], str, str]]:
    """name -> (mutation, artifact to ask for, expected message) on the model bundle."""
    fp16 = MODEL_KEY
    return {
        "path-traversal": (_art(fp16, file="../outside/model_fp16.tflite"), fp16, r"'\.\./outside/model_fp16\.tflite' is not a normalised path"),
        "absolute-path": (_art(fp16, file=str(outside / "model_fp16.tflite")), fp16, r"is an absolute path"),
        "symlink-out": (_symlink_out(outside), fp16, r"file model_fp16\.tflite: resolves to .*outside the bundle; refused"),
        "manifest-symlink-out": (_manifest_link_out(outside), fp16, r"manifest is a link to .*outside the bundle"),
        "missing-file": (lambda b: (b / MODEL_FILE).unlink(), fp16, r"file model_fp16\.tflite: is missing"),
        "missing-artifacts": (_edit(lambda d: d.update(artifacts={})), fp16, r"lists no artifacts"),
        "extra-artifact": (_edit(lambda d: d["artifacts"].update(evil=dict(d["artifacts"][fp16], file="evil.pkl", format="pickle"))),
                           fp16, r"artifact 'evil': format: 'pickle' is not a format this runtime knows"),
        "duplicated-key": (_duplicate_key, fp16, r"key 'tflite_fp16' appears twice"),
        "duplicated-file": (_duplicate_file, fp16, r"file: 'model_fp16\.tflite' is also the file of artifact 'tflite_fp(16|32)'"),
        "null-hash": (_art(fp16, sha256=None), fp16, r"sha256: must be the file's 64-hex-digit sha256, got null"),
        "wrong-hash": (_art(fp16, sha256="0" * 64), fp16, r"sha256 [0-9a-f]{12}\.\.\. does not match the manifest's 000000000000"),
        "replaced-same-size": (_flip_byte, fp16, r"model_fp16\.tflite: sha256 .* does not match"),
        "truncated": (_truncate(MODEL_FILE, 0.5), fp16, r"model_fp16\.tflite: is \d+ bytes, the manifest says \d+ .*refused before reading"),
        "truncated-rehashed": (_truncate(MODEL_FILE, 0.5, forge=fp16), fp16, r"cannot load"),
        "zero-byte": (_truncate(MODEL_FILE, 0.0), fp16, r"model_fp16\.tflite: is 0 bytes, the manifest says"),
        "zero-byte-rehashed": (_truncate(MODEL_FILE, 0.0, forge=fp16), fp16, r"size_bytes: must be the file's size in bytes, 1\.\..*got 0"),
        "other-format-as-tflite": (_other_format, fp16, r"model_fp16\.tflite: is not a TFLite flatbuffer"),
        "wrong-shape": (_tensor(fp16, "input", shape=[1, 32, 32, 3]), fp16, r"manifest says shape \(1, 32, 32, 3\) but the model's tensor is \(1, 64, 64, 3\)"),
        "wrong-layout": (_tensor(fp16, "input", layout="NCHW"), fp16, r"input\.shape: \[1, 64, 64, 3\] is not one NCHW RGB image"),
        "unknown-layout": (_tensor(fp16, "input", layout="HWC"), fp16, r"input\.layout: 'HWC' is not one of NCHW, NHWC"),
        "wrong-dtype": (_tensor(fp16, "input", dtype="uint8"), fp16, r"manifest says dtype uint8 but the model's tensor is float32"),
        "missing-dtype": (_edit(_drop_dtype), fp16, r"input\.dtype: missing"),
        "degenerate-range": (_tensor(fp16, "input", value_range=[0, 0]), fp16, r"input\.value_range: \[0, 0\] is degenerate or reversed"),
        "reversed-range": (_tensor(fp16, "output", value_range=[1e30, -1e30]), fp16, r"output\.value_range: .* is degenerate or reversed"),
        "nan-range": (_nan_range, fp16, r"NaN is not a JSON number"),
        "zero-quant-scale": (_tensor("tflite_int8", "input", dtype="int8", scale=0.0, zero_point=0), "tflite_int8",
                             r"artifact 'tflite_int8': input\.scale: must be a finite number > 0, got 0\.0"),
        "zero-point-out-of-range": (_tensor("tflite_int8", "input", dtype="int8", scale=0.0078, zero_point=300), "tflite_int8",
                                    r"input\.zero_point: must be an integer in \[-128, 127\] for int8, got 300"),
        "newer-version": (_edit(lambda d: d.update(version=99)), fp16, r"version: 99 is newer than this styleforge understands \(1\); upgrade styleforge"),
        "not-json": (_write_manifest_text('{"format": "styleforge-bundle", "version": 1, "artifacts": {'), fp16, r"manifest is not valid JSON"),
        "gigabyte-manifest": (_gigabyte_manifest, fp16, r"manifest is 1024 MiB, over the limit of 8 MiB"),
    }


def lut_cases() -> dict[str, tuple[Callable[[Path], None], str, str]]:
    """name -> (mutation, artifact, expected message) on the LUT bundle."""
    return {
        "cube-wrong-entry-count": (_cube_rows(lambda lines: lines[:-1]), "lut", r"LUT_3D_SIZE 33 needs 35937 rows, found 35936"),
        "cube-nan": (_cube_rows(_cube_nan), "lut", r"look\.cube: 1 entries are NaN or infinite"),
        "cube-huge-size": (_cube_rows(_cube_huge), "lut", r"LUT_3D_SIZE 100000 is outside 2\.\.256"),
        "cube-unsupported-size": (_art("lut_cube", extra={"lut_size": 34}), "lut", r"extra\.lut_size: 34 is not one of 17, 33, 65"),
        "hald-wrong-size": (_hald_wrong_size, "lut", r"file look_hald\.png: is \d+ bytes, the manifest says \d+"),
        "hald-declared-wrong": (_art("lut_hald", extra={"hald_level": 8, "image": [500, 500]}), "lut", r"extra\.image: \[500, 500\] is not a level-8 HALD"),
    }


def _recipe(edit: Callable[[str], str]) -> Callable[[Path], None]:
    """Rewrite recipe.json through ``edit`` (its text) and rehash it: a competent forger."""

    def apply(bundle: Path) -> None:
        path = bundle / "recipe.json"
        path.write_text(edit(path.read_text()))
        rehash(bundle, "recipe")

    return apply


def _steps(fn: Callable[[list[dict[str, Any]]], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        data = json.loads(text)
        fn(data["steps"])
        return json.dumps(data)

    return edit


def _step(op: str, **fields: Any) -> Callable[[list[dict[str, Any]]], None]:
    return lambda steps: next(s for s in steps if s["op"] == op).update(fields)


def _huge_recipe(bundle: Path) -> None:
    with open(bundle / "recipe.json", "r+b") as f:
        f.truncate(1 << 30)  # sparse; the manifest says so too (its hash is left: the size is refused first)
    _art("recipe", size_bytes=1 << 30)(bundle)


def _cube_garbage(bundle: Path) -> None:
    (bundle / "look.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n1 1 1\n")
    rehash(bundle, "lut_cube")


def recipe_cases() -> dict[str, tuple[Callable[[Path], None], str, str]]:
    """name -> (mutation, artifact, expected message) on the look-recipe bundle (recipe.json rehashed)."""
    return {
        "recipe-unknown-op": (_recipe(_steps(lambda s: s.append({"op": "deep_dream", "amount": 1.0}))), "recipe",
                              r"recipe step 5: unknown operator 'deep_dream'"),
        "recipe-nan": (_recipe(lambda t: t.replace('"amount": ', '"amount": NaN, "x": ', 1)), "recipe",
                       r"recipe\.json: NaN is not a JSON number"),
        "recipe-infinite": (_recipe(lambda t: t.replace('"strength": 0.5', '"strength": 1e999', 1)), "recipe",
                            r"recipe step 3 \(bloom\)\.strength must be finite, got inf"),
        "recipe-out-of-range": (_recipe(_steps(_step("clarity", amount=5.0))), "recipe",
                                r"recipe step 1: clarity\.amount = 5 is outside \[-1, 2\]"),
        "recipe-absurd-radius": (_recipe(_steps(_step("bloom", radius=1e9))), "recipe",
                                 r"bloom\.radius = 1e\+09 is outside \[0\.005, 0\.15\]"),
        "recipe-glaring-tint": (_recipe(_steps(_step("bloom", r=50.0))), "recipe",
                                r"recipe step 3: bloom\.r = 50 is outside \[0, 2\]"),
        "recipe-negative-radius": (_recipe(_steps(_step("clarity", radius=-0.02))), "recipe",
                                   r"clarity\.radius = -0\.02 is outside"),
        "recipe-string-parameter": (_recipe(_steps(_step("vignette", amount="-0.4"))), "recipe",
                                    r"vignette\)\.amount must be a number, got str"),
        "recipe-thousands-of-ops": (_recipe(_steps(lambda s: s.extend([s[0]] * 5000))), "recipe",
                                    r"recipe: 5004 steps, more than the 32 a look may have"),
        "recipe-lut-missing": (_recipe(_steps(_step("colour_lut", lut="other.cube"))), "recipe",
                               r"its colour_lut 'other\.cube' is not a \.cube artifact of the bundle"),
        "recipe-lut-not-a-cube": (_recipe(_steps(_step("colour_lut", lut="recipe.json"))), "recipe",
                                  r"its colour_lut 'recipe\.json' is not a \.cube artifact of the bundle"),
        "recipe-lut-outside": (_recipe(_steps(_step("colour_lut", lut="../outside/look.cube"))), "recipe",
                               r"its colour_lut '\.\./outside/look\.cube' is not a \.cube artifact"),
        "recipe-cube-garbage": (_cube_garbage, "recipe", r"look\.cube: LUT_3D_SIZE 2 needs 8 rows, found 2"),
        "recipe-not-json": (_recipe(lambda t: t[: len(t) // 2]), "recipe", r"artifact 'recipe': recipe\.json: "),
        "recipe-not-an-object": (_recipe(lambda t: "[1, 2, 3]"), "recipe", r"a recipe must be an object, got list"),
        "recipe-newer-version": (_recipe(lambda t: t.replace('"version": 1', '"version": 7', 1)), "recipe",
                                 r"recipe version 7 is not supported"),
        "recipe-huge": (_huge_recipe, "recipe", r"recipe\.json.*1024 MiB|size_bytes.*1073741824"),
    }


# a verified model file the interpreter cannot parse: a cell error in bench (an interpreter's own
# limits look the same), a refusal in stylize and open_bundle
BENCH_CELL_ERRORS = ("truncated-rehashed",)


def build_corpus(model_bundle: Path, lut_bundle: Path, root: Path, recipe_bundle: Path | None = None) -> list[Case]:
    """Write every case under ``root`` (plus ``root/outside``) and return them; the recipe cases
    when a look-recipe bundle is given."""
    outside = root / "outside"
    outside.mkdir(parents=True)
    shutil.copy(model_bundle / MODEL_FILE, outside / MODEL_FILE)
    cases = []
    sources = [(model_bundle, "litert", model_cases(outside)), (lut_bundle, "lut", lut_cases())]
    if recipe_bundle is not None:
        shutil.copy(recipe_bundle / "look.cube", outside / "look.cube")  # were the path followed, it would load
        sources.append((recipe_bundle, "lut", recipe_cases()))
    for base, backend, table in sources:
        for name, (mutate, artifact, expect) in table.items():
            path = root / name
            shutil.copytree(base, path, symlinks=True)
            mutate(path)
            cases.append(Case(name, path, artifact, backend, expect, name not in BENCH_CELL_ERRORS))
    return cases
