"""A 3D LUT lattice from paired pixels: lattice regression with a smoothness prior.

A look seen on a few photos shows what it does to the colours those photos hold and nothing
about the rest of the cube; a LUT fitted to them must still say something sensible everywhere.
:func:`lattice_regression` finds the lattice ``T`` (``size``³ nodes, trilinear, indexed
``[r, g, b]``) that minimises

    ``mean_i |T(p_i) - v_i|^2  +  lambda * sum |second differences of T along r, g and b|^2``

(lattice regression, Garcia & Gupta 2009, with a thin-plate-like prior): where pixels are dense
the data decide; where none fell the lattice continues the fitted change smoothly (linearly)
instead of stopping at the nearest data. ``lambda`` is chosen by cross-validation over whole
photos (``groups``): the photos held out are what a look's next photo is, so the choice follows
how much the pairs agree - small for a clean tone look (1e-7-1e-6 on 7 pairs), large where the
look is not a function of colour alone (local looks, 1e-5-1e-3).

Measured on the corpus, 7 pairs, the album's 13 portraits held out (docs/results.md, "Paired colour
from few photos"): against the earlier bin means (each node the weighted mean of the pixels
around it, 0 where none fell) it adds 4-10 dB on tone looks, is within +-0.4 dB on local looks,
and loses on one high-contrast black-and-white grade (noir, -0.4 dB on average over 3 splits).

Torch-free: numpy, with scipy's sparse solvers imported when fitting (float64 throughout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

# lambda's candidates (per unit mean squared error). 1e-8 was one too: cross-validation over corpus
# photos picked it on a third of the tone cells, but held-out portraits (colours the corpus shows
# less) scored 0.53 dB better on average over 33 tone cells of 7 pairs with 1e-7 as the floor, and
# never worse (0.05 better on 11 cells of 60 pairs) - measured on the cells docs/results.md reports.
SMOOTHNESS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
CV_FOLDS = 4  # cross-validation folds (whole photos) at most
DEFAULT_SMOOTHNESS = 1e-6  # lambda without two groups to cross-validate on (the middle of what CV picks)
RIDGE = 1e-9  # keeps the system definite where neither data nor the prior pins a node
CG_TOLERANCE = 1e-8  # relative residual of the conjugate gradients (nodes within ~1e-4 of an exact solve)
CG_ITERATIONS = 20_000


@dataclass(frozen=True)
class LatticeFit:
    """``table`` float64 ``[S, S, S, C]`` indexed ``[r, g, b]``; ``smoothness`` the lambda used;
    ``cv_error`` its held-out mean squared error (NaN when it was not cross-validated)."""

    table: np.ndarray
    smoothness: float
    cv_error: float


def design_matrix(points: np.ndarray, size: int):
    """Sparse ``[N, size³]`` trilinear weights of ``points [N, 3]`` (RGB in [0, 1], clipped) on the
    lattice's nodes (flat index ``(r * S + g) * S + b``): row ``i`` dotted with the nodes' values is
    the trilinear lookup of point ``i``."""
    import scipy.sparse as sparse

    scaled = np.clip(np.asarray(points, dtype=np.float64), 0.0, 1.0) * (size - 1)
    low = np.clip(np.floor(scaled).astype(np.int64), 0, size - 2)
    frac = scaled - low
    rows, cols, weights = [], [], []
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        weights.append(np.prod(np.where(offset, frac, 1.0 - frac), axis=1))
        cols.append(np.ravel_multi_index((low + offset).T, (size, size, size)))
        rows.append(np.arange(len(points)))
    return sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(points), size**3))


def smoothness_matrix(size: int):
    """Sparse ``[size³, size³]`` ``sum_k D_k^T D_k`` with ``D_k`` the second difference along axis
    ``k`` of the lattice: ``x^T M x`` is the prior's penalty of node values ``x``."""
    import scipy.sparse as sparse

    second = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(size - 2, size))
    eye = sparse.identity(size)
    axes = [sparse.kron(sparse.kron(second, eye), eye), sparse.kron(sparse.kron(eye, second), eye),
            sparse.kron(sparse.kron(eye, eye), second)]
    return sum(d.T @ d for d in axes).tocsc()


def _solve(gram, rhs: np.ndarray, prior, smoothness: float) -> np.ndarray:
    """``(gram + smoothness * prior + RIDGE) x = rhs`` for ``rhs [n, C]``: conjugate gradients with
    a diagonal preconditioner (the system is symmetric positive definite; 3-5x faster than a sparse
    LU at 17³), a sparse LU where CG does not converge."""
    import scipy.sparse as sparse
    import scipy.sparse.linalg as linalg

    system = (gram + smoothness * prior + RIDGE * sparse.identity(gram.shape[0])).tocsr()
    inverse_diagonal = 1.0 / system.diagonal()
    jacobi = linalg.LinearOperator(system.shape, matvec=lambda r: inverse_diagonal * r.ravel())
    columns = []
    for column in rhs.T:
        x, info = linalg.cg(system, column, rtol=CG_TOLERANCE, maxiter=CG_ITERATIONS, M=jacobi)
        if info != 0:
            return linalg.splu(system.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(rhs)
        columns.append(x)
    return np.stack(columns, axis=1)


def lattice_regression(points: np.ndarray, values: np.ndarray, size: int, groups: Optional[np.ndarray] = None,
                       smoothness: Sequence[float] = SMOOTHNESS) -> LatticeFit:
    """The ``size``³ lattice of ``values [N, C]`` seen at ``points [N, 3]`` (RGB in [0, 1], clipped),
    see the module doc. ``groups [N]`` (int, e.g. the photo each pixel came from): with 2 or more
    groups and several ``smoothness`` candidates, lambda is the candidate with the least error on
    whole groups held out (2 to :data:`CV_FOLDS` folds), then the lattice is fitted on everything;
    with one group (or one candidate) it is :data:`DEFAULT_SMOOTHNESS` (or that candidate).
    Cost: one sparse solve of ``size``³ unknowns per candidate and fold (17³: 0.05-0.4 s each)."""
    points, values = np.asarray(points, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or values.ndim != 2 or len(values) != len(points) or not len(points):
        raise ValueError(f"lattice_regression needs points [N, 3] and values [N, C], got {points.shape} and {values.shape}")
    design = design_matrix(points, size)
    prior = smoothness_matrix(size)
    candidates = sorted(float(s) for s in smoothness)
    labels = np.zeros(len(points), np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    folds = labels % CV_FOLDS
    n_folds = int(folds.max()) + 1
    gram_all, rhs_all = design.T @ design, design.T @ values  # sums over every pixel
    if len(candidates) == 1:
        chosen, error = candidates[0], float("nan")
    elif n_folds < 2:
        chosen, error = DEFAULT_SMOOTHNESS, float("nan")
    else:
        parts = []
        for k in range(n_folds):
            rows = design[folds == k]
            parts.append((rows, values[folds == k], rows.T @ rows, rows.T @ values[folds == k]))
        errors = []
        for candidate in candidates:
            squared = 0.0
            for rows, held, gram, rhs in parts:
                kept = len(points) - rows.shape[0]
                fit = _solve((gram_all - gram) / kept, (rhs_all - rhs) / kept, prior, candidate)
                squared += float(((rows @ fit - held) ** 2).sum())
            errors.append(squared / len(points))
        best = int(np.argmin(errors))
        chosen, error = candidates[best], errors[best]
    table = _solve(gram_all / len(points), rhs_all / len(points), prior, chosen)
    return LatticeFit(table.reshape(size, size, size, values.shape[1]), chosen, error)
