"""Learning a look recipe from before/after pairs: the colour part in closed form, then every
operator's parameters by gradient descent, keeping only the operators that help on held-out pairs.

A recipe (:mod:`styleforge.runtime.recipe`) is a fixed order of photographic operators, the order
a photographer's panels apply them in (:data:`ORDER`): detail first (edge-aware smoothing,
clarity, sharpening, on the photo as shot), then the colour LUT, then light effects on the graded
photo (bloom, fade, vignette). Grain is not fitted from pairs (noise cannot be matched pixel for
pixel); it stays out of a paired recipe.

:func:`fit_recipe`:

1. **Colour**, closed form: the least-squares colour matrix and a smooth LUT residual of the
   pairs' pixels (:func:`styleforge.train.paired_fit.fit_colour`, its smoothness cross-validated
   over the pairs): the paired colour fit, and the start of the LUT step.
2. **Everything**, gradient descent (Adam, MSE on the whole photos - every pair each step, or a
   random :data:`BATCH_PAIRS` of them when there are more - at a working short side of
   :data:`WORK_SIDE` px; every length in the recipe is a fraction of the short side, so what is
   learned at 256 px runs at 24 MP) on the *fitting* pairs, from the identity for every local op.
   Steps 1 and 2 run once per *fold* (:func:`selection_folds`): up to :data:`SELECTION_FOLDS`
   blocks of :data:`MIN_HOLDOUT_PAIRS` pairs from the end, each held out once.
3. **Selection**: each local op in turn is set back to its identity and the held-out pairs say
   what it was worth (dB, the mean over the folds); ops worth less than :data:`KEEP_DB` are
   dropped. With fewer than
   :data:`MIN_HOLDOUT_PAIRS` + 1 pairs there is no held-out pair and the in-sample figure must
   clear :data:`KEEP_DB_IN_SAMPLE` instead. The kept *spatial* ops together must then add
   :data:`MIN_GAIN_DB` both to the colour they were fitted with (the LUT and any kept
   :data:`COLOUR_OPS`, every spatial op at its identity) and to step 1's closed-form colour fit,
   on the same pairs, or the look is a colour function: a tone look stays what the colour learner
   ships. (Fade is a function of the pixel's colour: on a tone look it took over part of the
   colour from the LUT fitted beside it and looked worth 3.7-4.3 dB, so 7 pairs of teal-orange
   and of random-tone-2 shipped a recipe, LUT + fade, instead of a ``.cube``. On held-out
   portraits that recipe and the colour generator shipped now score alike: 39.8 and 39.3 dB on
   teal-orange.)
4. **Refit** of the kept ops on every pair, from where step 2 left them in each fold; the refit
   with the least squared error on the pairs is the recipe. (From one start, the same 7 pairs in
   another order moved dreamy-bloom's held-out score by 4.5 dB: the refit stays near its start.)
   When no local op is kept the look is a colour function and the recipe is step 1's colour fit
   alone (a ``.cube``).

Images are float32 ``[H, W, 3]`` sRGB in [0, 1] (numpy) or ``[1, 3, H, W]`` (torch) here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from styleforge.runtime.look_ops import PARAMS, STRENGTH
from styleforge.runtime.lut import trilinear
from styleforge.train.paired_fit import fit_colour

ORDER = ("smooth_skin", "clarity", "sharpen", "colour_lut", "bloom", "fade", "vignette")
WORK_SIDE = 160  # short side (px) the pairs are fitted at
LUT_SIZE = 17  # the fitted LUT's lattice (the runtime exports it at the bundle's cube size)
STEPS = 150
LR = 0.08  # Adam on the ops' unconstrained parameters
BATCH_PAIRS = 8  # pairs per step: every pair when there are this many or fewer, else a random 8
LUT_LR = 0.002  # Adam on the LUT table
LUT_TV = 1e-3  # smoothness of the LUT's change from its closed-form start
KEEP_DB = 0.10  # a local op stays when removing it costs this much on held-out pairs
KEEP_DB_IN_SAMPLE = 0.5  # ... or, without held-out pairs, in sample
MIN_GAIN_DB = 1.0  # the kept spatial ops must add this much to their colour and to the closed-form colour fit
COLOUR_OPS = ("colour_lut", "fade")  # operators that are functions of the pixel's colour alone
MIN_HOLDOUT_PAIRS = 2  # pairs set aside for the selection when there are more than this many
SELECTION_FOLDS = 3  # held-out blocks the selection averages over (each fold its own fit)
FIT_PIXELS = 400_000  # pixels of the pairs the closed-form colour fit uses


@dataclass
class OpReport:
    """What one local operator was worth: held-out (or in-sample) dB lost without it."""

    op: str
    params: dict[str, float]
    worth_db: float
    kept: bool


@dataclass
class RecipeFit:
    """The result of :func:`fit_recipe`: the runtime recipe's steps (``(op, params)`` with the LUT
    table under ``params["table"]``), what each op was worth and the figures behind the choice."""

    steps: list[tuple[str, dict]]
    ops: list[OpReport] = field(default_factory=list)
    colour_db: float = float("nan")  # the closed-form colour fit, on the selection pairs
    colour_smoothness: float = float("nan")  # its lattice prior's lambda (cross-validated over the pairs)
    recipe_db: float = float("nan")  # every candidate op, on the selection pairs
    kept_db: float = float("nan")  # the kept ops (the others at identity), on the selection pairs
    lut_db: float = float("nan")  # the colour fitted with the ops (LUT + kept COLOUR_OPS), spatial ops at identity
    held_out: bool = False  # whether the figures are on held-out pairs (else in sample)
    pairs: int = 0  # how many pairs were fitted
    log: list[str] = field(default_factory=list)

    @property
    def local_ops(self) -> list[str]:
        return [op for op, _ in self.steps if op != "colour_lut"]


def resize_short(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` float32 ``[H, W, 3]`` resized (Pillow, per channel, area-like) to short side ``side``."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    if scale >= 1.0:
        return np.ascontiguousarray(rgb, dtype=np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    chans = [np.asarray(Image.fromarray(rgb[..., c].astype(np.float32), mode="F").resize(size, Image.Resampling.BOX))
             for c in range(3)]
    return np.stack(chans, axis=-1).astype(np.float32)


def colour_table(before: Sequence[np.ndarray], after: Sequence[np.ndarray], size: int = LUT_SIZE) -> tuple[np.ndarray, float]:
    """``(table, smoothness)``: the closed-form colour fit of the pairs (:func:`fit_colour` of up to
    :data:`FIT_PIXELS` of their pixels, cross-validated over the pairs) baked into a LUT table
    float32 ``[S, S, S, 3]`` indexed ``[r, g, b]``, and the lattice prior's lambda."""
    rng = np.random.default_rng(0)
    src = np.concatenate([b.reshape(-1, 3) for b in before]).astype(np.float64)
    dst = np.concatenate([a.reshape(-1, 3) for a in after]).astype(np.float64)
    photo = np.concatenate([np.full(b.shape[0] * b.shape[1], i) for i, b in enumerate(before)])
    if len(src) > FIT_PIXELS:
        pick = rng.choice(len(src), FIT_PIXELS, replace=False)
        src, dst, photo = src[pick], dst[pick], photo[pick]
    fit = fit_colour(src, dst, size, photo)
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    nodes = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    node_mapped = (nodes @ fit.matrix.T.astype(np.float32) + fit.bias.astype(np.float32)).astype(np.float32)
    table = node_mapped + trilinear(fit.residual, np.clip(node_mapped, 0.0, 1.0))
    return np.clip(table, 0.0, 1.0).reshape(size, size, size, 3).astype(np.float32), fit.smoothness  # what a .cube holds


def _psnr(pred, target) -> float:
    """Mean over photos of the 8-bit PSNR (dB) of torch ``[1, 3, H, W]`` pairs in [0, 1]."""
    values = []
    for p, t in zip(pred, target):
        mse = float(((p.clamp(0, 1) * 255).round() - (t * 255).round()).pow(2).mean())
        values.append(10 * math.log10(255.0 ** 2 / max(mse, 1e-10)))
    return float(np.mean(values))


def _train(stack, inputs, targets, steps: int, start_table, progress: Optional[Callable[[int], None]] = None) -> None:
    import torch

    lut_params = [op.table for op in stack.ops if op.table is not None]
    other = [p for n, p in stack.named_parameters() if not n.endswith(".table")]
    groups = [{"params": other, "lr": LR}]
    if lut_params:
        groups.append({"params": lut_params, "lr": LUT_LR})
    optim = torch.optim.Adam(groups)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        optim.zero_grad()
        pick = rng.choice(len(inputs), BATCH_PAIRS, replace=False) if len(inputs) > BATCH_PAIRS else range(len(inputs))
        loss = sum(torch.mean((stack(inputs[i]) - targets[i]) ** 2) for i in pick) / len(pick)
        if lut_params and start_table is not None:
            delta = lut_params[0] - start_table
            loss = loss + LUT_TV * sum(torch.mean((delta.diff(dim=d)) ** 2) for d in range(3))
        loss.backward()
        optim.step()
        if progress is not None:
            progress(1)


def _without(stack, index: int):
    """A copy of ``stack`` whose op ``index`` is set to its identity (strength at its default)."""
    clone = copy.deepcopy(stack)
    op = clone.ops[index]
    key = STRENGTH[op.name]
    op.set_params(**{key: PARAMS[op.name][key][2]})
    return clone


def with_identity(stack, keep: Sequence[str]):
    """A copy of ``stack`` with every op not named in ``keep`` set to its identity."""
    out = stack
    for i, op in enumerate(stack.ops):
        if op.name not in keep:
            out = _without(out, i)
    return out if out is not stack else copy.deepcopy(stack)


def _score(model, sel_pairs) -> float:
    return _psnr([model(x) for x, _ in sel_pairs], [y for _, y in sel_pairs])


def _select(folds, keep_db: float, result: RecipeFit) -> list[str]:
    """Step 3: the ops worth ``keep_db`` on average over ``folds`` (``[(fitted stack, its selection
    pairs)]``; the colour LUT always), with each op's report and the fold-mean figures in ``result``."""
    mean = lambda values: float(np.mean(values))  # noqa: E731
    result.recipe_db = mean([_score(stack, sel) for stack, sel in folds])
    kept = []
    for i, op in enumerate(folds[0][0].ops):
        if op.name != "colour_lut":
            worth = result.recipe_db - mean([_score(_without(stack, i), sel) for stack, sel in folds])
            report = OpReport(op.name, op.params(), worth, worth >= keep_db)
            result.ops.append(report)
            if not report.kept:
                continue
        kept.append(op.name)
    result.kept_db = mean([_score(with_identity(stack, kept), sel) for stack, sel in folds])
    result.lut_db = mean([_score(with_identity(stack, [name for name in kept if name in COLOUR_OPS]), sel)
                          for stack, sel in folds])
    where = "held-out" if result.held_out else "in-sample"
    result.log.append(f"recipe: closed-form colour fit {result.colour_db:.2f} dB (lattice smoothness "
                      f"{result.colour_smoothness:.0e}), every op {result.recipe_db:.2f} dB, "
                      f"the kept ops {result.kept_db:.2f} dB, their colour alone {result.lut_db:.2f} dB "
                      f"({where}, {len(folds[0][1])} pair(s) x {len(folds)} fold(s))")
    for report in result.ops:
        result.log.append(f"  {report.op:<12} worth {report.worth_db:+.2f} dB -> {'kept' if report.kept else 'dropped'}")
    baseline = max(result.lut_db, result.colour_db)
    if kept != ["colour_lut"] and "colour_lut" in kept and result.kept_db < baseline + MIN_GAIN_DB:
        than = "their colour" if result.lut_db >= result.colour_db else "the closed-form colour fit"
        result.log.append(f"recipe: the spatial ops add {result.kept_db - baseline:+.2f} dB to {than} "
                          f"(< {MIN_GAIN_DB} dB): dropped")
        for report in result.ops:
            report.kept = False
        return ["colour_lut"]
    return kept


def held_out_per_fold(pairs: int) -> int:
    """Pairs each fold of :func:`fit_recipe` holds out of ``pairs``: 0 (in sample) for too few."""
    return MIN_HOLDOUT_PAIRS if pairs > MIN_HOLDOUT_PAIRS + 1 else 0


def selection_folds(pairs: int) -> int:
    """How many folds :func:`fit_recipe` fits for ``pairs`` pairs (1 without held-out pairs)."""
    n_hold = held_out_per_fold(pairs)
    return max(1, min(SELECTION_FOLDS, pairs // n_hold)) if n_hold else 1


def progress_total(pairs: int, steps: int = STEPS) -> int:
    """The steps :func:`fit_recipe` reports through ``progress`` for ``pairs`` pairs."""
    folds = selection_folds(pairs)
    return folds * steps + folds * max(1, steps // 2)


def fit_recipe(before: Sequence[np.ndarray], after: Sequence[np.ndarray], steps: int = STEPS,
               candidates: Sequence[str] = ORDER, seed: int = 0,
               progress: Optional[Callable[[int], None]] = None) -> RecipeFit:
    """Learn a recipe from pairs ``before[i] -> after[i]`` (float32 ``[H, W, 3]`` in [0, 1], the
    same size within a pair, any size across pairs). See the module doc for the four steps;
    ``progress(n)`` is called as steps are done (:func:`progress_total` in all)."""
    import torch

    from styleforge.train.models.recipe_ops import RecipeStack

    if len(before) != len(after) or not before:
        raise ValueError("fit_recipe needs at least one before/after pair")
    torch.manual_seed(seed)
    to_t = lambda rgb: torch.from_numpy(np.ascontiguousarray(resize_short(rgb, WORK_SIDE).transpose(2, 0, 1)))[None]  # noqa: E731
    pairs = [(to_t(b), to_t(a)) for b, a in zip(before, after)]
    n = len(pairs)
    n_hold = held_out_per_fold(n)
    result = RecipeFit(steps=[], held_out=bool(n_hold), pairs=n)
    # each fold's selection pairs: the next block of n_hold from the end (none: in sample)
    blocks = [set(range(n - n_hold * (f + 1), n - n_hold * f)) for f in range(selection_folds(n))] if n_hold else [set()]

    def table_of(items) -> torch.Tensor:
        table, result.colour_smoothness = colour_table([x[0].permute(1, 2, 0).numpy() for x, _ in items],
                                                       [y[0].permute(1, 2, 0).numpy() for _, y in items])
        return torch.from_numpy(table)

    ops = [name for name in ORDER if name in candidates and name != "colour_lut"]
    ops.insert(sum(ORDER.index(o) < ORDER.index("colour_lut") for o in ops), "colour_lut")
    folds, colour_dbs, lut_changes = [], [], []
    for block in blocks:
        fit_pairs = [p for i, p in enumerate(pairs) if i not in block]
        sel_pairs = [p for i, p in enumerate(pairs) if i in block] or pairs
        # 1. colour in closed form, on the fitting pairs
        stack = RecipeStack(ops, seed=seed, lut_size=LUT_SIZE)
        lut = stack.ops[ops.index("colour_lut")]
        start = table_of(fit_pairs)
        with torch.no_grad():
            lut.table.copy_(start)
            colour_dbs.append(_score(with_identity(stack, ["colour_lut"]), sel_pairs))
        # 2. every op by gradient descent on the fitting pairs
        _train(stack, [x for x, _ in fit_pairs], [y for _, y in fit_pairs], steps, start, progress)
        folds.append((stack, sel_pairs))
        lut_changes.append(lut.table.detach() - start)
    result.colour_db = float(np.mean(colour_dbs))
    # 3. what each op is worth on the selection pairs, averaged over the folds
    with torch.no_grad():
        kept = _select(folds, KEEP_DB if n_hold else KEEP_DB_IN_SAMPLE, result)
    # 4. refit the kept ops on every pair from each fold's fit, the least squared error shipped (or
    # the colour fit alone)
    full_start = table_of(pairs)
    if kept == ["colour_lut"]:
        result.steps = [("colour_lut", {"table": full_start.numpy()})]
        result.log.append("recipe: no local operator earns its place: the look is a colour function (a .cube)")
        return result
    best = None
    for (stack_f, _), start_change in zip(folds, lut_changes):
        final = RecipeStack(kept, seed=seed, lut_size=LUT_SIZE)
        by_name = {op.name: op for op in stack_f.ops}
        with torch.no_grad():
            for op in final.ops:
                op.load_state_dict(by_name[op.name].state_dict())
            final.ops[kept.index("colour_lut")].table.copy_(full_start + start_change)
        _train(final, [x for x, _ in pairs], [y for _, y in pairs], max(1, steps // 2), full_start, progress)
        with torch.no_grad():
            loss = float(sum(torch.mean((final(x) - y) ** 2) for x, y in pairs))
        if best is None or loss < best[0]:
            best = (loss, final)
    final = best[1]
    result.steps = final.recipe()
    result.log.append("recipe: " + " -> ".join(kept))
    return result
