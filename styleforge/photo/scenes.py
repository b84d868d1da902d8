"""Scene groups and scene-disjoint data splits.

Photos of one scene (the same subject on the same day, bursts, near-duplicates) look alike: if
one lands in training and its twin in the test set, the test set flatters the model. So photos
are first put into *scene groups* and every split deals out whole groups, never single photos.

Groups come from the album's manifest (:func:`album_grouping`), or, for a folder of your own
photos (:func:`group_folder`), from an optional ``groups.json`` in that folder or from EXIF
``DateTimeOriginal`` (photos taken within ``gap_minutes`` of the previous one share a group).
:func:`split_groups` then deals the groups, seeded, into ``content`` / ``style`` / ``test`` and an
optional validation pair ``val_content`` / ``val_style``.

Torch-free: numpy for the seeded shuffle, Pillow (imported when a folder is grouped) for EXIF.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.photo.album import album_photos

GROUPS_FILE = "groups.json"
GAP_MINUTES = 30.0
TEST_MIN_PHOTOS = 4
TEST_MIN_PEOPLE_GROUPS = 2
VAL_MAX_GROUP_PHOTOS = 2  # validation takes small groups, so it costs training few photos
SIDES = ("content", "style", "test", "val_content", "val_style")
_EXIF_IFD, _DATETIME_ORIGINAL = 0x8769, 0x9003


class SplitError(StyleforgeError, ValueError):
    """Too few scene groups to split, or a ``groups.json`` that cannot be used."""


@dataclass(frozen=True)
class SceneGroup:
    """Photos of one scene. ``people`` is ``None`` when nobody said whether people are shown."""

    name: str
    photos: tuple[Path, ...]
    people: Optional[bool] = None

    def __len__(self) -> int:
        return len(self.photos)


@dataclass(frozen=True)
class Grouping:
    """Photos in scene groups, how they were grouped, and what could not be checked."""

    groups: tuple[SceneGroup, ...]
    method: str  # "album manifest" | "groups.json" | "EXIF DateTimeOriginal" | mixes of them
    notes: tuple[str, ...] = ()


@dataclass
class Split:
    """Whole scene groups per side (see :data:`SIDES`; the validation sides may be empty)."""

    sides: dict[str, list[SceneGroup]]
    seed: int
    grouping: Grouping
    rules: dict
    notes: list[str] = field(default_factory=list)

    def photos(self, side: str) -> list[Path]:
        return [p for g in self.sides[side] for p in g.photos]

    def to_json(self) -> dict:
        """Per side: photo and group counts, groups with people, and the members of each group."""
        sides = {}
        for side, groups in self.sides.items():
            sides[side] = {
                "photos": sum(len(g) for g in groups),
                "groups": len(groups),
                "people_groups": sum(bool(g.people) for g in groups),
                "members": {g.name: [p.name for p in g.photos] for g in groups},
            }
        return {
            "seed": self.seed,
            "grouping": self.grouping.method,
            "rules": self.rules,
            "sides": sides,
            "notes": list(self.grouping.notes) + self.notes,
        }


# ---------------------------------------------------------------------------------------------
# grouping


def album_grouping() -> Grouping:
    """The shipped album in the scene groups and people flags of its manifest."""

    by_group: dict[str, list] = {}
    for photo in album_photos():
        by_group.setdefault(photo.group, []).append(photo)
    groups = tuple(
        SceneGroup(name, tuple(p.path for p in members), any(p.people for p in members))
        for name, members in sorted(by_group.items())
    )
    return Grouping(groups, "album manifest")


def exif_datetime(path: Path) -> Optional[dt.datetime]:
    """EXIF ``DateTimeOriginal`` of a photo, or ``None`` (no EXIF, no tag, unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            value = img.getexif().get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    except Exception:
        return None
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def group_by_time(photos: Sequence[Path], gap_minutes: float = GAP_MINUTES) -> tuple[list[SceneGroup], list[Path]]:
    """Group photos whose EXIF times are within ``gap_minutes`` of the previous photo (a chain).

    Returns ``(groups, photos_without_a_time)``; groups are named after their first photo.
    """
    timed, untimed = [], []
    for path in sorted(photos):
        when = exif_datetime(path)
        (untimed.append(path) if when is None else timed.append((when, path)))
    timed.sort()
    chains: list[list[Path]] = []
    last: Optional[dt.datetime] = None
    for when, path in timed:
        if last is None or (when - last).total_seconds() > gap_minutes * 60:
            chains.append([])
        chains[-1].append(path)
        last = when
    groups = [SceneGroup(f"{c[0].stem}+{len(c) - 1}" if len(c) > 1 else c[0].stem, tuple(c)) for c in chains]
    return groups, untimed


def _read_groups_file(folder: Path, names: set[str]) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """``groups.json``: ``{"groups": {"name": ["file", ...]}, "people": {"name": true|false}}``."""
    path = folder / GROUPS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        groups = {str(k): [str(f) for f in v] for k, v in data["groups"].items()}
        people = {str(k): bool(v) for k, v in data.get("people", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SplitError(f'{path}: expected {{"groups": {{"name": ["file", ...]}}, "people": {{...}}}} ({err})') from None
    seen: dict[str, str] = {}
    for group, files in groups.items():
        for name in files:
            if name not in names:
                raise SplitError(f"{path}: group {group!r} lists {name!r}, which is not a photo in {folder}")
            if name in seen:
                raise SplitError(f"{path}: {name!r} is in groups {seen[name]!r} and {group!r}")
            seen[name] = group
    unknown = sorted(set(people) - set(groups))
    if unknown:
        raise SplitError(f"{path}: people given for unknown groups {unknown}")
    return groups, people


def group_folder(photos: Sequence[Path], folder: Optional[Path] = None, gap_minutes: float = GAP_MINUTES) -> Grouping:
    """Scene groups for your own photos: ``folder/groups.json`` where present, else EXIF times.

    Photos not listed in ``groups.json`` are grouped by EXIF time; a photo without an EXIF time
    is a group of its own, and the returned notes say so (near-duplicates among such photos can
    not be detected). Whether photos show people is unknown unless ``groups.json`` says it.
    """
    photos = sorted(Path(p) for p in photos)
    notes: list[str] = []
    listed: list[SceneGroup] = []
    rest = photos
    methods = []
    if folder is not None and (Path(folder) / GROUPS_FILE).is_file():
        by_name = {p.name: p for p in photos}
        named, people = _read_groups_file(Path(folder), set(by_name))
        listed = [
            SceneGroup(name, tuple(sorted(by_name[f] for f in files)), people.get(name))
            for name, files in sorted(named.items())
            if files
        ]
        in_file = {f for files in named.values() for f in files}
        rest = [p for p in photos if p.name not in in_file]
        methods.append(GROUPS_FILE)
        if rest:
            notes.append(f"{len(rest)} photo(s) not in {GROUPS_FILE}: grouped by EXIF time")
    timed_groups, untimed = group_by_time(rest, gap_minutes) if rest else ([], [])
    if rest:
        methods.append(f"EXIF DateTimeOriginal within {gap_minutes:g} min")
    if untimed:
        notes.append(
            f"grouping not checked for {len(untimed)} photo(s) without EXIF DateTimeOriginal "
            f"(each is its own group; near-duplicates among them may straddle splits): "
            + ", ".join(p.name for p in untimed)
        )
    groups = listed + timed_groups + [SceneGroup(p.stem, (p,)) for p in untimed]
    names = [g.name for g in groups]
    if len(set(names)) != len(names):  # unique names: suffix repeats with their index
        groups = [SceneGroup(f"{g.name}#{i}", g.photos, g.people) for i, g in enumerate(groups)]
    if any(g.people is None for g in groups):
        notes.append("people rule not checked: nobody said which photos show people (add \"people\" to groups.json)")
    return Grouping(tuple(groups), " + ".join(methods), tuple(notes))


# ---------------------------------------------------------------------------------------------
# splitting


def split_groups(
    grouping: Grouping,
    seed: int = 0,
    *,
    test_min_photos: int = TEST_MIN_PHOTOS,
    test_min_people_groups: int = TEST_MIN_PEOPLE_GROUPS,
    val_groups: int = 1,
) -> Split:
    """Deal whole scene groups to content / style / test / val_content / val_style, seeded.

    1. **test**: groups with people first (seeded order) until ``test_min_people_groups`` of them,
       then any groups until ``test_min_photos`` photos; it always leaves two groups to train on.
    2. **validation**: ``val_groups`` groups per side from the small ones (at most
       :data:`VAL_MAX_GROUP_PHOTOS` photos, when there are enough), only when each training side
       keeps at least two groups and two groups with people stay for training.
    3. **content / style**: people groups, then the others, largest first (ties in seeded order),
       each to the side with fewer photos, so both sides see similar scenes and similar counts.

    Raises :class:`SplitError` with fewer than 3 groups. Targets that cannot be met are reported
    in ``split.notes``.
    """
    groups = sorted(grouping.groups, key=lambda g: g.name)
    if len(groups) < 3:
        raise SplitError(
            f"need photos of at least 3 different scenes to split, found {len(groups)} scene group(s)"
        )
    rng = np.random.default_rng(seed)
    order = [groups[int(i)] for i in rng.permutation(len(groups))]
    people_known = all(g.people is not None for g in groups)
    sides: dict[str, list[SceneGroup]] = {side: [] for side in SIDES}
    notes: list[str] = []

    def left() -> list[SceneGroup]:
        taken = {g.name for side in sides.values() for g in side}
        return [g for g in order if g.name not in taken]

    # 1. test
    test = sides["test"]
    for g in [g for g in order if g.people] if people_known else []:
        if sum(bool(t.people) for t in test) >= test_min_people_groups or len(left()) <= 2:
            break
        test.append(g)
    for g in left():
        if sum(len(t) for t in test) >= test_min_photos or len(left()) <= 2:
            break
        test.append(g)
    if sum(len(t) for t in test) < test_min_photos:
        notes.append(f"test has {sum(len(t) for t in test)} photo(s), fewer than {test_min_photos}: too few groups")
    if people_known and sum(bool(t.people) for t in test) < test_min_people_groups:
        notes.append(f"test has fewer than {test_min_people_groups} groups with people")

    # 2. validation
    if val_groups > 0:
        rest = left()
        people_rest = sum(bool(g.people) for g in rest)
        if len(rest) - 2 * val_groups < 4:
            notes.append(f"no validation split: {len(rest)} groups left, training needs 4 besides validation")
        else:
            small = [g for g in rest if len(g) <= VAL_MAX_GROUP_PHOTOS]
            candidates = small if len(small) >= 2 * val_groups else sorted(rest, key=len)
            for g in candidates:
                if len(sides["val_style"]) + len(sides["val_content"]) >= 2 * val_groups:
                    break
                if people_known and g.people and people_rest <= 2:
                    continue  # keep two groups with people for content and style
                side = "val_style" if len(sides["val_style"]) <= len(sides["val_content"]) else "val_content"
                sides[side].append(g)
                people_rest -= bool(g.people)
            if not (sides["val_style"] and sides["val_content"]):
                sides["val_style"], sides["val_content"] = [], []
                notes.append("no validation split: no small groups to spare on both sides")

    # 3. content / style
    rest = left()
    ranked = sorted(rest, key=lambda g: (not g.people, -len(g)))  # stable: seeded order among ties
    for g in ranked:
        counts = {s: sum(len(x) for x in sides[s]) for s in ("content", "style")}
        side = "content" if (counts["content"], len(sides["content"])) <= (counts["style"], len(sides["style"])) else "style"
        sides[side].append(g)
    rules = {
        "test_min_photos": test_min_photos,
        "test_min_people_groups": test_min_people_groups if people_known else None,
        "val_groups_per_side": val_groups,
        "val_max_group_photos": VAL_MAX_GROUP_PHOTOS,
    }
    return Split(sides, seed, grouping, rules, notes)
