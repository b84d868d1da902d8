"""``styleforge make-dataset``: a dataset for one built-in look from real photos, split by scene.

Photos come from the album that ships with styleforge (:mod:`styleforge.photo.album`, 23 photos in 11
scene groups) or from a folder of your own (grouped by ``groups.json`` or EXIF time, see
:mod:`styleforge.photo.scenes`). Whole scene groups are dealt, seeded, to the sides of the split, so no
scene (and no near-duplicate) is on two sides:

* **content** -> ``content/`` (the model's inputs) and ``paired/A`` + ``paired/B`` (the same photos
  and their looked versions, for paired training);
* **style** -> ``style/`` with the look applied (what unpaired training imitates);
* **test** -> ``test/input`` and ``test/target`` = the look applied to them (ground truth), at
  least two groups with people and four photos;
* **validation** (optional, whole groups of neither side) -> ``val/content`` unlooked and
  ``val/style`` looked, for model selection without touching the test photos.

Each photo is stored once, whole, downscaled so its short side is ``size`` (never upscaled), as a
PNG; the look is applied at that resolution. Random crops and flips are the training loader's
augmentation, not extra photos. ``dataset.json`` records the look, the seed, the split (photos
and groups per side, the members of each group, anything that could not be checked) and every
file's source. The folder is written atomically and the same seed gives the same files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from styleforge.atomic import replace_dir
from styleforge.errors import StyleforgeError
from styleforge.photo.looks import apply_look, get_look
from styleforge.photo.scenes import (
    GROUPS_FILE,
    Grouping,
    SplitError,
    album_grouping,
    group_folder,
    split_groups,
)
from styleforge.progress import progress
from styleforge.runtime.imageio import open_image, to_uint8_array

FORMAT = "styleforge-dataset/2"


class DatasetError(StyleforgeError, ValueError):
    """A dataset that cannot be used: missing or empty folder, no readable images, no pairs."""


# side of the split -> (folder, look applied?) for each copy written; content also feeds paired/.
OUTPUTS = {
    "content": (("content", False), ("paired/A", False), ("paired/B", True)),
    "style": (("style", True),),
    "test": (("test/input", False), ("test/target", True)),
    "val_content": (("val/content", False),),
    "val_style": (("val/style", True),),
}
LAYOUT = {
    "content": "content/ - unlooked content photos (model inputs)",
    "style": "style/ - looked style photos (scene groups disjoint from content)",
    "paired": "paired/A, paired/B - the content photos and the same photos with the look",
    "test": "test/input, test/target - held-out photos and their looked ground truth",
    "val": "val/content, val/style - validation groups of neither side: unlooked and looked",
}


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


def _resized(path: Path, size: int) -> np.ndarray:
    """The upright photo, downscaled so its short side is ``size`` (smaller photos kept as they are)."""
    rgb = open_image(path).rgb
    scale = size / min(rgb.size)
    if scale < 1.0:
        new = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return to_uint8_array(rgb)


def _file_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Output PNG name per photo: its stem, made unique when two photos share one."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        name, k = f"{path.stem}.png", 1
        while name in used:
            name, k = f"{path.stem}_{k}.png", k + 1
        used.add(name)
        names[path] = name
    return names


def make_dataset(
    look: str,
    out: Union[str, os.PathLike],
    seed: int = 0,
    *,
    size: int = 320,
    photos: Optional[Sequence[Path]] = None,
    photos_dir: Optional[Path] = None,
    val_groups: int = 1,
    force: bool = False,
    show_progress: bool = True,
) -> Path:
    """Write the dataset for ``look`` to ``out`` and return ``out``.

    ``photos`` defaults to the shipped album (scene groups and people from its manifest); given
    photos are grouped by ``photos_dir/groups.json`` or EXIF time. ``val_groups`` scene groups per
    validation side (0: no validation split). Raises :class:`DatasetError` when ``out`` is
    non-empty (unless ``force``) or there are too few scenes, ``ValueError`` for an unknown look.
    """
    look_info = get_look(look)
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    out = Path(out)
    _prepare_out(out, force)
    try:
        grouping: Grouping = (
            album_grouping() if photos is None else group_folder([Path(p) for p in photos], photos_dir)
        )
        split = split_groups(grouping, seed, val_groups=val_groups)
    except SplitError as err:
        raise DatasetError(str(err)) from None
    jobs = [(side, path) for side in OUTPUTS for path in split.photos(side)]
    names = _file_names([path for _, path in jobs])

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files: dict[str, dict] = {}
    try:
        for side, path in progress(jobs, total=len(jobs), desc=f"make-dataset {look}", disable=not show_progress):
            plain = _resized(path, size)
            looked = apply_look(look, plain) if any(lk for _, lk in OUTPUTS[side]) else None
            record = {"source": path.name, "side": side, "size": [plain.shape[1], plain.shape[0]]}
            for folder, with_look in OUTPUTS[side]:
                rel = f"{folder}/{names[path]}"
                _write(tmp / rel, _png(looked if with_look else plain))
                files[rel] = record
        # Each unpaired folder names its scene groups, so a learner weighs two photos of one
        # scene as one piece of evidence (styleforge.photo.scenes.group_folder reads it back).
        for side in ("content", "style", "val_content", "val_style"):
            if split.sides[side]:
                folder = OUTPUTS[side][0][0]
                members = {g.name: [names[p] for p in g.photos] for g in split.sides[side]}
                people = {g.name: bool(g.people) for g in split.sides[side] if g.people is not None}
                _write(tmp / folder / GROUPS_FILE, (json.dumps({"groups": members, "people": people}, indent=1)
                                                     + "\n").encode())
        split_json = split.to_json()
        counts = {side: info["photos"] for side, info in split_json["sides"].items()}
        meta = {
            "format": FORMAT,
            "look": look,
            "look_kind": look_info.kind,
            "look_description": look_info.description,
            "seed": seed,
            "size": size,
            "photos_from": "styleforge album (data/album, CC-BY-SA-4.0)" if photos is None else str(photos_dir or "given photos"),
            "counts": {**counts, "paired": counts["content"]},
            "split": split_json,
            "sources": {side: [p.name for p in split.photos(side)] for side in OUTPUTS},
            "layout": LAYOUT,
            "files": files,
        }
        if photos is None:
            from styleforge.photo.album import CREDIT

            meta["credit"] = f"{CREDIT}; the images in this dataset are adaptations under the same licence"
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
