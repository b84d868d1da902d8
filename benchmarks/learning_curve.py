"""Learning curves: how the unpaired look learner scales with photos per side, beside every
classical transfer and the paired ceiling (``styleforge eval-looks --photos DIR --per-side 7,20,60``).

For each look, photos per side ``n`` and split seed, a *cell*:

* **content**: ``n`` photos of a photo folder (the corpus that ships with styleforge by default,
  :mod:`styleforge.photo.corpus`; any folder grouped by ``groups.json`` or EXIF time), whole scene
  groups drawn at random; **style**: the look applied to ``n`` photos of *other* scene groups;
  both folders carry a ``groups.json`` so the learner sees the scene groups;
* **test**: the album's photos with people (:func:`styleforge.photo.album.people_photos`), which are in
  neither folder, against the look's ground truth;
* **methods**, each its own column: identity; each of the seven classical transfers
  (:func:`styleforge.photo.baselines.classical_methods`), fitted on the same two folders; the colour
  generator exactly as ``styleforge train --content --style`` ships it (``cpu`` preset by default);
  its evidence start alone; and the paired closed-form colour fit of the ``n`` content photos with
  their looks (:func:`styleforge.train.paired_fit.fit_colour_generator`: what ``n`` *pairs* would give
  a colour learner); the paired **look recipe** of the same pairs (:func:`styleforge.train.recipe_fit.fit_recipe`:
  colour + local operators); the **unpaired look recipe** of the two folders around the colour
  generator's LUT, as its statistics start and after its adversarial step
  (:mod:`styleforge.train.recipe_unpaired`, :mod:`styleforge.train.recipe_adversarial`: what
  ``train --recipe`` learns); and, marked as such, the **best global colour map** (an oracle fitted
  on the test photos themselves, :func:`styleforge.photo.baselines.colour_oracle`): no colour
  function does better, so it is the bar a look's spatial part must clear. No per-cell "best
  classical" is picked with ground truth.

Cells are resumable (``OUT/LOOK/n-N/split-S/cell.json``); several processes may fill one OUT
folder with different looks, and :func:`write_report` summarises whatever cells exist: mean ± sd
over the split seeds per look, size and method (``curve.json``, ``curve.md``) and a learning-curve
plot per look (``curve.png``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from styleforge.atomic import write_text
from styleforge.benchmarks.scoring import save_comparison_grid, score_methods, torch_method
from styleforge.benchmarks.stages import Stages, single_thread_env
from styleforge.photo import baselines
from styleforge.photo.album import people_photos
from styleforge.photo.corpus import corpus_dir, corpus_grouping, is_corpus_folder
from styleforge.photo.looks import apply_look
from styleforge.photo.photos import load_photos
from styleforge.photo.scenes import Grouping, group_folder
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.runtime.look_ops import apply_recipe
from styleforge.runtime.preview import Output, PhotoPreview, comparison_page
from styleforge.train.checkpoint import load_checkpoint, load_generator
from styleforge.train.models.colour import ColourGenerator
from styleforge.train.paired_fit import fit_colour_generator
from styleforge.train.recipe_adversarial import refine_fit
from styleforge.train.recipe_fit import fit_recipe
from styleforge.train.recipe_unpaired import bake_table, fit_unpaired_recipe

IDENTITY = "identity"
COLOUR = "colour generator (unpaired)"
START = "evidence start (no training)"
PAIRED = "paired fit of the n content photos (ceiling)"
ORACLE = "best global colour map (oracle, fitted on the test photos)"
RECIPE = "paired look recipe of the n content photos"
RECIPE_START = "look recipe, statistics start (unpaired)"
RECIPE_ADV = "look recipe after the adversarial step (unpaired)"
CLASSICAL = baselines.CLASSICAL_NAMES
TEST_SHORT_SIDE = 320  # photos are stored (content, style) and scored (test) at this short side
SAMPLES = "samples.jpg"  # one held-out portrait through every method, beside its ground truth (small enough to commit)
SAMPLE_CELL = 160  # px per method in it


def cell_dir(look: str, n: int, seed: int) -> str:
    """Where a cell lives under the output folder: ``LOOK/n-N/split-S`` (what :func:`write_report` reads)."""
    return f"{look}/n-{n}/split-{seed}"


def photo_grouping(photos_dir: Optional[Path]) -> Grouping:
    """Scene groups of the learning-curve photos: the corpus manifest's, else ``group_folder``'s."""
    folder = Path(photos_dir) if photos_dir is not None else corpus_dir()
    if is_corpus_folder(folder):
        return corpus_grouping(folder)
    return group_folder(list_images(folder), folder)


def draw_sides(grouping: Grouping, n: int, seed: int) -> tuple[list[list[Path]], list[list[Path]]]:
    """``(content groups, style groups)``: at least ``n`` photos a side (the last group drawn may
    overshoot, then is cut to ``n``), whole groups, no group on both sides; photos with people
    are left out (the test photos show people). Raises ``ValueError`` when the folder is too small."""
    groups = [g for g in grouping.groups if not g.people]
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    sides: list[list[list[Path]]] = [[], []]
    side, count = 0, 0
    for group in order:
        if side == 2:
            break
        take = list(group.photos)[: n - count]
        sides[side].append(take)
        count += len(take)
        if count >= n:
            side, count = side + 1, 0
    if side < 2:
        total = sum(len(g.photos) for g in groups)
        raise ValueError(f"{n} photos a side need {2 * n} photos without people in distinct scene groups; "
                         f"the folder has {total}")
    return sides[0], sides[1]


def write_sides(root: Path, look: str, content: list[list[Path]], style: list[list[Path]]) -> None:
    """``root/content`` (photos as they are) and ``root/style`` (the look applied), PNG, each with a
    ``groups.json`` naming its scene groups."""
    from PIL import Image

    for side, groups in (("content", content), ("style", style)):
        folder = root / side
        folder.mkdir(parents=True, exist_ok=True)
        listing: dict[str, list[str]] = {}
        for i, photos in enumerate(groups):
            for path, rgb in zip(photos, load_photos(photos, len(photos), TEST_SHORT_SIDE)):
                if side == "style":
                    rgb = apply_look(look, rgb)
                name = f"{Path(path).stem}.png"
                Image.fromarray(rgb).save(folder / name)
                listing.setdefault(f"g{i:03d}", []).append(name)
        write_text(folder / "groups.json", json.dumps({"groups": listing}, indent=1) + "\n")


def _paired_method(content: Sequence[np.ndarray], look: str):
    """The closed-form colour fit of ``content`` and their looks, as a uint8 HWC method."""

    rng = np.random.default_rng(0)
    before, after, photo = [], [], []
    for i, rgb in enumerate(content):
        px = rgb.reshape(-1, 3)
        pick = rng.choice(len(px), min(len(px), 20_000), replace=False)
        before.append(px[pick])
        after.append(apply_look(look, rgb).reshape(-1, 3)[pick])
        photo.append(np.full(len(pick), i))
    generator = ColourGenerator(curve_knots=32, lut_size=17).eval()
    fit_colour_generator(generator, np.concatenate(before) / 255.0, np.concatenate(after) / 255.0, np.concatenate(photo))
    return torch_method(generator)


def _recipe_method(content: Sequence[np.ndarray], look: str) -> tuple:
    """``(method, facts)``: the look recipe fitted on ``content`` and their looks, as a uint8 HWC
    method (the runtime's numpy kernels), and what it kept and how long it took."""
    start = time.perf_counter()
    fit = fit_recipe([rgb.astype(np.float32) / 255.0 for rgb in content],
                     [apply_look(look, rgb).astype(np.float32) / 255.0 for rgb in content])

    def method(rgb: np.ndarray) -> np.ndarray:
        out = apply_recipe(rgb.astype(np.float32) / 255.0, fit.steps)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)

    facts = {"ops": fit.local_ops, "seconds": round(time.perf_counter() - start, 1),
             "held_out_db": {"colour": round(fit.colour_db, 2), "every_op": round(fit.recipe_db, 2),
                             "kept": round(fit.kept_db, 2)},
             "worth_db": {r.op: round(r.worth_db, 2) for r in fit.ops}}
    return method, facts


def _unpaired_recipe_methods(content: Sequence[np.ndarray], style: Sequence[np.ndarray], colour) -> tuple:
    """``(start method, adversarial method, facts)``: the unpaired look recipe of the two folders
    around the colour generator ``colour``'s LUT, its statistics start and its adversarial step."""
    start = time.perf_counter()
    fit = fit_unpaired_recipe([c.astype(np.float32) / 255.0 for c in content],
                              [s.astype(np.float32) / 255.0 for s in style], bake_table(colour))
    start_steps, fit_seconds = fit.start_steps, time.perf_counter() - start
    refine_fit(fit)

    def method(steps):
        def run(rgb: np.ndarray) -> np.ndarray:
            out = apply_recipe(rgb.astype(np.float32) / 255.0, steps)
            return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        return run

    facts = {"ops": fit.local_ops, "fit_seconds": round(fit_seconds, 1),
             "seconds": round(time.perf_counter() - start, 1), "log": fit.log,
             "z2": {"colour": round(fit.colour_z2, 3), "every_op": round(fit.recipe_z2, 3), "kept": round(fit.kept_z2, 3)},
             "worth_z2": {r.op: round(r.worth_z2, 3) for r in fit.ops}}
    return method(start_steps), method(fit.steps), facts


def run_cell(look: str, n: int, seed: int, root: Path, grouping: Grouping, preset: str = "cpu",
             steps: Optional[int] = None, train_set: Sequence[str] = (), recipes: bool = True) -> dict:
    """Build, train and score one cell; returns (and saves as ``root/cell.json``) its result.
    ``recipes=False`` leaves out the look-recipe columns (the paired recipe fit and the unpaired
    recipe: two thirds of a cell's time at 60 photos a side, and nothing to learn on a tone look)."""

    saved = root / "cell.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    content_groups, style_groups = draw_sides(grouping, n, seed)
    data = root / "data"
    if not (data / "style" / "groups.json").is_file():
        write_sides(data, look, content_groups, style_groups)
    stages = Stages(root)
    run = root / "colour"
    step_args = ["--steps", str(steps)] if steps else []
    overrides = [arg for kv in train_set for arg in ("--set", kv)]
    resume = ["--resume"] if any((run / "checkpoints").glob("step_*")) else []
    stages.run("colour", ["train", "--content", data / "content", "--style", data / "style", "--preset", preset,
                          "--seed", seed, "--allow-degenerate", "--quiet", *step_args, *overrides, "--out", run,
                          *resume], [run / "verdict.json"], env=single_thread_env())
    start = time.perf_counter()
    content = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "content")]
    style = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "style")]
    test_paths = people_photos()
    pairs = [(Path(p).stem, rgb, apply_look(look, rgb))
             for p, rgb in zip(test_paths, load_photos(test_paths, len(test_paths), TEST_SHORT_SIDE))]
    selected, _ = load_generator(run)
    state, _, _ = load_checkpoint(run)
    init = type(selected)(**selected.config)
    init.load_state_dict(state["generator_init"])
    methods = {IDENTITY: lambda x: x, **baselines.classical_methods(style, content),
               START: torch_method(init), COLOUR: torch_method(selected),
               ORACLE: baselines.colour_oracle([p[1] for p in pairs], [p[2] for p in pairs]),
               PAIRED: _paired_method(content, look)}
    recipe_facts = unpaired_facts = None
    if recipes:
        methods[RECIPE], recipe_facts = _recipe_method(content, look)
        methods[RECIPE_START], methods[RECIPE_ADV], unpaired_facts = _unpaired_recipe_methods(content, style, selected)
    scores, outputs = score_methods(methods, pairs)
    page = comparison(pairs, outputs, root / "preview",
                      f"{look}, {n} photos a side, split {seed}: every method on held-out portraits")
    samples = save_comparison_grid({**outputs, "ground truth": [p[2] for p in pairs]}, root / SAMPLES,
                                   cell=SAMPLE_CELL, max_rows=1)
    verdict = json.loads((run / "verdict.json").read_text())
    result = {
        "look": look, "per_side": n, "split_seed": seed,
        "groups": {"content": len(content_groups), "style": len(style_groups)},
        "photos": {"content": len(content), "style": len(style), "test": len(pairs)},
        "scores": {k: round(v["psnr"], 3) for k, v in scores.items()},
        "ssim": {k: round(v["ssim"], 4) for k, v in scores.items()},
        "verdict": {"ok": verdict.get("ok"), "failed": verdict.get("failed")},
        "evidence": verdict.get("evidence"), "init_fit": verdict.get("init_fit"),
        "shrink": verdict.get("shrink"), "anchor_weight": verdict.get("anchor_weight"),
        "train_seconds": stages.timings.get("colour"), "score_seconds": round(time.perf_counter() - start, 1),
        "recipe": recipe_facts,
        "unpaired_recipe": unpaired_facts,
        "preview": str(page.relative_to(root)), "samples": str(samples.relative_to(root)),
    }
    write_text(saved, json.dumps(result, indent=2) + "\n")
    return result


PREVIEW_PHOTOS = 3  # test photos on a cell's comparison page (every method's output of each)


def comparison(pairs, outputs: dict, out_dir: Path, title: str, photos: int = PREVIEW_PHOTOS) -> Path:
    """A :func:`~styleforge.runtime.preview.comparison_page` of ``outputs`` (``{method: [uint8 HWC]}``
    in the order of ``pairs``: ``(name, input, ground truth)``) on the first ``photos`` pairs,
    the ground truth as the reference."""
    previews = []
    for i, (name, source, target) in enumerate(pairs[:photos]):
        photo = PhotoPreview(name, source, (source.shape[1], source.shape[0]))
        photo.outputs = [Output(method, method, images[i], origin="by this benchmark")
                         for method, images in outputs.items()]
        photo.outputs.append(Output("reference", "ground truth", target, is_reference=True))
        previews.append(photo)
    return comparison_page(previews, out_dir, title, f"{title}. Pick a method to see it in the split view; "
                           "PSNR is against the look's ground truth.", "the look's ground truth")


def run_curve(looks: Sequence[str], out: Path, per_side: Sequence[int], split_seeds: Sequence[int],
              photos_dir: Optional[Path] = None, preset: str = "cpu", steps: Optional[int] = None,
              train_set: Sequence[str] = (), recipes: bool = True) -> dict:
    """Every cell of ``looks`` x ``per_side`` x ``split_seeds`` under ``out``, then the report."""
    grouping = photo_grouping(photos_dir)
    for look in looks:
        for n in per_side:
            for seed in split_seeds:
                run_cell(look, n, seed, Path(out) / cell_dir(look, n, seed), grouping, preset, steps, train_set,
                         recipes)
    return write_report(out)


def summarise(cells: Sequence[dict]) -> dict:
    """``{look: {n: {method: {"mean", "sd", "splits"}}}}`` over the split seeds."""
    table: dict = {}
    for cell in cells:
        by_n = table.setdefault(cell["look"], {}).setdefault(str(cell["per_side"]), {})
        for method, psnr in cell["scores"].items():
            by_n.setdefault(method, []).append(psnr)
    for sizes in table.values():
        for methods in sizes.values():
            for method, values in methods.items():
                arr = np.asarray(values, dtype=np.float64)
                methods[method] = {"mean": round(float(arr.mean()), 2),
                                   "sd": round(float(arr.std(ddof=1)), 2) if len(arr) > 1 else 0.0,
                                   "splits": len(arr)}
    return table


def _columns() -> list[str]:
    return [IDENTITY, *CLASSICAL, START, COLOUR, RECIPE_START, RECIPE_ADV, ORACLE, PAIRED, RECIPE]


def to_markdown(summary: dict, cells: Sequence[dict]) -> str:
    cols = _columns()
    lines = ["# Learning curves: PSNR (dB) on held-out portraits, mean ± sd over split seeds", "",
             "Content and style from distinct scene groups of the photo folder, test = the album's photos with "
             "people (in neither folder). Each classical transfer is its own column. The paired colour fit "
             "of the same n photos is what pairs give a colour learner, the paired look recipe what they give "
             "colour + local operators; the best global colour map is an oracle fitted on the test photos "
             "themselves (no colour function does better there beyond its 32³ bins, which cap it near 41–42 dB on a "
             "smooth tone look, where a paired fit can score above it). `margin` = colour generator − the best "
             "classical column's mean (a fixed method, not a per-split pick).", ""]
    for look, sizes in summary.items():
        lines += [f"## {look}", "", "| method | " + " | ".join(f"n={n}" for n in sorted(sizes, key=int)) + " |",
                  "|---|" + "---:|" * len(sizes)]
        for col in cols:
            row = [f"{sizes[n][col]['mean']:.2f} ± {sizes[n][col]['sd']:.2f}" if col in sizes[n] else "–"
                   for n in sorted(sizes, key=int)]
            lines.append(f"| {col} | " + " | ".join(row) + " |")
        margins = []
        for n in sorted(sizes, key=int):
            best = max(CLASSICAL, key=lambda c: sizes[n].get(c, {"mean": -1e9})["mean"])
            colour = sizes[n].get(COLOUR, {"mean": float("nan")})["mean"]
            margins.append(f"{colour - sizes[n][best]['mean']:+.2f} (vs {best})")
        lines += ["| margin | " + " | ".join(margins) + " |", ""]
    first_split = min(c["split_seed"] for c in cells)
    first = sorted((c for c in cells if c["split_seed"] == first_split), key=lambda c: (c["look"], int(c["per_side"])))
    sheets = [f"![{c['look']} n={c['per_side']}]({cell_dir(c['look'], c['per_side'], first_split)}/{c['samples']})"
              for c in first if c.get("samples")]
    if sheets:
        lines += ["## One held-out portrait through every method (first split)", "",
                  *[f"{sheet}  " for sheet in sheets], ""]
    if any(c.get("preview") for c in first):
        lines += ["Every method on three portraits, interactive: `LOOK/n-N/split-S/preview/index.html` in the "
                  "folder the cells were written to (a few MB each, so not kept beside these results).", ""]
    flagged = [c for c in cells if c["verdict"]["ok"] is False]
    lines.append(f"Verdicts: {len(flagged)} of {len(cells)} colour runs flagged degenerate"
                 + (": " + ", ".join(f"{c['look']} n={c['per_side']} split {c['split_seed']} ({', '.join(c['verdict']['failed'])})"
                                     for c in flagged) if flagged else "") + ".")
    freedom = {}
    for c in cells:
        if c.get("evidence"):
            freedom.setdefault(c["per_side"], []).append(c["evidence"]["freedom"])
    if freedom:
        lines.append("Evidence freedom (mean over looks and splits): " + ", ".join(
            f"n={n}: {np.mean(v):.2f}" for n, v in sorted(freedom.items())) + ".")
    seconds = [c["train_seconds"] for c in cells if c.get("train_seconds")]
    if seconds:
        lines.append(f"Training time per run: median {np.median(seconds):.0f} s, max {max(seconds):.0f} s.")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> Path:
    """One panel per look: PSNR against photos per side, one line per method (error bars: sd)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = list(summary)
    fig, axes = plt.subplots(1, len(looks), figsize=(4.6 * len(looks), 4.4), squeeze=False)
    for ax, look in zip(axes[0], looks):
        sizes = sorted(summary[look], key=int)
        for col in _columns():
            if not all(col in summary[look][n] for n in sizes):
                continue
            means = [summary[look][n][col]["mean"] for n in sizes]
            sds = [summary[look][n][col]["sd"] for n in sizes]
            style = {"lw": 2.5, "color": "black"} if col == COLOUR else {"lw": 1, "alpha": 0.8}
            if col == PAIRED:
                style = {"lw": 1, "ls": "--", "color": "grey"}
            elif col == ORACLE:
                style = {"lw": 1, "ls": ":", "color": "firebrick"}
            elif col == RECIPE:
                style = {"lw": 2, "color": "seagreen"}
            ax.errorbar([int(n) for n in sizes], means, yerr=sds, label=col, capsize=2, **style)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([int(n) for n in sizes], [str(n) for n in sizes])
        ax.set_title(look)
        ax.set_xlabel("photos per side")
        ax.set_ylabel("PSNR on held-out portraits (dB)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: Path) -> dict:
    """Summarise every ``cell.json`` under ``out`` into ``curve.json``, ``curve.md`` and ``curve.png``."""
    out = Path(out)
    cells = [json.loads(p.read_text()) for p in sorted(out.glob("*/n-*/split-*/cell.json"))]
    if not cells:
        raise ValueError(f"no learning-curve cells under {out}")
    summary = summarise(cells)
    report = {"summary": summary, "cells": cells}
    write_text(out / "curve.json", json.dumps(report, indent=2) + "\n")
    write_text(out / "curve.md", to_markdown(summary, cells))
    plot(summary, out / "curve.png")
    return report
