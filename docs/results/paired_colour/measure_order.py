"""The paired recipe of the same 7 corpus pairs in rotated orders (which 2 pairs fit_recipe holds out for
the selection changes), scored like eval-looks on the album's portraits."""
import sys, json
import torch
torch.set_num_threads(1)
from pathlib import Path
from styleforge.benchmarks.learning_curve import photo_grouping, draw_sides, TEST_SHORT_SIDE, _recipe_method
from styleforge.benchmarks.scoring import score_methods
from styleforge.photo.album import people_photos
from styleforge.photo.looks import apply_look
from styleforge.photo.photos import load_photos
looks = sys.argv[1].split(","); seed = int(sys.argv[2]); rotations = [int(x) for x in sys.argv[3].split(",")]
tp = people_photos(); test = load_photos(tp, len(tp), TEST_SHORT_SIDE)
for look in looks:
    pairs = [(Path(p).stem, x, apply_look(look, x)) for p, x in zip(tp, test)]
    groups, _ = draw_sides(photo_grouping(None), 7, seed)
    paths = [p for g in groups for p in g]
    content = load_photos(paths, len(paths), TEST_SHORT_SIDE)
    for r in rotations:
        order = content[r:] + content[:r]
        method, facts = _recipe_method(order, look)
        scores, _ = score_methods({"recipe": method}, pairs)
        print(json.dumps({"look": look, "seed": seed, "rotation": r, "held_out": [Path(p).stem for p in (paths[r:] + paths[:r])[-2:]],
                          "recipe": round(scores["recipe"]["psnr"], 2), **facts}), flush=True)
