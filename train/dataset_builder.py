"""``styleforge make-dataset``: a demo dataset for one built-in look, built from offline sample photos.

The sample photos are split by scene into three disjoint groups, so no pixel is shared between them:

* **content** photos -> ``content/`` crops (the model's inputs), and ``paired/A`` + ``paired/B``
  (the same crops and their looked versions, for paired training);
* **style** photos -> ``style/`` crops with the look applied (what unpaired training imitates);
* **test** photos (a held-out portrait when there are two or more) -> ``test/input`` crops and
  ``test/target`` = the look applied to them, the ground truth for evaluation.

Each photo gives several square crops at several scales, resized to ``size`` pixels; the look is
applied after resizing, at the resolution the model sees. ``dataset.json`` records the look, the
seed, the counts, which source photo went where and every crop box. The folder is written
atomically (a temporary sibling folder, then a rename) and the same seed gives the same files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from styleforge.atomic import replace_dir
from styleforge.progress import progress
from styleforge.runtime.imageio import open_image, to_uint8_array
from styleforge.train.data import DatasetError
from styleforge.train.looks import apply_look, get_look
from styleforge.train.samples import is_portrait, sample_photos, scene_of

FORMAT = "styleforge-dataset/1"
CROP_SCALES = (1.0, 0.8, 0.65, 0.5, 0.4)  # crop side as a fraction of the photo's short side


@dataclass(frozen=True)
class Crop:
    """One output image: ``box`` (left, top, right, bottom) cut from ``source`` and resized."""

    name: str
    source: Path
    box: tuple[int, int, int, int]


def split_scenes(photos: Sequence[Path], rng: np.random.Generator) -> dict[str, list[Path]]:
    """Split photos into disjoint ``content`` / ``style`` / ``test`` groups by scene.

    The test group is one held-out portrait scene if there are two or more portraits (else one
    other scene); remaining portraits go to content (the model's inputs should include faces);
    the other scenes are shuffled and dealt to whichever of content/style has fewer files.
    """
    scenes: dict[str, list[Path]] = {}
    for path in sorted(photos):
        scenes.setdefault(scene_of(path), []).append(path)
    if len(scenes) < 3:
        raise DatasetError(f"need photos of at least 3 different scenes to split, found {len(scenes)}")
    names = sorted(scenes)
    portraits = [s for s in names if any(is_portrait(p) for p in scenes[s])]
    others = [s for s in names if s not in portraits]
    pool = portraits if len(portraits) >= 2 else others
    test = pool[int(rng.integers(len(pool)))]
    groups: dict[str, list[str]] = {"content": [], "style": [], "test": [test]}
    groups["content"] += [s for s in portraits if s != test]
    rest = [s for s in others if s != test]
    for k in rng.permutation(len(rest)):
        scene = rest[int(k)]
        count = {g: sum(len(scenes[s]) for s in groups[g]) for g in ("content", "style")}
        target = "style" if count["style"] <= count["content"] else "content"
        groups[target].append(scene)
    if not groups["style"]:  # only portraits besides the test scene: give style one of them
        groups["style"].append(groups["content"].pop())
    return {g: [p for s in groups[g] for p in scenes[s]] for g in groups}


def plan_crops(
    group: str, photos: Sequence[Path], count: int, rng: np.random.Generator, sizes: dict[Path, tuple[int, int]]
) -> list[Crop]:
    """``count`` square crops cycling over ``photos`` and :data:`CROP_SCALES` (jittered), random positions.

    The first crop of each photo (scale 1.0, centred) is the largest centred square: for the
    test group that is the whole portrait.
    """
    crops = []
    for i in range(count):
        source = photos[i % len(photos)]
        width, height = sizes[source]
        round_ = i // len(photos)
        scale = CROP_SCALES[round_ % len(CROP_SCALES)]
        if round_ > 0:
            scale *= float(rng.uniform(0.88, 1.0))  # avoid repeating identical boxes
        side = max(8, int(round(min(width, height) * scale)))
        if round_ == 0:
            left, top = (width - side) // 2, (height - side) // 2
        else:
            left = int(rng.integers(width - side + 1))
            top = int(rng.integers(height - side + 1))
        crops.append(Crop(f"{i:03d}_{scene_of(source)}", source, (left, top, left + side, top + side)))
    return crops


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)  # fast; size matters little
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DatasetError(f"{out} exists and is not empty (use --force to replace it)")


def make_dataset(
    look: str,
    out: Union[str, os.PathLike],
    seed: int = 0,
    *,
    size: int = 320,
    count: int = 48,
    test_count: Optional[int] = None,
    photos: Optional[Sequence[Path]] = None,
    force: bool = False,
    show_progress: bool = True,
) -> Path:
    """Write the dataset for ``look`` to ``out`` and return ``out``.

    ``count`` crops each for content (and paired A/B) and style, ``test_count`` (default
    ``max(8, count // 4)``) for the test split, all ``size`` x ``size`` RGB PNGs. ``photos``
    defaults to :func:`styleforge.train.samples.sample_photos`. Raises :class:`DatasetError` when
    ``out`` is non-empty (unless ``force``) or there are too few photos, ``ValueError`` for an
    unknown look.
    """
    look_info = get_look(look)
    if size < 16 or count < 1:
        raise ValueError(f"size must be >= 16 and count >= 1, got size={size} count={count}")
    test_count = max(8, count // 4) if test_count is None else int(test_count)
    out = Path(out)
    _prepare_out(out, force)
    photos = sorted(Path(p) for p in (sample_photos() if photos is None else photos))
    rng = np.random.default_rng(seed)
    groups = split_scenes(photos, rng)
    decoded = {p: to_uint8_array(open_image(p).rgb) for g in groups.values() for p in g}
    sizes = {p: (a.shape[1], a.shape[0]) for p, a in decoded.items()}
    plans = {
        "content": plan_crops("content", groups["content"], count, rng, sizes),
        "style": plan_crops("style", groups["style"], count, rng, sizes),
        "test": plan_crops("test", groups["test"], test_count, rng, sizes),
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files: dict[str, dict] = {}
    jobs = [(group, crop) for group, crops in plans.items() for crop in crops]
    try:
        for group, crop in progress(jobs, total=len(jobs), desc=f"make-dataset {look}", disable=not show_progress):
            left, top, right, bottom = crop.box
            cut = Image.fromarray(decoded[crop.source][top:bottom, left:right])
            img = to_uint8_array(cut.resize((size, size), Image.Resampling.LANCZOS))
            name = f"{crop.name}.png"
            record = {"source": crop.source.name, "box": list(crop.box)}
            if group == "content":
                plain, looked = _png(img), _png(apply_look(look, img))
                for rel, data in (("content", plain), ("paired/A", plain), ("paired/B", looked)):
                    _write(tmp / rel / name, data)
                    files[f"{rel}/{name}"] = record
            elif group == "style":
                _write(tmp / "style" / name, _png(apply_look(look, img)))
                files[f"style/{name}"] = record
            else:
                _write(tmp / "test/input" / name, _png(img))
                _write(tmp / "test/target" / name, _png(apply_look(look, img)))
                files[f"test/input/{name}"] = files[f"test/target/{name}"] = record
        meta = {
            "format": FORMAT,
            "look": look,
            "look_kind": look_info.kind,
            "look_description": look_info.description,
            "seed": seed,
            "size": size,
            "counts": {"content": count, "style": count, "paired": count, "test": test_count},
            "sources": {group: [p.name for p in paths] for group, paths in groups.items()},
            "layout": {
                "content": "content/ - unlooked crops of the content photos (model inputs)",
                "style": "style/ - looked crops of the style photos (disjoint from content)",
                "paired": "paired/A, paired/B - content crops and the same crops with the look",
                "test": "test/input, test/target - held-out photos and their looked ground truth",
            },
            "files": files,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
