"""A look recipe's bundle: ``recipe.json`` (the ordered operators) + ``look.cube`` (its colour part),
gated against the PyTorch recipe at several sizes.

The runtime runs the bundle without torch (:mod:`styleforge.runtime.lut_stylizer`), reading the
recipe and its ``.cube`` back from the files (hashed in the manifest like every artifact). The
gate does exactly that on the held-out photos, whole, at two sizes (a recipe is resolution
independent, so it is checked at more than one), and compares with
:class:`~styleforge.train.models.recipe.RecipeGenerator` in float32: nothing ships below
:data:`RECIPE_BOUND_DB`. ``look.cube`` alone is the colour part only (for Resolve, ffmpeg, OBS);
the manifest says so. With ``graphs`` the recipe also ships as ONNX/TFLite/Core ML graphs at one
size (:mod:`styleforge.export.recipe_graph`), gated against PyTorch like every model artifact (Core
ML only where it predicts, macOS; elsewhere marked not verified).
``look.ffmpeg.txt`` is the recipe as an ffmpeg filtergraph for a stated frame size
(:mod:`styleforge.export.ffmpeg_chain`), run by ffmpeg on the held-out photos and compared with the
runtime; a chain below its bound is recorded as such (and warned about) but stops nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from styleforge.atomic import write_text
from styleforge.export import calibration as cal
from styleforge.export import ffmpeg_chain, ops_report
from styleforge.export.bundle_writer import build_manifest, write_references, writing_bundle
from styleforge.export.lut_common import LutExportError, lut_tensor_spec
from styleforge.export.recipe_graph import GraphOptions, write_recipe_graphs
from styleforge.runtime import lut as rlut
from styleforge.runtime.contract import Artifact, Manifest
from styleforge.runtime.metrics import psnr
from styleforge.runtime.recipe import parse_recipe
from styleforge.train.models.recipe import RecipeGenerator

RECIPE_FILE = "recipe.json"
CUBE_FILE = "look.cube"
RECIPE_BOUND_DB = 60.0  # runtime (numpy, from the files) vs torch, float32 both: the same arithmetic
GATE_SIDES = (256, 640)  # short sides the gate runs the held-out photos at
GATE_PHOTOS = 4


def _torch_output(model: RecipeGenerator, rgb_u8: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(rgb_u8.astype(np.float32) / 255.0).permute(2, 0, 1)[None] * 2.0 - 1.0
    with torch.no_grad():
        y = (model(x)[0].permute(1, 2, 0).numpy() + 1.0) * 0.5
    return y


def recipe_fidelity(recipe_path: Path, cube_path: Path, model: RecipeGenerator,
                    photos_by_side: dict[int, list[np.ndarray]], bound_db: float) -> dict[str, Any]:
    """The runtime's recipe, read back from the bundle's files, against the torch recipe on uint8
    photos at each size: PSNR of float pixels scaled to 8 bits (not rounded). ``psnr`` is the
    lowest per-size mean, ``psnr_min`` the worst photo, ``verified`` whether that clears ``bound_db``."""
    recipe = parse_recipe(json.loads(recipe_path.read_text(encoding="utf-8")))
    recipe = recipe.with_tables({CUBE_FILE: rlut.read_cube(cube_path).table})
    means, values, max_abs = [], [], 0.0
    for photos in photos_by_side.values():
        side = []
        for rgb in photos:
            ours = recipe.apply(rgb.astype(np.float32) / 255.0)
            ref = np.clip(_torch_output(model, rgb), 0.0, 1.0)
            side.append(psnr(ours * 255.0, ref * 255.0))
            max_abs = max(max_abs, float(np.abs(ours - ref).max()) * 255.0)
        means.append(round(float(np.mean(side)), 2))
        values += side
    worst = round(float(np.min(values)), 2)
    return {"psnr": min(means), "psnr_min": worst, "max_abs": round(max_abs, 4), "images": len(values),
            "sizes": list(photos_by_side), "compared_with": "pytorch_fp32", "bound_psnr": bound_db,
            "verified": bool(worst >= bound_db)}


def export_recipe_bundle(
    model: RecipeGenerator,
    out_dir: str | Path,
    *,
    heldout_images: Optional[Sequence[Path]] = None,
    style: str = "",
    name: Optional[str] = None,
    provenance: Optional[dict[str, Any]] = None,
    bound_db: float = RECIPE_BOUND_DB,
    force: bool = False,
    progress: bool = True,
    graphs: Optional[GraphOptions] = None,
    ffmpeg_size: tuple[int, int] = ffmpeg_chain.FRAME_SIZE,
) -> Manifest:
    """The bundle of a look recipe in ``out_dir`` (built in a temp folder, renamed in; nothing is
    written when the gate fails). ``graphs``: also its ONNX/TFLite/Core ML graphs at ``graphs.size``
    (``onnx``, ``tflite_fp32`` ..., ``coreml_fp32`` ...); the reference pairs are then at that size.
    ``ffmpeg_size`` (width, height): the frame size ``look.ffmpeg.txt`` is written and checked for."""
    table = model.lut_table()
    if table is None:
        raise LutExportError("this recipe has no colour_lut step; styleforge's recipes always start from one")
    if table.shape[0] not in rlut.CUBE_SIZES:
        raise LutExportError(f"the recipe's LUT is {table.shape[0]}^3; bundles hold {rlut.CUBE_SIZES}")
    out_dir = Path(out_dir)
    paths = list(heldout_images or cal.split_default_photos()[1])
    with writing_bundle(out_dir, force, LutExportError) as tmp:
        rlut.write_cube(rlut.Lut3D(table, style or out_dir.name), tmp / CUBE_FILE,
                        comments=("the colour part of a look recipe: recipe.json holds the whole look",))
        recipe = model.recipe(CUBE_FILE)
        write_text(tmp / RECIPE_FILE, json.dumps(recipe, indent=1) + "\n")
        photos_by_side = cal.whole_photos(paths, GATE_SIDES, GATE_PHOTOS)
        fidelity = recipe_fidelity(tmp / RECIPE_FILE, tmp / CUBE_FILE, model, photos_by_side, bound_db)
        if not fidelity["verified"]:
            raise LutExportError(f"recipe gate failed: the runtime's recipe is {fidelity['psnr_min']:.2f} dB from "
                                 f"PyTorch's (bound {bound_db:g}); nothing was written")
        runtime_recipe = parse_recipe(recipe).with_tables({CUBE_FILE: rlut.read_cube(tmp / CUBE_FILE).table})
        chain = ffmpeg_chain.chain_artifact(tmp, runtime_recipe, paths[:ffmpeg_chain.CHAIN_PHOTOS], ffmpeg_size,
                                            show_progress=progress)
        spec_in, spec_out = lut_tensor_spec("rgb"), lut_tensor_spec("styled")
        artifacts = {
            "recipe": Artifact(key="recipe", file=RECIPE_FILE, format="recipe", precision="fp32", input=spec_in,
                               output=spec_out, fidelity=fidelity,
                               extra={"steps": [s["op"] for s in recipe["steps"]], "any_size": True}),
            "lut_cube": Artifact(key="lut_cube", file=CUBE_FILE, format="cube", precision="fp32", input=spec_in,
                                 output=spec_out, extra={"lut_size": int(table.shape[0]), "part": "colour"},
                                 fidelity={"verified": "the colour part of the recipe alone, not the whole look"}),
            **({"ffmpeg": chain} if chain is not None else {}),
        }
        if graphs is not None:
            artifacts.update(write_recipe_graphs(tmp, model, paths, graphs, show=progress))
        inputs = cal.heldout_crops(paths, tuple(graphs.size) if graphs is not None else (384, 384))
        outputs = np.stack([np.clip(np.rint(np.clip(_torch_output(model, x), 0, 1) * 255.0), 0, 255).astype(np.uint8)
                            for x in inputs])
        manifest = build_manifest(
            tmp, name=name or out_dir.name, style=style, artifacts=artifacts,
            references=write_references(tmp, inputs, outputs),
            model={"arch": "recipe", "kind": "recipe", "ops": list(model.config["ops"]), "stride": 1},
            heldout_images=paths, provenance=provenance,
        )
    if progress:
        print(f"[export] recipe.json: {len(recipe['steps'])} steps, runtime vs PyTorch {fidelity['psnr_min']:.2f} dB "
              f"at short sides {', '.join(map(str, GATE_SIDES))} (bound {bound_db:g})", file=sys.stderr)
        for line in parse_recipe(recipe).describe():
            print(f"[export]   {line}", file=sys.stderr)
        if line := ffmpeg_chain.chain_summary(chain):
            print(f"[export] {line}", file=sys.stderr)
        if graphs is not None:
            print(ops_report.format_table({k: a for k, a in manifest.artifacts.items()
                                           if a.format in ("onnx", "tflite", "coreml")}), file=sys.stderr)
    return manifest
