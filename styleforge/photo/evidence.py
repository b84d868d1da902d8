"""The unpaired colour learner's start, and how free its adversarial step is, decided by the evidence.

Two folders of photos of *different* scenes say what a look does only as far as their scene
groups agree: with 7 photos a side most of the difference between the folders is the scenes, with
60 most of it is the look. So the start is estimated in three nested stages, each a correction on
top of the one before, and each stage keeps only as much of its change as the scene groups
support:

1. **levels**: per-channel black and white points (the pre-curves), taken whole: the base,
   robust with a few photos (a photo set's extremes hardly depend on its scenes). Two estimates
   are averaged: the extremes of all pixels pooled, and the median over scene groups of each
   group's own extremes;
2. **matrix**: a 3x3 colour matrix and bias (MKL, Pitié & Kokaram 2007, on the levels-mapped
   content): channel mixing, desaturation, toning;
3. **curves**: per-channel curves between the two sides' mean quantile functions over their
   scene groups (histogram matching in which every scene weighs the same; the post-curves):
   the tone curve's shape.

The two later stages are refitted on ``resamples`` bootstrap resamples of the scene groups of both folders
(whole groups are drawn with replacement, so two photos of one scene count as one piece of
evidence). For each block (one channel's curve, one row of the matrix with its bias) the mean
change ``d`` over the resamples is kept in the fraction ``(1 - noise_weight * v / |d|^2)+``, where
``v`` is the resamples' variance summed over the block: the positive-part James-Stein rule. A
change the groups agree on is kept whole, one they disagree on goes back to "no change", and more
photos (less variance) keep more of every stage: nothing in it is tuned to a folder size.
``freedom``, the mean kept fraction of the matrix and curve stages, is how much the evidence lets
the adversarial step move (:class:`~styleforge.train.objectives.colour.ColourObjective` ships that
fraction of its change and relaxes its anchor by it).

Pixels are float64 RGB in [0, 1], ``[N, 3]``; curves are ``[3, knots]`` values at
``linspace(0, 1, knots)`` (the colour generator's layout), matrices act as ``x @ matrix.T + bias``.
Torch-free (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from styleforge.photo.baselines import levels_fit, mkl_fit

RESAMPLES = 24  # bootstrap resamples of the scene groups (the kept fractions vary by ~0.05 between seeds)
NOISE_WEIGHT = 5.0  # a block keeps its change only where its squared size exceeds five times its variance
PIXELS_PER_PHOTO = 20_000  # pixels drawn from each photo (bounded time and memory)
RESAMPLE_PIXELS = 60_000  # pixels pooled per side and resample
# Fewer scene groups than this on a side and the bootstrap cannot weigh anything (3 groups have 10
# distinct resamples): the evidence is "not enough" and the learner falls back to its fixed levels
# start and shrink. On the album's 3-4 groups a side the evidence start lost 2.3 dB per run to it.
MIN_GROUPS = 5
QUANTILES = np.linspace(0.0, 1.0, 257)  # where each scene group's quantile functions are sampled


@dataclass(frozen=True)
class EvidenceFit:
    """The start: ``post(clip(pre(x) @ matrix.T + bias))``, as the colour generator evaluates it."""

    pre: np.ndarray  # [3, K] levels as curves
    matrix: np.ndarray  # [3, 3]
    bias: np.ndarray  # [3]
    post: np.ndarray  # [3, K] quantile curves
    kept: dict = field(default_factory=dict)  # stage -> per-block kept fraction (3 each)
    groups: tuple = (0, 0)  # scene groups (content, style) the evidence came from
    resamples: int = 0

    @property
    def enough(self) -> bool:
        """Whether both sides have :data:`MIN_GROUPS` scene groups (else only levels, nothing weighed)."""
        return min(self.groups) >= MIN_GROUPS

    @property
    def freedom(self) -> float:
        """Mean kept fraction of the matrix and curve stages, in [0, 1]."""
        parts = [f for stage in ("matrix", "curves") for f in self.kept.get(stage, ())]
        return float(np.mean(parts)) if parts else 0.0

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb [N, 3]`` in [0, 1] -> ``[N, 3]`` in [0, 1]."""
        mapped = np.clip(_curves(self.pre, rgb) @ self.matrix.T + self.bias, 0.0, 1.0)
        return np.clip(_curves(self.post, mapped), 0.0, 1.0)

    def describe(self) -> dict:
        """JSON-ready summary: kept fraction per stage and block, freedom, groups, resamples."""
        return {"kept": {k: [round(float(f), 3) for f in v] for k, v in self.kept.items()},
                "freedom": round(self.freedom, 3), "groups": {"content": self.groups[0], "style": self.groups[1]},
                "resamples": self.resamples, "enough": self.enough}


def _grid(knots: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, knots)


def _curves(values: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Per-channel piecewise-linear curves ``[3, K]`` applied to ``rgb [N, 3]`` (input clamped to [0, 1])."""
    grid = _grid(values.shape[1])
    return np.stack([np.interp(rgb[:, c], grid, values[c]) for c in range(3)], axis=1)


def _levels_curves(source: np.ndarray, target: np.ndarray, knots: int) -> np.ndarray:
    scale, offset = levels_fit(source, target)
    return _grid(knots)[None, :] * scale[:, None] + offset[:, None]


def shrink_blocks(fits: np.ndarray, neutral: np.ndarray, noise_weight: float = NOISE_WEIGHT
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Positive-part James-Stein per row: ``fits [R, rows, cols]`` (one fit per resample) toward
    ``neutral [rows, cols]``. Returns ``(shrunk [rows, cols], kept fraction per row [rows])``."""
    change = fits.mean(axis=0) - neutral
    variance = fits.var(axis=0, ddof=1).sum(axis=1)
    power = np.maximum((change ** 2).sum(axis=1), 1e-12)
    kept = np.clip(1.0 - noise_weight * variance / power, 0.0, 1.0)
    return neutral + kept[:, None] * change, kept


def group_pixels(images: Sequence[np.ndarray], labels: Sequence[str], per_photo: int = PIXELS_PER_PHOTO,
                 seed: int = 0) -> list[np.ndarray]:
    """Pixels of uint8 HWC RGB ``images`` pooled per scene group ``labels`` (one per image):
    a list of float64 ``[n, 3]`` arrays in [0, 1], groups in order of first appearance."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} group labels")
    rng = np.random.default_rng(seed)
    pooled: dict[str, list[np.ndarray]] = {}
    for img, label in zip(images, labels):
        px = np.asarray(img).reshape(-1, 3)
        if len(px) > per_photo:
            px = px[rng.choice(len(px), per_photo, replace=False)]
        pooled.setdefault(label, []).append(px.astype(np.float64) / 255.0)
    return [np.concatenate(parts) for parts in pooled.values()]


def _pool(groups: Sequence[np.ndarray], pick: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    px = np.concatenate([groups[i] for i in pick])
    return px[rng.choice(len(px), size, replace=False)] if len(px) > size else px


def _quantiles(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Each group's per-channel quantile function at :data:`QUANTILES`: ``[G, Q, 3]``."""
    return np.stack([np.quantile(g, QUANTILES, axis=0) for g in groups])


def _match(source_q: np.ndarray, target_q: np.ndarray, knots: int) -> np.ndarray:
    """Curves ``[3, knots]`` taking quantile functions ``[Q, 3]`` of the source onto the target's."""
    grid = _grid(knots)
    out = np.empty((3, knots))
    for c in range(3):
        xs = np.maximum.accumulate(source_q[:, c] + np.arange(len(source_q)) * 1e-9)  # strictly increasing
        out[c] = np.interp(grid, xs, target_q[:, c])
    return out


def _typical_levels(q_content: np.ndarray, q_style: np.ndarray, knots: int) -> np.ndarray:
    """Levels between the median over scene groups of each group's own black and white points."""
    lo, hi = 1, len(QUANTILES) - 2  # the 0.4 % and 99.6 % quantiles at 257 levels
    c_lo, c_hi = np.median(q_content[:, lo], axis=0), np.median(q_content[:, hi], axis=0)
    s_lo, s_hi = np.median(q_style[:, lo], axis=0), np.median(q_style[:, hi], axis=0)
    scale = np.maximum((s_hi - s_lo) / np.maximum(c_hi - c_lo, 1e-3), 1e-3)
    return _grid(knots)[None, :] * scale[:, None] + (s_lo - c_lo * scale)[:, None]


def fit_by_evidence(content_groups: Sequence[np.ndarray], style_groups: Sequence[np.ndarray], knots: int = 32,
                    resamples: int = RESAMPLES, seed: int = 0, noise_weight: float = NOISE_WEIGHT) -> EvidenceFit:
    """Fit the three stages; the matrix and curves are shrunk by their scene groups' agreement.

    ``content_groups`` / ``style_groups``: per scene group, float64 ``[n, 3]`` pixels in [0, 1]
    (:func:`group_pixels`). With fewer than :data:`MIN_GROUPS` groups on a side nothing is
    weighed: the start is the pooled levels fit with the later stages off (kept 0), and
    ``enough`` is False.
    """
    if not content_groups or not style_groups:
        raise ValueError("fit_by_evidence needs photos on both sides")
    rng = np.random.default_rng(seed)
    identity = np.tile(_grid(knots), (3, 1))
    affine_neutral = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
    nc, ns = len(content_groups), len(style_groups)
    # The base: the mean of two estimates of the black and white points, of all pixels pooled
    # (the most extreme photos rule) and the median of each scene group's own (a typical scene rules).
    pooled = _levels_curves(_pool(content_groups, np.arange(nc), 150_000, rng),
                            _pool(style_groups, np.arange(ns), 150_000, rng), knots)
    kept = {"levels": [1.0] * 3}
    if min(nc, ns) < MIN_GROUPS:
        return EvidenceFit(pooled, np.eye(3), np.zeros(3), identity,
                           {**kept, "matrix": [0.0] * 3, "curves": [0.0] * 3}, (nc, ns), 0)
    q_content, q_style = _quantiles(content_groups), _quantiles(style_groups)
    pre = 0.5 * (pooled + _typical_levels(q_content, q_style, knots))
    picks = [(rng.integers(nc, size=nc), rng.integers(ns, size=ns)) for _ in range(resamples)]
    leveled = [np.clip(_curves(pre, g), 0.0, 1.0) for g in content_groups]
    affines = []
    for pick_c, pick_s in picks:
        a, b = mkl_fit(_pool(leveled, pick_c, RESAMPLE_PIXELS, rng), _pool(style_groups, pick_s, RESAMPLE_PIXELS, rng))
        affines.append(np.concatenate([a, b[:, None]], axis=1))
    affine, kept["matrix"] = shrink_blocks(np.stack(affines), affine_neutral, noise_weight)
    matrix, bias = affine[:, :3], affine[:, 3]
    # Curves between the two sides' mean quantile functions over their scene groups (the 1-D
    # Wasserstein barycentre: every scene weighs the same, however many pixels it has).
    q_mapped = _quantiles([np.clip(g @ matrix.T + bias, 0.0, 1.0) for g in leveled])
    curves = np.stack([_match(q_mapped[pick_c].mean(axis=0), q_style[pick_s].mean(axis=0), knots)
                       for pick_c, pick_s in picks])
    post, kept["curves"] = shrink_blocks(curves, identity, noise_weight)
    post = np.maximum.accumulate(post, axis=1)  # monotone, as the generator's curves are
    return EvidenceFit(pre, matrix, bias, post, {k: [float(f) for f in v] for k, v in kept.items()},
                       (nc, ns), resamples)
