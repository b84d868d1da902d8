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
from styleforge.photo.photos import load_pairs
from styleforge.train.checkpoint import CHECKPOINT_DIR, save_checkpoint
from styleforge.train.data import matching_pairs
from styleforge.train.models.recipe import RecipeGenerator
from styleforge.train.recipe_fit import STEPS, WORK_SIDE, RecipeFit, fit_recipe

MAX_PAIRS = 64  # pairs the fit reads (the first by name)


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
    with tqdm(total=steps + max(1, steps // 2), desc="paired recipe", unit="step", disable=not show_progress,
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
    :func:`styleforge.train.trainer.train` does)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)  # the caller checked --force
    write_text(run_dir / "config.yaml", config_yaml)
    checkpoint = save_checkpoint(run_dir, 0, {"generator": model.state_dict()}, meta)
    recipe = model.recipe()
    write_text(run_dir / "recipe.json", json.dumps(recipe, indent=1) + "\n")
    return {"run": str(run_dir), "step": 0, "world_size": 1, "seconds": None,
            "checkpoint": str(checkpoint), "checkpoints": [checkpoint.name], "recipe": recipe}
