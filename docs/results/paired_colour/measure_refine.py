"""Paired colour generator: closed-form start vs 600 refinement steps (train --paired --model colour), album portraits."""
import sys, subprocess, json, time, shutil
from pathlib import Path
import numpy as np
from PIL import Image
from styleforge.benchmarks.learning_curve import photo_grouping, draw_sides, TEST_SHORT_SIDE
from styleforge.benchmarks.scoring import score_methods, torch_method
from styleforge.photo.album import people_photos
from styleforge.photo.looks import apply_look
from styleforge.photo.photos import load_photos
from styleforge.train.checkpoint import load_generator
from styleforge.train.models.colour import ColourGenerator
from styleforge.train.paired_fit import fit_colour_generator, pair_pixels
look, n, seed, root = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
shutil.rmtree(root, ignore_errors=True)
groups, _ = draw_sides(photo_grouping(None), n, seed)
paths = [p for g in groups for p in g]
for sub in ("A", "B"): (root / "pairs" / sub).mkdir(parents=True, exist_ok=True)
for p, rgb in zip(paths, load_photos(paths, len(paths), TEST_SHORT_SIDE)):
    Image.fromarray(rgb).save(root / "pairs" / "A" / f"{Path(p).stem}.png")
    Image.fromarray(apply_look(look, rgb)).save(root / "pairs" / "B" / f"{Path(p).stem}.png")
t = time.time()
subprocess.run([".venv/bin/styleforge", "train", "--paired", str(root / "pairs"), "--model", "colour", "--out", str(root / "run"), "--quiet", "--seed", str(seed), "--steps", "600"], check=True)
secs = time.time() - t
tp = people_photos(); test = load_photos(tp, len(tp), TEST_SHORT_SIDE)
pairs = [(Path(p).stem, x, apply_look(look, x)) for p, x in zip(tp, test)]
gen, _ = load_generator(root / "run")
ps = sorted((root / "pairs" / "A" / p.name, root / "pairs" / "B" / p.name) for p in (root / "pairs" / "A").iterdir())
g = ColourGenerator(curve_knots=32, lut_size=17).eval(); fit_colour_generator(g, *pair_pixels(ps))
scores, _ = score_methods({"start": torch_method(g), "shipped": torch_method(gen)}, pairs)
print(json.dumps({"look": look, "seed": seed, "n": n, "train_s": round(secs), **{k: round(v["psnr"], 2) for k, v in scores.items()}}), flush=True)
