"""How docs/results.md "Paired colour from a few pairs" was measured: the paired colour fit of n corpus
pairs (the learning-curve harness's draws), the earlier per-node means against the smooth lattice, scored
like eval-looks (pooled PSNR over the album's held-out portraits). From the repository root:
    .venv/bin/python docs/results/paired_colour/measure_colour.py LOOKS N,N SEEDS > colour_rows.jsonl
"""
import sys, time, json
import numpy as np
from styleforge.benchmarks.learning_curve import photo_grouping, draw_sides, TEST_SHORT_SIDE
from styleforge.photo.album import people_photos
from styleforge.photo.looks import apply_look
from styleforge.photo.photos import load_photos
from styleforge.photo.baselines import affine_fit, colour_oracle
from styleforge.runtime.lut import trilinear
from styleforge.train.recipe_fit import colour_table
from styleforge.train.paired_fit import fit_colour
from styleforge.runtime.metrics import pooled_psnr

def old_lattice_fit(points, values, size, prior=0.01):  # the bin means of HEAD~ (styleforge.photo.baselines.lattice_fit)
    scaled = np.clip(points, 0.0, 1.0) * (size - 1)
    low = np.clip(np.floor(scaled).astype(np.int64), 0, size - 2)
    frac = scaled - low
    nodes = size ** 3
    total = np.zeros((nodes, values.shape[1])); weight = np.zeros(nodes)
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        w = np.prod(np.where(offset, frac, 1.0 - frac), axis=1)
        index = np.ravel_multi_index((low + offset).T, (size, size, size))
        weight += np.bincount(index, w, minlength=nodes)
        for c in range(values.shape[1]):
            total[:, c] += np.bincount(index, w * values[:, c], minlength=nodes)
    return (total / (weight + prior)[:, None]).reshape(size, size, size, values.shape[1])

def old_table(before, after, size=17):
    rng = np.random.default_rng(0)
    src = np.concatenate([b.reshape(-1, 3) for b in before]).astype(np.float64)
    dst = np.concatenate([a.reshape(-1, 3) for a in after]).astype(np.float64)
    if len(src) > 400_000:
        pick = rng.choice(len(src), 400_000, replace=False); src, dst = src[pick], dst[pick]
    matrix, bias = affine_fit(src, dst)
    mapped = src @ matrix.T + bias
    residual = old_lattice_fit(mapped, dst - mapped, size).astype(np.float32)
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    nodes = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    nm = (nodes @ matrix.T.astype(np.float32) + bias.astype(np.float32)).astype(np.float32)
    table = nm + trilinear(residual, np.clip(nm, 0.0, 1.0))
    return np.clip(table, 0.0, 1.0).reshape(size, size, size, 3).astype(np.float32)

def sample(before, after):  # as colour_table samples
    rng = np.random.default_rng(0)
    src = np.concatenate([b.reshape(-1, 3) for b in before]).astype(np.float64)
    dst = np.concatenate([a.reshape(-1, 3) for a in after]).astype(np.float64)
    photo = np.concatenate([np.full(b.shape[0] * b.shape[1], i) for i, b in enumerate(before)])
    if len(src) > 400_000:
        pick = rng.choice(len(src), 400_000, replace=False); src, dst, photo = src[pick], dst[pick], photo[pick]
    return src, dst, photo

def exact(matrix, bias, residual, rgb):  # what the paired colour generator computes (ColourGenerator.colour)
    x = rgb.reshape(-1, 3).astype(np.float64) / 255
    m = x @ matrix.T + bias
    out = np.clip(m + trilinear(residual, np.clip(m, 0, 1).astype(np.float32)), 0, 1).reshape(rgb.shape)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)

def apply_table(table, rgb):
    out = trilinear(table, rgb.reshape(-1, 3).astype(np.float32) / 255).reshape(rgb.shape)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)

def psnr(a, b):
    return 10 * np.log10(255**2 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-10))

looks = sys.argv[1].split(","); ns = [int(x) for x in sys.argv[2].split(",")]; seeds = [int(x) for x in sys.argv[3].split(",")]
grouping = photo_grouping(None)
tp = people_photos(); test = load_photos(tp, len(tp), TEST_SHORT_SIDE)
for look in looks:
    targets = [apply_look(look, t) for t in test]
    orc = colour_oracle(test, targets)
    o = pooled_psnr([psnr(orc(t), y) for t, y in zip(test, targets)])
    for n in ns:
        for seed in seeds:
            groups, _ = draw_sides(grouping, n, seed)
            paths = [p for g in groups for p in g]
            content = load_photos(paths, len(paths), TEST_SHORT_SIDE)
            before = [c.astype(np.float32) / 255 for c in content]
            after = [apply_look(look, c).astype(np.float32) / 255 for c in content]
            t0 = time.time(); new, lam = colour_table(before, after); t1 = time.time() - t0
            old = old_table(before, after)
            src, dst, photo = sample(before, after)
            fit = fit_colour(src, dst, 17, photo)
            matrix, bias = affine_fit(src, dst); mapped = src @ matrix.T + bias
            old_res = old_lattice_fit(mapped, dst - mapped, 17).astype(np.float32)
            r = {"look": look, "n": n, "seed": seed, "oracle": round(o, 2),
                 "old_exact": round(pooled_psnr([psnr(exact(matrix, bias, old_res, t), y) for t, y in zip(test, targets)]), 2),
                 "new_exact": round(pooled_psnr([psnr(exact(fit.matrix, fit.bias, fit.residual, t), y) for t, y in zip(test, targets)]), 2),
                 "old_baked": round(pooled_psnr([psnr(apply_table(old, t), y) for t, y in zip(test, targets)]), 2),
                 "new_baked": round(pooled_psnr([psnr(apply_table(new, t), y) for t, y in zip(test, targets)]), 2),
                 "smoothness": lam, "seconds": round(t1, 1)}
            print(json.dumps(r), flush=True)
