"""``train --paired`` without ``--model``: learn a look recipe from the pairs, and decide from them
whether the look needs local operators at all.

:func:`fit_paired_recipe` reads the pairs (``DIR/A``, ``DIR/B``) and runs
:func:`styleforge.train.recipe_fit.fit_recipe`. When no local operator earns its place on held-out
pairs the look is a colour function: the run trains the colour generator as ``--model colour``
would (its ``.cube`` is exact). Otherwise :func:`save_recipe_run` writes the fitted recipe as the
run's generator (:class:`~styleforge.train.models.recipe.RecipeGenerator`, a normal checkpoint that
``export``, ``distill --teacher`` and ``info`` read), ``recipe.json`` for a person, and the held-out
evaluation like any run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from styleforge.atomic import write_text
from styleforge.photo.photos import load_pairs, load_photos
from styleforge.runtime.imageio import list_images
from styleforge.train.checkpoint import CHECKPOINT_DIR, save_checkpoint
from styleforge.train.data import matching_pairs
from styleforge.train.models.recipe import RecipeGenerator
from styleforge.train.recipe_adversarial import STEPS as ADVERSARIAL_STEPS
from styleforge.train.recipe_adversarial import refine_fit
from styleforge.train.recipe_fit import (
    LUT_SIZE,
    STEPS,
    WORK_SIDE,
    RecipeFit,
    fit_recipe,
    progress_total,
)
from styleforge.train.recipe_unpaired import STEPS as UNPAIRED_STEPS
from styleforge.train.recipe_unpaired import UnpairedFit, bake_table, fit_unpaired_recipe

MAX_PAIRS = 64  # pairs the fit reads (the first by name)
MAX_UNPAIRED = 120  # photos per side the unpaired recipe reads (the first by name)
RECIPE_SUBDIR = "recipe"  # an unpaired run's look recipe, a run of its own inside the colour run


def read_pairs(root: Path, limit: int = MAX_PAIRS) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(before, after)``: float32 ``[H, W, 3]`` in [0, 1] per pair, A read upright at short side
    ``2 * WORK_SIDE`` and B resized to it; pairs that do not decode are skipped."""
    pairs = load_pairs(matching_pairs(root)[:limit], short_side=2 * WORK_SIDE)
    if not pairs:
        raise ValueError("no readable before/after pair to fit")
    return [a.astype(np.float32) / 255.0 for a, _ in pairs], [b.astype(np.float32) / 255.0 for _, b in pairs]


def fit_paired_recipe(root: Path, steps: int = STEPS, seed: int = 0, show_progress: bool = True) -> RecipeFit:
    """The recipe of the pairs under ``root`` (see :func:`styleforge.train.recipe_fit.fit_recipe`)."""
    from tqdm.auto import tqdm

    before, after = read_pairs(root)
    with tqdm(total=progress_total(len(before), steps), desc="paired recipe", unit="step", disable=not show_progress,
              dynamic_ncols=True) as bar:
        return fit_recipe(before, after, steps=steps, seed=seed, progress=bar.update)


def say_choice(fit: RecipeFit) -> None:
    """The fit's log on stderr: what each operator was worth and what the run trains."""
    for line in fit.log:
        print(f"paired: {line.strip()}" if not line.startswith("  ") else f"paired: {line}", file=sys.stderr)


def choice_record(fit: RecipeFit) -> dict[str, Any]:
    """What the run chose and why, for the checkpoint's meta (``run.paired_choice``)."""
    return {
        "generator": "recipe" if fit.local_ops else "colour",
        "colour_fit_db": round(fit.colour_db, 2),
        "recipe_db": round(fit.recipe_db, 2),
        "held_out": fit.held_out,
        "ops": [{"op": r.op, "worth_db": round(r.worth_db, 2), "kept": r.kept} for r in fit.ops],
    }


def save_recipe_run(model: RecipeGenerator, run_dir: Path, meta: dict[str, Any], config_yaml: str) -> dict[str, Any]:
    """Write the fitted recipe ``model`` as the run's checkpoint (step 0: nothing trains after the
    fit) with ``meta``, ``config.yaml`` and ``recipe.json``; returns the run's summary (as
    :func:`styleforge.train.trainer.train` does; its ``recipe`` names the run, as an unpaired run's
    recipe does, so ``train`` prints where the recipe is)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)  # the caller checked --force
    write_text(run_dir / "config.yaml", config_yaml)
    checkpoint = save_checkpoint(run_dir, 0, {"generator": model.state_dict()}, meta)
    recipe = model.recipe()
    write_text(run_dir / "recipe.json", json.dumps(recipe, indent=1) + "\n")
    return {"run": str(run_dir), "step": 0, "world_size": 1, "seconds": None,
            "checkpoint": str(checkpoint), "checkpoints": [checkpoint.name], "recipe": {"run": str(run_dir), **recipe}}


def read_folder(folder: Path, limit: int = MAX_UNPAIRED) -> list[np.ndarray]:
    """Up to ``limit`` photos of ``folder`` (by name) as float32 ``[H, W, 3]`` in [0, 1] at short side
    ``2 * WORK_SIDE``; files that do not decode are skipped."""
    photos = load_photos(list_images(folder)[:limit], limit, short_side=2 * WORK_SIDE)
    return [p.astype(np.float32) / 255.0 for p in photos]


def fit_unpaired_run(content_dir: Path, style_dir: Path, colour_model, seed: int = 0, steps: int = UNPAIRED_STEPS,
                     adversarial_steps: int = ADVERSARIAL_STEPS, show_progress: bool = True) -> UnpairedFit:
    """The unpaired look recipe of two folders around ``colour_model``'s colour part (the colour
    generator the run trained): the statistics start, then the adversarial step when a local
    operator was kept (see :mod:`styleforge.train.recipe_unpaired`, :mod:`~styleforge.train.recipe_adversarial`)."""
    from tqdm.auto import tqdm

    content, style = read_folder(content_dir), read_folder(style_dir)
    with tqdm(total=2 * steps, desc="unpaired recipe", unit="step", disable=not show_progress,
              dynamic_ncols=True) as bar:
        fit = fit_unpaired_recipe(content, style, bake_table(colour_model, LUT_SIZE), steps=steps, seed=seed,
                                  progress=bar.update)
    if fit.local_ops and adversarial_steps > 0:
        with tqdm(total=adversarial_steps, desc="adversarial step", unit="step", disable=not show_progress,
                  dynamic_ncols=True) as bar:
            refine_fit(fit, adversarial_steps, seed=seed, progress=bar.update)
    return fit


def unpaired_choice(fit: UnpairedFit) -> dict[str, Any]:
    """What the unpaired recipe stage chose and why (statistics gaps in mean z^2, see the module)."""
    return {
        "generator": "recipe" if fit.local_ops else "colour",
        "held_out": fit.held_out,
        "statistics_gap": {"colour": round(fit.colour_z2, 3), "every_op": round(fit.recipe_z2, 3),
                           "kept": round(fit.kept_z2, 3)},
        "ops": [{"op": r.op, "worth_z2": round(r.worth_z2, 3), "kept": r.kept} for r in fit.ops],
        "log": fit.log,
    }
