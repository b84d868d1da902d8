"""The unpaired colour learner's start, and how free its adversarial step is, decided by the evidence.

Two folders of photos of *different* scenes say what a look does only as far as statistics that
hardly depend on the scenes agree. A photo set's extremes are such a statistic (most photos hold
something near black and near white, whatever they show: the levels fit), and so is each scene's
*spread in every colour direction*: how far its brightest, reddest, bluest, most saturated pixels
reach. The start is estimated in two nested stages:

1. **affine** (levels in every direction): a 3x3 colour matrix and bias ``y = A x + b`` fitted so
   that the content folder, mapped, has the style folder's robust extremes along the 26
   directions of a cube (the three channels, the three pairs of channels summed and opposed, the
   four diagonals, each way: 6 + 12 + 8). The statistics, ``26 x 6`` of them: per scene group,
   the 75/90/98/99.5 % quantiles of the pixels projected on each direction, medianed over the scene groups (the
   typical scene's reach: a median commutes with a monotone map, so it is not pulled by one odd
   scene), and the 98/99.5 % quantiles of all pixels pooled (the set's extremes, as levels
   uses). Each statistic is weighed by the inverse of its variance over :data:`RESAMPLES`
   bootstrap resamples of the scene groups of both folders (whole groups drawn with replacement,
   so two photos of one scene count as one piece of evidence), and the matrix and bias have a
   Gaussian prior around the **levels fit** (a diagonal matrix and bias: the classical fit least
   fooled by different scenes), sd :data:`PRIOR_SD_MATRIX` per matrix entry and
   :data:`PRIOR_SD_BIAS` per bias, in [0, 1] RGB units: how far a look's colour mixing plausibly
   goes beyond levels. The start is the posterior mode (weighted least squares, scipy). With few
   scene groups the statistics vary between resamples and mostly the precise ones (the pooled
   extremes: levels) move the fit; with more groups the typical scene's reach in every direction
   is pinned too and the matrix mixes channels, desaturates and tones as the look does.
   ``kept["affine"]`` is, per output channel, the data's share of the posterior precision of its
   parameters: nothing in it is tuned to a folder size. For (toned) black-and-white style photos
   every row is the luma mix, scaled and offset, around the grey-levels fit (no colour comes back);
2. **curves**: per-channel curves between the two sides' mean quantile functions over their
   scene groups (histogram matching in which every scene weighs the same; the post-curves),
   refitted on the same resamples and kept in the fraction ``(1 - noise_weight * v / |d|^2)+``
   of their mean change ``d`` (``v`` the resamples' variance summed over the curve: the
   positive-part James-Stein rule). A change the groups agree on is kept whole, one they
   disagree on goes back to "no change".

``freedom``, the curves' mean kept fraction, is how much the evidence lets the adversarial step
move beyond the start (:class:`~styleforge.train.objectives.colour.ColourObjective` ships that
fraction of its change and relaxes its anchor by it): the adversarial LUT is freer still than a
curve, so it may move only as far as the evidence supports the curves.

Measured on the corpus (docs/results/learning_curve): the affine stage is what makes the start
improve with more photos; levels, MKL and a James-Stein-kept MKL matrix (the previous start)
stay near where 7 photos put them. A prior centred on no change instead of levels lost 0.9 dB a
run at 60 photos; a full (shrunk) covariance of the statistics instead of their variances lost 1.7.

Pixels are float64 RGB in [0, 1], ``[N, 3]``; curves are ``[3, knots]`` values at
``linspace(0, 1, knots)`` (the colour generator's layout), matrices act as ``x @ matrix.T + bias``.
Torch-free (numpy; scipy's least squares, imported when fitting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from styleforge.photo.baselines import GREY, grey_levels_fit, levels_fit

RESAMPLES = 24  # bootstrap resamples of the scene groups (the kept fractions vary by ~0.05 between seeds)
NOISE_WEIGHT = 5.0  # a curve keeps its change only where its squared size exceeds five times its variance
PIXELS_PER_PHOTO = 20_000  # pixels drawn from each photo (bounded time and memory)
PIXELS_PER_GROUP = 1_000  # pixels of each scene group for the affine stage (drawn with replacement if fewer)
GROUP_QUANTILES = (0.75, 0.9, 0.98, 0.995)  # each scene group's reach along a direction, medianed over groups
POOLED_QUANTILES = (0.98, 0.995)  # the pooled pixels' reach along a direction (the set's extremes)
PRIOR_SD_MATRIX = 0.1  # prior sd of each colour-matrix entry around the levels fit
PRIOR_SD_BIAS = 0.05  # prior sd of each bias around the levels fit ([0, 1] RGB units)
# The affine objective is piecewise linear (quantiles of projections): iterating to scipy's default
# 1e-8 tolerance chased kinks, up to its 100-evaluation cap (film-warm, 60 photos a side: 62 s).
# 1e-4 stops 2-6x sooner with the same start (harness, 8 looks x 7/60 photos x 3 splits: within
# 0.12 dB per look and size).
FIT_TOLERANCE = 1e-4
# Fewer scene groups than this on a side and the bootstrap cannot weigh anything (3 groups have 10
# distinct resamples): the evidence is "not enough" and the learner falls back to its fixed levels
# start and shrink. On the album's 3-4 groups a side the evidence start lost 2.3 dB per run to it.
MIN_GROUPS = 5
QUANTILES = np.linspace(0.0, 1.0, 257)  # where each scene group's quantile functions are sampled


@dataclass(frozen=True)
class EvidenceFit:
    """The start: ``post(clip(pre(x) @ matrix.T + bias))``, as the colour generator evaluates it."""

    pre: np.ndarray  # [3, K] pre-curves: identity, or the levels fit when the evidence is not enough
    matrix: np.ndarray  # [3, 3]
    bias: np.ndarray  # [3]
    post: np.ndarray  # [3, K] quantile curves
    kept: dict = field(default_factory=dict)  # stage ("affine", "curves") -> per-channel kept fraction
    groups: tuple = (0, 0)  # scene groups (content, style) the evidence came from
    resamples: int = 0

    @property
    def enough(self) -> bool:
        """Whether both sides have :data:`MIN_GROUPS` scene groups (else only levels, nothing weighed)."""
        return min(self.groups) >= MIN_GROUPS

    @property
    def freedom(self) -> float:
        """Mean kept fraction of the curve stage, in [0, 1]: how far the adversarial step may move."""
        parts = self.kept.get("curves", ())
        return float(np.mean(parts)) if len(parts) else 0.0

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


def directions() -> np.ndarray:
    """The 26 unit directions of a cube's faces, edges and corners ``[26, 3]``: each channel, each
    pair of channels summed and opposed, each diagonal, both ways."""
    steps = np.array([(r, g, b) for r in (-1, 0, 1) for g in (-1, 0, 1) for b in (-1, 0, 1) if (r, g, b) != (0, 0, 0)],
                     dtype=np.float64)
    return steps / np.linalg.norm(steps, axis=1, keepdims=True)


DIRECTIONS = directions()


def stack_groups(groups: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` pixels of each scene group (drawn with replacement when it has fewer): ``[G, size, 3]``."""
    return np.stack([g[rng.choice(len(g), size, replace=len(g) < size)] for g in groups])


def reach(stack: np.ndarray, matrix: np.ndarray | None = None, bias: np.ndarray | None = None) -> np.ndarray:
    """How far a photo set reaches along every direction of :data:`DIRECTIONS`, after
    ``clip(x @ matrix.T + bias)`` when given: ``stack [G, m, 3]`` (per scene group) -> ``[K]``,
    ``K = 26 * (len(GROUP_QUANTILES) + len(POOLED_QUANTILES))``: the median over groups of each
    group's :data:`GROUP_QUANTILES` of its projections, then the pooled pixels' :data:`POOLED_QUANTILES`."""
    mapped = stack if matrix is None else np.clip(stack @ matrix.T + bias, 0.0, 1.0)
    proj = mapped @ DIRECTIONS.T  # [G, m, 26]
    ks = np.round(np.asarray(GROUP_QUANTILES) * (proj.shape[1] - 1)).astype(int)
    typical = np.median(np.partition(proj, ks, axis=1)[:, ks, :], axis=0)  # [len(GROUP_QUANTILES), 26]
    flat = proj.reshape(-1, proj.shape[-1])
    kp = np.round(np.asarray(POOLED_QUANTILES) * (len(flat) - 1)).astype(int)
    pooled = np.partition(flat, kp, axis=0)[kp]  # [len(POOLED_QUANTILES), 26]
    return np.concatenate([typical.ravel(), pooled.ravel()])


class _Affine:
    """The affine stage's parameters and prior. Colour styles: ``theta = [matrix (9), bias (3)]``
    around the levels fit (a diagonal matrix). (Toned) black-and-white styles: the channel mix
    stays the luma weights, ``matrix = outer(scale, GREY)``, ``theta = [scale (3), bias (3)]``
    around the grey-levels fit (:func:`~styleforge.photo.baselines.grey_levels_fit`): how a
    black-and-white print mixed the channels cannot be told from grey photos of other scenes
    (any mix, followed by the right tone curve, gives the same grey histogram), and freeing it
    sent it astray (14-17 dB on noir at 60 photos a side, grey levels 19). Fitted on pooled
    pixels ``[N, 3]`` of both sides."""

    def __init__(self, content: np.ndarray, style: np.ndarray, monochrome: bool):
        self.monochrome = monochrome
        if monochrome:
            scale, offset = grey_levels_fit(content, style)
            self.prior = np.concatenate([scale, offset])
            self.prior_sd = np.array([PRIOR_SD_MATRIX] * 3 + [PRIOR_SD_BIAS] * 3)
        else:
            scale, offset = levels_fit(content, style)
            self.prior = np.concatenate([np.diag(scale).ravel(), offset])
            self.prior_sd = np.array([PRIOR_SD_MATRIX] * 9 + [PRIOR_SD_BIAS] * 3)

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix [3, 3], bias [3])``."""
        if self.monochrome:
            return np.outer(theta[:3], GREY), theta[3:]
        return theta[:9].reshape(3, 3), theta[9:]

    def kept(self, share: np.ndarray) -> np.ndarray:
        """Per output channel, the mean data share of the parameters that set it."""
        if self.monochrome:
            return np.array([np.mean([share[c], share[3 + c]]) for c in range(3)])
        return np.array([np.mean([share[3 * c: 3 * c + 3].mean(), share[9 + c]]) for c in range(3)])


def fit_affine(content: np.ndarray, style: np.ndarray, picks: Sequence[tuple[np.ndarray, np.ndarray]],
               monochrome: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 1: the colour matrix and bias whose mapped ``content`` reaches as far as ``style``
    along every direction (:func:`reach`), each statistic weighed by its bootstrap variance over
    ``picks`` (resampled group indices of both sides; colour content mapped by the prior), with a
    Gaussian prior around the levels fit of the pooled pixels (or, ``monochrome``, the
    grey-levels fit: every row the luma mix).

    ``content``, ``style``: ``[G, m, 3]`` from :func:`stack_groups`. Returns ``(matrix [3, 3],
    bias [3], kept [3])``, ``kept`` per output channel the data's share of its parameters'
    posterior precision (0: the prior alone, 1: the data alone).
    """
    from scipy.optimize import least_squares

    model = _Affine(content.reshape(-1, 3), style.reshape(-1, 3), monochrome)
    # The content side's statistics vary as they do once mapped by the prior. Not for a
    # black-and-white map: it leaves no chroma to vary, every chroma statistic then weighs the
    # variance floor and freezes the fit at the prior (noir, 60 photos a side, one split: 19.4 dB
    # instead of 23.0 with the content's own variances, and the output as grey either way).
    start = (None, None) if monochrome else model.unpack(model.prior)
    boot = np.stack([np.concatenate([reach(content[pc], *start), reach(style[ps])]) for pc, ps in picks])
    k = boot.shape[1] // 2
    variance = boot[:, :k].var(axis=0, ddof=1) + boot[:, k:].var(axis=0, ddof=1) + 1e-6
    weight = 1.0 / np.sqrt(variance)
    target = reach(style)

    def residuals(theta: np.ndarray) -> np.ndarray:
        mapped = reach(content, *model.unpack(theta))
        return np.concatenate([(mapped - target) * weight, (theta - model.prior) / model.prior_sd])

    result = least_squares(residuals, model.prior, diff_step=1e-3, max_nfev=100, ftol=FIT_TOLERANCE,
                           xtol=FIT_TOLERANCE)
    precision = result.jac.T @ result.jac
    share = np.clip(1.0 - np.diag(np.linalg.pinv(precision)) / model.prior_sd ** 2, 0.0, 1.0)
    matrix, bias = model.unpack(result.x)
    return matrix, bias, model.kept(share)


def fit_by_evidence(content_groups: Sequence[np.ndarray], style_groups: Sequence[np.ndarray], knots: int = 32,
                    resamples: int = RESAMPLES, seed: int = 0, noise_weight: float = NOISE_WEIGHT,
                    monochrome: bool = False) -> EvidenceFit:
    """Fit the two stages, each weighed by how well the scene groups agree.

    ``content_groups`` / ``style_groups``: per scene group, float64 ``[n, 3]`` pixels in [0, 1]
    (:func:`group_pixels`). With fewer than :data:`MIN_GROUPS` groups on a side nothing is
    weighed: the start is the pooled levels fit with the later stages off (kept 0), and
    ``enough`` is False. ``monochrome``: the style photos are (toned) black and white; the affine
    stage is then the luma mix, scaled per channel, around the grey-levels fit (:class:`_Affine`).
    """
    if not content_groups or not style_groups:
        raise ValueError("fit_by_evidence needs photos on both sides")
    rng = np.random.default_rng(seed)
    identity = np.tile(_grid(knots), (3, 1))
    nc, ns = len(content_groups), len(style_groups)
    if min(nc, ns) < MIN_GROUPS:
        pooled = _levels_curves(_pool(content_groups, np.arange(nc), 150_000, rng),
                                _pool(style_groups, np.arange(ns), 150_000, rng), knots)
        return EvidenceFit(pooled, np.eye(3), np.zeros(3), identity,
                           {"affine": [0.0] * 3, "curves": [0.0] * 3}, (nc, ns), 0)
    picks = [(rng.integers(nc, size=nc), rng.integers(ns, size=ns)) for _ in range(resamples)]
    content = stack_groups(content_groups, PIXELS_PER_GROUP, rng)
    style = stack_groups(style_groups, PIXELS_PER_GROUP, rng)
    matrix, bias, kept_affine = fit_affine(content, style, picks, monochrome)
    # Curves between the two sides' mean quantile functions over their scene groups (the 1-D
    # Wasserstein barycentre: every scene weighs the same, however many pixels it has).
    q_mapped = _quantiles([np.clip(g @ matrix.T + bias, 0.0, 1.0) for g in content_groups])
    q_style = _quantiles(style_groups)
    curves = np.stack([_match(q_mapped[pick_c].mean(axis=0), q_style[pick_s].mean(axis=0), knots)
                       for pick_c, pick_s in picks])
    post, kept_curves = shrink_blocks(curves, identity, noise_weight)
    post = np.maximum.accumulate(post, axis=1)  # monotone, as the generator's curves are
    kept = {"affine": [float(f) for f in kept_affine], "curves": [float(f) for f in kept_curves]}
    return EvidenceFit(identity, matrix, bias, post, kept, (nc, ns), resamples)
