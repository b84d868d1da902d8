"""The paired look recipe (fit_recipe) of 7 corpus pairs per split, scored like eval-looks.
    .venv/bin/python docs/results/paired_colour/measure_recipe.py LOOKS SEEDS > recipe_rows.jsonl
"""
import sys, json, time
import numpy as np
import torch
torch.set_num_threads(1)
from pathlib import Path
from styleforge.benchmarks.learning_curve import photo_grouping, draw_sides, TEST_SHORT_SIDE, _recipe_method
from styleforge.benchmarks.scoring import score_methods
from styleforge.photo.album import people_photos
from styleforge.photo.looks import apply_look
from styleforge.photo.photos import load_photos
looks = sys.argv[1].split(","); seeds = [int(x) for x in sys.argv[2].split(",")]
grouping = photo_grouping(None)
tp = people_photos(); test = load_photos(tp, len(tp), TEST_SHORT_SIDE)
for look in looks:
    pairs = [(Path(p).stem, x, apply_look(look, x)) for p, x in zip(tp, test)]
    for seed in seeds:
        groups, _ = draw_sides(grouping, 7, seed)
        paths = [p for g in groups for p in g]
        content = load_photos(paths, len(paths), TEST_SHORT_SIDE)
        method, facts = _recipe_method(content, look)
        scores, _ = score_methods({"recipe": method}, pairs)
        print(json.dumps({"look": look, "seed": seed, "recipe": round(scores["recipe"]["psnr"], 2), **facts}), flush=True)
