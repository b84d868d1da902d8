"""Learning a look recipe from unpaired folders: the colour part from the colour learner, then every
local operator from statistics that need no ground truth, then (optionally) an adversarial step.

Nothing here sees a before/after pair. The content folder holds photos as they are, the style
folder other photos in the look; both are drawn from the same kind of scenes, so a statistic of
the style photos that the content photos lack is evidence of the look. The statistics
(:func:`look_statistics`, per photo, differentiable, every length a fraction of the short side):

- **band energies by tone**: the RMS of three luma detail bands (between Gaussian blurs at
  :data:`BAND_SIGMAS` of the short side) within five soft luma bins of the coarser base - what
  clarity, smoothing and sharpening change;
- **edge falloff**: log luma minus its row's (column's) mean by horizontal (vertical) distance from
  the centre - what a vignette changes, with a bright sky at the top of a scene mostly cancelled;
- **halo**: mean luma of non-highlight pixels in bins of their nearness to highlights (a blurred
  highlight mask), minus their mean - what bloom changes;
- **tone and colour**: quantiles of R, G, B and luma - so a local op does not buy its statistics
  by wrecking the colour the colour learner matched (and fade has something to match).

:func:`fit_unpaired_recipe` moves every operator's parameters (the colour LUT held at the colour
learner's table) by Adam so the content photos' mean statistics, after the recipe, meet the style
photos' mean, each statistic measured in units of its spread across the style photos (a noisy
statistic weighs less). Which operators the look needs is decided from the data: the photos are
cut in two halves (content and style alike), the recipe is fitted on one half, and an operator is
kept only when it closes :data:`KEEP_SHARE` of the *other* half's gap (setting it back to its
identity costs that share of the colour part's distance); the kept operators together must close
:data:`MIN_GAIN_SHARE` of it, or
the look is a colour function and the colour learner's LUT ships alone (a tone look stays a LUT).
The kept operators are then refitted on every photo.

Images are float32 ``[H, W, 3]`` sRGB in [0, 1] (numpy) or ``[1, 3, H, W]`` (torch) here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from styleforge.train.recipe_fit import ORDER, resize_short, with_identity

BAND_SIGMAS = (0.006, 0.015, 0.04, 0.1)  # blurs (fractions of the short side) between the detail bands
LUMA_BINS = (0.1, 0.3, 0.5, 0.7, 0.9)  # centres of the soft tone bins (triangles of half-width 0.2)
EDGE_BINS = (0.0, 0.4, 0.7, 0.9, 1.01)  # bins of distance from the centre line (0) to the frame's edge (1)
HALO_SIGMA = 0.03  # blur of the highlight mask (fraction of the short side)
HALO_BINS = (0.0, 0.01, 0.05, 0.15, 1.01)  # edges of the nearness-to-highlights bins
QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
QUANTILE_STRIDE = 3  # quantiles are read off every 3rd pixel in each direction
STAT_SIDE = 160  # short side (px) the statistics are measured at (the finest band is ~1 px there)
STEPS = 80  # Adam steps on half of the photos (the selection), and again on all of them (the refit)
LR = 0.06
BATCH = 6  # content photos per step
PRIOR = 0.1  # pull of every parameter toward its identity/default, divided by the photos per side
# Not learned unpaired. Bloom's tint: the colour of two folders of different scenes differs by
# composition as much as by the look, and the colour generator already matches it (as for fade).
FIXED = {"vignette": ("roundness", "center_x", "center_y"), "smooth_skin": ("edge",), "bloom": ("r", "g", "b")}
# Operators learned from two folders: detail and glow. A vignette and faded blacks are left out:
# the edge falloff and the tone of two folders of different scenes differ by composition and
# exposure as much as by any look (on glow, 60 photos a side, they were "found" on one scene split
# and cost 6.5 dB), and the colour generator already matches tone.
UNPAIRED_OPS = ("smooth_skin", "clarity", "sharpen", "colour_lut", "bloom")
GROUPS = ("bands", "radial", "halo", "tone")  # each group of statistics weighs the same
MIN_SPREAD = 0.01  # floor of a statistic's spread across the style photos (its unit)
KEEP_SHARE = 0.1  # an op stays when it closes this share of the held-out half's gap (colour alone)
MIN_GAIN_SHARE = 0.2  # the kept ops together must close at least this share
MIN_PHOTOS_TO_SPLIT = 6  # per side; below, the decision is made in sample


def bake_table(model, size: int = 17) -> np.ndarray:
    """The colour part of a :class:`~styleforge.train.models.protocols.ColourModel` on a lattice:
    float32 ``[size, size, size, 3]`` indexed ``[r, g, b]`` in [0, 1] (what a ``.cube`` holds)."""
    import torch

    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    nodes = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    with torch.no_grad():
        out = model.colour(torch.from_numpy(nodes)).float().clamp(0.0, 1.0).numpy()
    return out.reshape(size, size, size, 3).astype(np.float32)


def _soft_bins(value, centres, half_width):
    """Triangular memberships ``[len(centres), ...]`` of ``value`` in bins around ``centres``."""
    import torch

    return torch.stack([torch.relu(1.0 - (value - c).abs() / half_width) for c in centres])


def _weighted_mean(value, weight):
    return (value * weight).flatten(1).sum(1) / (weight.flatten(1).sum(1) + 1e-4)


def radial_distance(height: int, width: int):
    """The frame's normalised distance from the centre ``[H, W]`` (the vignette's, roundness 0):
    0 in the middle, 1 in the corners."""
    import torch

    v = (torch.arange(height, dtype=torch.float32) + 0.5) / height - 0.5
    u = (torch.arange(width, dtype=torch.float32) + 0.5) / width - 0.5
    return torch.sqrt((2 * v[:, None]) ** 2 + (2 * u[None, :]) ** 2) / math.sqrt(2.0)


def group_slices() -> dict[str, slice]:
    """Where each group of :func:`look_statistics` lies in its vector."""
    sizes = {"bands": (len(BAND_SIGMAS) - 1) * len(LUMA_BINS), "radial": 2 * (len(EDGE_BINS) - 1),
             "halo": len(HALO_BINS) - 1, "tone": 4 * len(QUANTILES)}
    out, start = {}, 0
    for name in GROUPS:
        out[name] = slice(start, start + sizes[name])
        start += sizes[name]
    return out


def _edge_falloff(lum):
    """Log-luma falloff toward the frame's edges ``[2 * len(EDGE_BINS) - 2]``: each pixel's log luma
    minus its row's mean, binned by horizontal distance from the centre, and minus its column's
    mean, binned by vertical distance (both sides folded). What a vignette changes; a bright sky at
    the top of many scenes cancels out of the row-wise half and mostly out of the column-wise half
    (top and bottom are folded together), which a plain radial profile mistakes for a vignette."""
    import torch

    log = torch.log(lum + 0.05)
    h, w = log.shape
    u = ((torch.arange(w, dtype=torch.float32) + 0.5) / w - 0.5).abs() * 2  # 0 centre, 1 edge
    v = ((torch.arange(h, dtype=torch.float32) + 0.5) / h - 0.5).abs() * 2
    across = (log - log.mean(dim=1, keepdim=True)).mean(dim=0)  # [W]
    down = (log - log.mean(dim=0, keepdim=True)).mean(dim=1)  # [H]
    out = []
    for profile, where in ((across, u), (down, v)):
        for lo, hi in zip(EDGE_BINS[:-1], EDGE_BINS[1:]):
            out.append(profile[(where >= lo) & (where < hi)].mean())
    return torch.stack(out)


def look_statistics(x):
    """The statistics of one photo ``x`` ``[1, 3, H, W]`` in [0, 1] -> ``[K]`` (see the module doc)."""
    import torch

    from styleforge.train.models.recipe_ops import gaussian_blur, luma

    lum = luma(x.clamp(0.0, 1.0))[:, 0]  # [1, H, W]
    feats = []
    bases = [lum] + [gaussian_blur(lum[:, None], s)[:, 0] for s in BAND_SIGMAS]
    for fine, coarse in zip(bases[:-1], bases[1:]):
        weights = _soft_bins(coarse, LUMA_BINS, 0.2)  # [bins, 1, H, W]
        energy = torch.stack([_weighted_mean((fine - coarse) ** 2, w)[0] for w in weights])
        feats.append(torch.sqrt(energy + 1e-6))
    feats.append(_edge_falloff(lum[0]))
    near = gaussian_blur(torch.sigmoid((lum[:, None] - 0.85) / 0.03), HALO_SIGMA)[:, 0]
    dark = torch.sigmoid((0.7 - lum) / 0.03)
    base = _weighted_mean(lum, dark)[0]
    halo = []
    for lo, hi in zip(HALO_BINS[:-1], HALO_BINS[1:]):
        w = dark * torch.sigmoid((near - lo) / 0.005) * torch.sigmoid((hi - near) / 0.005)
        halo.append(_weighted_mean(lum, w)[0] - base)
    feats.append(torch.stack(halo))
    q = torch.tensor(QUANTILES)
    every = QUANTILE_STRIDE  # quantiles of a regular subsample: a sort of every pixel is the costliest step
    pixels = torch.cat([x.clamp(0.0, 1.0)[0, :, ::every, ::every].flatten(1), lum[:, ::every, ::every].flatten(1)])
    feats.append(torch.quantile(pixels, q, dim=1).flatten())
    return torch.cat(feats)


@dataclass
class UnpairedOp:
    """What one local operator did to the held-out half's statistic distance (z^2, larger = worth more)."""

    op: str
    params: dict[str, float]
    worth_z2: float
    kept: bool


@dataclass
class UnpairedFit:
    """The result of :func:`fit_unpaired_recipe`: ``steps`` as ``look_ops.apply_recipe`` takes them
    (the LUT under ``params["table"]``), each op's report and the distances behind the choice."""

    steps: list[tuple[str, dict]]
    ops: list[UnpairedOp] = field(default_factory=list)
    colour_z2: float = float("nan")  # the colour LUT alone: mean z^2 of the statistics' gap
    recipe_z2: float = float("nan")  # every op fitted
    kept_z2: float = float("nan")  # the kept ops
    held_out: bool = False
    log: list[str] = field(default_factory=list)
    start_steps: list[tuple[str, dict]] = field(default_factory=list)  # the statistics start (= steps before any adversarial step)
    stack: object = None  # the fitted RecipeStack (None for a colour function)
    target: object = None  # the statistics target of every style photo (:class:`_Target`)
    content: list = field(default_factory=list)  # the content / style photos as fitted ([1, 3, h, w] tensors)
    style: list = field(default_factory=list)

    @property
    def local_ops(self) -> list[str]:
        return [op for op, _ in self.steps if op != "colour_lut"]


class _Target:
    """The style photos' mean statistics and their spread (the unit each gap is measured in)."""

    def __init__(self, style):
        import torch

        with torch.no_grad():
            stats = torch.stack([look_statistics(y) for y in style])
        self.mean = stats.mean(0)
        self.unit = stats.std(0, unbiased=len(style) > 1).clamp_min(MIN_SPREAD) if len(style) > 1 \
            else torch.full_like(self.mean, 0.05)

    def distance(self, stack, content) -> object:
        """Mean over statistics of the squared gap in units: ``((mean_c - mean_s) / unit)^2``."""
        import torch

        return self.gap(torch.stack([look_statistics(stack(x)) for x in content]).mean(0))

    def gap(self, mean_stats) -> object:
        """The distance of mean statistics ``[K]`` from the target: each group's mean z^2, averaged."""
        z2 = ((mean_stats - self.mean) / self.unit) ** 2
        return sum(z2[part].mean() for part in group_slices().values()) / len(GROUPS)


def _train(stack, content, target: _Target, steps: int, seed: int, progress) -> None:
    import torch

    for op in stack.ops:
        if op.table is not None:
            op.table.requires_grad_(False)  # the colour part is the colour learner's
    params = []
    for op in stack.ops:
        for key, raw in op.raw.items():
            fixed = key in FIXED.get(op.name, ())
            raw.requires_grad_(not fixed)
            if not fixed:
                params.append(raw)
    optim = torch.optim.Adam(params, lr=LR)
    rng = np.random.default_rng(seed)
    prior = PRIOR / len(content)
    for _ in range(steps):
        pick = rng.choice(len(content), min(BATCH, len(content)), replace=False)
        optim.zero_grad()
        loss = target.distance(stack, [content[i] for i in pick]) + prior * sum(p ** 2 for p in params)
        loss.backward()
        optim.step()
        if progress is not None:
            progress(1)


def fit_unpaired_recipe(content: Sequence[np.ndarray], style: Sequence[np.ndarray], table: np.ndarray,
                        steps: int = STEPS, candidates: Sequence[str] = UNPAIRED_OPS, seed: int = 0,
                        progress: Optional[Callable[[int], None]] = None) -> UnpairedFit:
    """Learn a recipe's local operators from unpaired ``content`` and ``style`` photos (float32
    ``[H, W, 3]`` in [0, 1], any sizes) around the colour learner's ``table`` (float32
    ``[S, S, S, 3]`` indexed ``[r, g, b]``, held fixed). ``progress(n)``: ``2 * steps`` in all."""
    import torch

    from styleforge.train.models.recipe_ops import RecipeStack

    if not content or not style:
        raise ValueError("fit_unpaired_recipe needs content and style photos")
    torch.manual_seed(seed)
    to_t = lambda rgb: torch.from_numpy(np.ascontiguousarray(resize_short(rgb, STAT_SIDE).transpose(2, 0, 1)))[None]  # noqa: E731
    xs, ys = [to_t(c) for c in content], [to_t(s) for s in style]
    ops = [name for name in ORDER if name in candidates]
    if "colour_lut" not in ops:
        ops.insert(sum(ORDER.index(o) < ORDER.index("colour_lut") for o in ops), "colour_lut")
    stack = RecipeStack(ops, seed=seed, lut_size=table.shape[0])
    with torch.no_grad():
        stack.ops[ops.index("colour_lut")].table.copy_(torch.from_numpy(np.asarray(table, dtype=np.float32)))
    split = min(len(xs), len(ys)) >= MIN_PHOTOS_TO_SPLIT
    result = UnpairedFit(steps=[], held_out=split)
    rng = np.random.default_rng(seed)
    cx, cy = rng.permutation(len(xs)), rng.permutation(len(ys))
    fit_x = [xs[i] for i in cx[: len(xs) // 2]] if split else xs
    fit_y = [ys[i] for i in cy[: len(ys) // 2]] if split else ys
    sel_x = [xs[i] for i in cx[len(xs) // 2:]] if split else xs
    sel_y = [ys[i] for i in cy[len(ys) // 2:]] if split else ys
    _train(stack, fit_x, _Target(fit_y), steps, seed, progress)
    with torch.no_grad():
        sel = _Target(sel_y)
        result.recipe_z2 = float(sel.distance(stack, sel_x))
        result.colour_z2 = float(sel.distance(with_identity(stack, ["colour_lut"]), sel_x))
        kept = ["colour_lut"]
        for op in stack.ops:
            if op.name == "colour_lut":
                continue
            worth = float(sel.distance(with_identity(stack, [o for o in ops if o != op.name]), sel_x)) - result.recipe_z2
            report = UnpairedOp(op.name, op.params(), worth, worth >= KEEP_SHARE * result.colour_z2)
            result.ops.append(report)
            if report.kept:
                kept.append(op.name)
        kept = [name for name in ops if name in kept]
        result.kept_z2 = float(sel.distance(with_identity(stack, kept), sel_x))
    where = "held-out half" if split else "in sample"
    result.log.append(f"unpaired recipe: statistics gap (mean z^2, {where}) colour alone {result.colour_z2:.3f}, "
                      f"every op {result.recipe_z2:.3f}, kept ops {result.kept_z2:.3f}")
    for report in result.ops:
        result.log.append(f"  {report.op:<12} worth {report.worth_z2:+.3f} -> {'kept' if report.kept else 'dropped'}")
    if kept == ["colour_lut"] or result.colour_z2 - result.kept_z2 < MIN_GAIN_SHARE * result.colour_z2:
        result.log.append("unpaired recipe: no local operator earns its place: the look is a colour function")
        result.steps = result.start_steps = [("colour_lut", {"table": np.asarray(table, dtype=np.float32)})]
        return result
    final = RecipeStack(kept, seed=seed, lut_size=table.shape[0])
    by_name = {op.name: op for op in stack.ops}
    with torch.no_grad():
        for op in final.ops:
            op.load_state_dict(by_name[op.name].state_dict())
    target = _Target(ys)
    _train(final, xs, target, steps, seed + 1, progress)
    result.steps = result.start_steps = final.recipe()
    result.stack, result.target, result.content, result.style = final, target, xs, ys
    result.log.append("unpaired recipe: " + " -> ".join(kept))
    return result
