"""A look recipe edited by hand -> a recipe bundle: ``styleforge export --recipe FILE --bundle SRC``.

The file is what the preview page's "save recipe" downloads (or any ``recipe.json`` written by
hand): ``{"version": 1, "steps": [...]}``. It is untrusted input: strict JSON (a key given twice,
NaN and Infinity refused), at most :data:`MAX_RECIPE_BYTES`, then
:func:`~styleforge.runtime.recipe.parse_recipe` (version, known operators, exactly their
parameters, finite and in range, at most 32 steps), one line naming the step otherwise.

**Where the tables come from.** Each ``colour_lut`` step names a ``.cube`` file; it must be a
``.cube`` artifact of ``SRC``, the bundle the recipe was edited from. It is read as the runtime
reads artifacts (confined to the bundle, size and sha256 checked against SRC's manifest, parsed
as a cube) and copied byte for byte, under its own name, into the new bundle with SRC's entry for
it. Nothing else of SRC is copied; SRC is only read.

**The gate is the runtime's own.** An edited recipe has no PyTorch model to be compared with: the
numpy runtime is the reference. The export therefore checks that (1) the new bundle, written in a
temporary folder, opens with :func:`~styleforge.runtime.open_bundle` exactly as ``stylize`` opens
it (manifest, hashes, the recipe parsed again, every ``colour_lut`` resolved to its ``.cube``);
(2) it runs on the held-out photos, whole, at short sides :data:`GATE_SIDES`, and every output has
its photo's shape and only finite values; nothing is written otherwise. Its reference pairs are the
runtime's own outputs, for ``bench`` on other machines. As information, not a bound, the manifest
records how far the edit moved the look from SRC's (PSNR against SRC's recipe, or its ``.cube``
when it has none, on the same photos).

**The ffmpeg chain** is written and checked as for a trained recipe
(:func:`styleforge.export.ffmpeg_chain.chain_artifact`): ``look.ffmpeg.txt`` for frames of
``ffmpeg_size``, run by ffmpeg on the first held-out photos and compared with the runtime, its
PSNR in the manifest's ``ffmpeg`` artifact. A chain below its bound, or not checked (no ffmpeg),
is recorded as such with one warning line; the bundle ships all the same.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from styleforge.atomic import write_text
from styleforge.errors import StyleforgeError
from styleforge.export import calibration as cal
from styleforge.export import ffmpeg_chain
from styleforge.export.bundle_writer import (
    build_manifest,
    with_file_facts,
    write_references,
    writing_bundle,
)
from styleforge.export.lut_common import lut_tensor_spec
from styleforge.progress import progress as progress_bar
from styleforge.runtime import bundle_files, open_bundle
from styleforge.runtime import lut as rlut
from styleforge.runtime.backends import BackendError
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.manifest import load_manifest, strict_json
from styleforge.runtime.metrics import psnr
from styleforge.runtime.recipe import Recipe, parse_recipe

RECIPE_FILE = "recipe.json"  # the name export_recipe_bundle gives it too
MAX_RECIPE_BYTES = 1 << 20  # a recipe of 32 steps is a few KB
GATE_SIDES = (256, 640)  # short sides the runtime check runs the held-out photos at
GATE_PHOTOS = 4


class RecipeEditError(StyleforgeError, ValueError):
    """The edited recipe cannot become a bundle; nothing was written. The message says why."""


def read_recipe_file(path: str | Path) -> Recipe:
    """The recipe in ``path`` (untrusted: see the module doc); :class:`RecipeEditError` otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECIPE_BYTES + 1)
    except OSError as err:
        raise RecipeEditError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeEditError(f"{path}: over {MAX_RECIPE_BYTES >> 10} KiB; not a look recipe")
    try:
        return parse_recipe(strict_json(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError, RecipeError, BundleError
        raise RecipeEditError(f"{path}: {' '.join(str(err).split())}") from None


def source_cubes(source: Path, manifest: Manifest, recipe: Recipe) -> dict[str, tuple[Artifact, bytes]]:
    """``{file name: (SRC's artifact, its verified bytes)}`` for every ``.cube`` the recipe names."""
    cubes = {a.file: k for k, a in manifest.artifacts.items() if a.format == "cube"}
    found = {}
    for index, step in enumerate(recipe.steps):
        if step.op != "colour_lut" or step.lut in found:
            continue
        if step.lut not in cubes:
            raise RecipeEditError(f"recipe step {index + 1} (colour_lut): {step.lut!r} is not a .cube artifact of "
                                  f"{source} (it has {', '.join(sorted(cubes)) or 'none'})")
        artifact, data = bundle_files.artifact_bytes(source, manifest, cubes[step.lut])
        rlut.parse_cube(data.decode("utf-8", errors="replace"), f"{source}: {artifact.file}")  # LutError: one line
        found[step.lut] = (artifact, data)
    return found


def runtime_check(bundle: Path, source: Path, photos_by_side: dict[int, list[np.ndarray]],
                  reference_inputs: np.ndarray, show_progress: bool = True) -> tuple[dict[str, Any], np.ndarray]:
    """Open ``bundle`` as ``stylize`` does and run it on the photos, whole: RecipeEditError when it
    does not load or an output is not its photo's shape or not finite. Returns the figures for the
    manifest and the runtime's uint8 outputs for ``reference_inputs`` ``[N, H, W, 3]``."""
    try:
        edited = open_bundle(bundle, artifact="recipe")
    except BundleError as err:
        raise RecipeEditError(f"the runtime does not load the new bundle: {err}") from None
    try:
        original = open_bundle(source)  # only for the figure: a model SRC may not run here
    except (BundleError, BackendError, ImportError) as err:
        original, why_not = None, " ".join(str(err).split())
    work = [rgb for photos in photos_by_side.values() for rgb in photos]
    try:
        scores = []
        for rgb in progress_bar(work, desc="[export] runtime check", disable=not show_progress):
            x = rgb.astype(np.float32) / np.float32(255.0)
            ours = edited.recipe.apply(x)
            if ours.shape != x.shape or not np.isfinite(ours).all():
                what = "non-finite values" if ours.shape == x.shape else f"shape {ours.shape}"
                raise RecipeEditError(f"the edited recipe gives {what} on a {rgb.shape[1]}x{rgb.shape[0]} photo; "
                                      "nothing was written")
            if original is not None:
                ours, theirs = (stylizer.stylize_rgb(rgb).astype(np.float32) for stylizer in (edited, original))
                scores.append(psnr(ours, theirs, 255.0))  # both looks as stylize writes them
        outputs = np.stack([edited.stylize_rgb(x) for x in reference_inputs])
    finally:
        edited.close()
        if original is not None:
            original.close()
    fidelity = {
        "compared_with": "runtime",
        "verified": "runtime only: an edited recipe has no PyTorch model; the numpy runtime is the reference",
        "checks": "opened as stylize opens it; ran whole on the held-out photos at each size: shape kept, all finite",
        "images": len(work), "sizes": list(photos_by_side),
    }
    if original is None:
        fidelity["source_look"] = f"not run here ({why_not})"
    else:
        fidelity.update(edit_vs_source_psnr=round(float(np.mean(scores)), 2),
                        edit_vs_source_psnr_min=round(float(np.min(scores)), 2), source_look=original.artifact.key)
    return fidelity, outputs


def export_edited_recipe(
    recipe_file: str | Path,
    source_bundle: str | Path,
    out_dir: str | Path,
    *,
    heldout_images: Optional[Sequence[Path]] = None,
    name: Optional[str] = None,
    style: Optional[str] = None,
    force: bool = False,
    progress: bool = True,
    ffmpeg_size: tuple[int, int] = ffmpeg_chain.FRAME_SIZE,
) -> Manifest:
    """The bundle of ``recipe_file`` with its tables from ``source_bundle``, in ``out_dir`` (built in a
    temporary folder, renamed in; nothing is written when a check fails). ``heldout_images``: the
    photos of the runtime check, the ffmpeg chain's check and the reference pairs (default: the
    album's held-out photos). ``ffmpeg_size`` (width, height): the frame size ``look.ffmpeg.txt``
    is written and checked for."""
    source, out_dir = Path(source_bundle), Path(out_dir)
    if out_dir.resolve() == source.resolve():
        raise RecipeEditError(f"--out {out_dir} is the source bundle; write the edited look to a new folder")
    recipe = read_recipe_file(recipe_file)
    manifest = load_manifest(source)
    cubes = source_cubes(source, manifest, recipe)
    paths = list(heldout_images or cal.split_default_photos()[1])
    photos_by_side = cal.whole_photos(paths, GATE_SIDES, GATE_PHOTOS)
    ops = [step.op for step in recipe.steps]
    with writing_bundle(out_dir, force, RecipeEditError) as tmp:
        for file, (_, data) in cubes.items():
            (tmp / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp / file).write_bytes(data)
        write_text(tmp / RECIPE_FILE, json.dumps(recipe.to_json(), indent=1) + "\n")  # the parsed recipe: only what was checked
        spec_in, spec_out = lut_tensor_spec("rgb"), lut_tensor_spec("styled")
        artifacts = {
            "recipe": Artifact(key="recipe", file=RECIPE_FILE, format="recipe", precision="fp32", input=spec_in,
                               output=spec_out, extra={"steps": ops, "any_size": True, "edited_from": source.name}),
            **{a.key: a for a, _ in cubes.values()},  # SRC's entries; build_manifest recomputes their file facts
        }
        # the bundle as the runtime will see it; the checks' figures and the reference pairs follow
        bundle = build_manifest(
            tmp, name=name or out_dir.name, style=manifest.style if style is None else style, artifacts=artifacts,
            references=[], model={"arch": "recipe", "kind": "recipe", "ops": ops, "stride": 1}, heldout_images=paths,
            provenance={"source": f"recipe:{Path(recipe_file).name}", "source_bundle": manifest.name,
                        "source_bundle_created": manifest.created})
        inputs = cal.heldout_crops(paths, (384, 384))
        fidelity, outputs = runtime_check(tmp, source, photos_by_side, inputs, progress)
        tables = {file: rlut.read_cube(tmp / file).table for file in cubes}  # the copied files, as the chain reads them
        chain = ffmpeg_chain.chain_artifact(tmp, recipe.with_tables(tables), paths[:ffmpeg_chain.CHAIN_PHOTOS],
                                            ffmpeg_size, show_progress=progress)
        bundle = dataclasses.replace(
            bundle, references=write_references(tmp, inputs, outputs),
            artifacts={**bundle.artifacts, "recipe": dataclasses.replace(bundle.artifacts["recipe"], fidelity=fidelity),
                       **({"ffmpeg": with_file_facts(tmp, chain)} if chain is not None else {})})
        bundle.save(tmp)
    if progress:
        print(f"[export] {RECIPE_FILE}: {len(recipe.steps)} steps from {Path(recipe_file).name}, tables from "
              f"{source}; runtime check passed on {fidelity['images']} photos at short sides "
              f"{', '.join(map(str, GATE_SIDES))}; " + (
                  f"the edit is {fidelity['edit_vs_source_psnr']:.2f} dB from {source.name}'s {fidelity['source_look']}"
                  if "edit_vs_source_psnr" in fidelity else f"{source.name}'s look: {fidelity['source_look']}"),
              file=sys.stderr)
        for line in recipe.describe():
            print(f"[export]   {line}", file=sys.stderr)
        if line := ffmpeg_chain.chain_summary(chain):
            print(f"[export] {line}", file=sys.stderr)
    return bundle
