"""Is a style model degenerate? Collapse, structure loss and do-nothing checks on its outputs.

Torch-free (numpy only), so training, distillation, export and eval-looks share one judge. Each
check compares a model's outputs with its own inputs, photo by photo, so no ground truth is
needed:

* **diversity**: how different the outputs are from one another, relative to how different the
  inputs are (mean pairwise distance of 16x16 thumbnails in 8-bit levels, luma and colour). A
  model that paints every photo the same (a flat blue image) scores near 0; a colour grade keeps
  most of the inputs' differences (noir, which drops colour by design, keeps the luma ones).
* **structure**: the mean absolute local correlation of output luma with input luma (the
  structure term of SSIM, 7x7 windows on textured windows only; an inverted image keeps it). Tone curves, colour grades, glow and toon keep
  it high; noise, checkerboards and smeared outputs do not.
* **change**: the mean absolute difference between output and input in 8-bit levels. Doing
  nothing is only degenerate when the two photo folders do differ (``expected_change``).

Thresholds were set from the built-in looks applied to the album (their ground truth, the worst
legitimate cases: toon and glow) and from constant, noise and shuffled-pixel models; see
``tests/test_verdict.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from styleforge.atomic import write_bytes
from styleforge.errors import StyleforgeError

MIN_DIVERSITY = 0.25  # outputs keep at least a quarter of the inputs' photo-to-photo differences
MIN_STRUCTURE = 0.45  # local luma correlation with the input
MIN_CHANGE_LEVELS = 0.75  # mean |output - input| below this is "did nothing"...
NOOP_WHEN_EXPECTED = 3.0  # ...when the folders differ by at least this (mean levels of the classical fit)
VERDICT_FILE = "verdict.json"
LUMA = np.array([0.299, 0.587, 0.114])


class DegenerateModelError(StyleforgeError, ValueError):
    """A model whose outputs failed a check; ``verdict`` says which, with the values."""

    def __init__(self, verdict: Verdict, where: str = ""):
        self.verdict = verdict
        super().__init__(verdict.message(where))


@dataclass(frozen=True)
class Verdict:
    """The checks' values and outcome. ``ok`` is False when any check failed (see ``failed``)."""

    diversity: float
    structure: float
    change_levels: float
    expected_change_levels: Optional[float]
    images: int
    failed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failed

    def message(self, where: str = "") -> str:
        if self.ok:
            return f"{where or 'model'}: passed the degeneracy checks ({self.summary()})"
        hints = {
            "collapse": (f"diversity {self.diversity:.2f} < {MIN_DIVERSITY}: the outputs barely differ "
                         "from photo to photo (mode collapse)"),
            "structure": (f"structure {self.structure:.2f} < {MIN_STRUCTURE}: the outputs lost the "
                          "photos' structure"),
            "no-op": (f"mean change {self.change_levels:.2f} levels < {MIN_CHANGE_LEVELS} although the "
                      f"folders differ by {self.expected_change_levels or 0:.1f}: the model does nothing"),
        }
        reasons = "; ".join(hints[name] for name in self.failed)
        return (f"{where or 'model'} is degenerate: {reasons}. Try another --seed, fewer --steps, "
                "a lower learning rate (--set optim.lr_g=...), or more photos; "
                "--allow-degenerate uses it anyway")

    def summary(self) -> str:
        return (f"diversity {self.diversity:.2f}, structure {self.structure:.2f}, "
                f"change {self.change_levels:.1f} levels, {self.images} photos")

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "failed": list(self.failed), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        keys = ("diversity", "structure", "change_levels", "expected_change_levels", "images")
        return cls(**{k: data.get(k) for k in keys}, failed=tuple(data.get("failed", ())),
                   notes=tuple(data.get("notes", ())))


def _thumb(img: np.ndarray, side: int = 16) -> np.ndarray:
    """Block-mean thumbnail ``[side, side, 3]`` float of a uint8 HWC image (crops the remainder)."""
    h, w = img.shape[:2]
    bh, bw = max(1, h // side), max(1, w // side)
    arr = img[: bh * side, : bw * side].astype(np.float64)
    if arr.shape[0] < side or arr.shape[1] < side:
        from PIL import Image

        arr = np.asarray(Image.fromarray(img).resize((side, side)), dtype=np.float64)
        return arr
    return arr.reshape(side, bh, side, bw, 3).mean(axis=(1, 3))


def _spread(images: Sequence[np.ndarray]) -> float:
    thumbs = np.stack([_thumb(im) for im in images]).reshape(len(images), -1)
    dists = [np.abs(thumbs[i] - thumbs[j]).mean() for i in range(len(thumbs)) for j in range(i + 1, len(thumbs))]
    return float(np.mean(dists)) if dists else 0.0


def _box(x: np.ndarray, k: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, size=k, mode="reflect")


def structure_similarity(inp: np.ndarray, out: np.ndarray, window: int = 7) -> float:
    """Mean absolute local correlation of luma (SSIM's structure term) over windows where the
    input is textured: 1 for any monotone tone change (or its inverse), ~0 for noise."""
    a = inp.astype(np.float64) @ LUMA
    b = out.astype(np.float64) @ LUMA
    ma, mb = _box(a, window), _box(b, window)
    va = np.clip(_box(a * a, window) - ma * ma, 0, None)
    vb = np.clip(_box(b * b, window) - mb * mb, 0, None)
    cov = _box(a * b, window) - ma * mb
    corr = np.abs(cov + 1.0) / (np.sqrt(va * vb) + 1.0)  # a negative (inverted) image keeps its structure
    textured = va > 4.0  # std above 2 levels: flat sky says nothing about structure
    return float(corr[textured].mean()) if textured.any() else 1.0


def assess(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    expected_change_levels: Optional[float] = None,
    allow_colour_drop: bool = True,
) -> Verdict:
    """Judge a model from ``outputs[i] = model(inputs[i])``, uint8 ``[H, W, 3]`` each (2+ photos).

    ``expected_change_levels``: how much the photo folders differ (e.g. the mean change of the
    classical fit); None skips the do-nothing check.
    """
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise ValueError(f"need 2+ (input, output) pairs, got {len(inputs)} and {len(outputs)}")
    notes = []
    spread_in = _spread(inputs)
    diversity = _spread(outputs) / spread_in if spread_in > 0 else 1.0
    if spread_in <= 0:
        notes.append("the inputs are identical: diversity not measured")
    structure = float(np.mean([structure_similarity(i, o) for i, o in zip(inputs, outputs)]))
    change = float(np.mean([np.abs(i.astype(np.int16) - o.astype(np.int16)).mean() for i, o in zip(inputs, outputs)]))
    failed = []
    if diversity < MIN_DIVERSITY:
        failed.append("collapse")
    if structure < MIN_STRUCTURE:
        failed.append("structure")
    if expected_change_levels is not None and expected_change_levels >= NOOP_WHEN_EXPECTED and change < MIN_CHANGE_LEVELS:
        failed.append("no-op")
    return Verdict(round(diversity, 4), round(structure, 4), round(change, 3),
                   None if expected_change_levels is None else round(float(expected_change_levels), 3),
                   len(inputs), tuple(failed), tuple(notes))


def weights_sha256(path: Union[str, os.PathLike]) -> str:
    """Hex sha256 of a weights file (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_folder(where: Union[str, os.PathLike]) -> Path:
    """The run folder of ``where``: the run itself, one of its checkpoint folders
    (``RUN/checkpoints/step_N``) or a weights file in one (never a folder above the run)."""
    folder = Path(where)
    if folder.is_file():
        folder = folder.parent
    while folder.name.startswith("step_") or folder.name == "checkpoints":
        folder = folder.parent
    return folder


def _key(run_dir: Path, path: Path) -> str:
    """A weights file's name in verdict.json: relative to the run (POSIX), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def write_verdict(run_dir: Path, verdict: Verdict, weights: Iterable[Union[str, os.PathLike]] = (), **extra) -> Path:
    """``RUN/verdict.json`` (atomic). ``weights``: the file(s) the verdict judged; their sha256 go
    into ``"weights": {"checkpoints/step_N/generator_ema.safetensors": "<hex>"}`` so a later
    reader can tell whether the verdict still speaks for the weights (:func:`bound_verdict`)."""

    path = Path(run_dir) / VERDICT_FILE
    hashes = {_key(run_dir, Path(w)): weights_sha256(w) for w in weights}
    record = {**verdict.to_dict(), **extra}
    if hashes:
        record["weights"] = hashes
    write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())
    return path


def _read_record(folder: Path) -> Optional[dict]:
    path = folder / VERDICT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        Verdict.from_dict(record)
    except (OSError, ValueError, TypeError):
        return None
    return record if isinstance(record, dict) else None


def read_verdict(run_dir: Path) -> Optional[Verdict]:
    """The verdict of a run, given the run folder, one of its checkpoint folders
    (``RUN/checkpoints/step_N``) or a weights file in one; None for older runs. Whether it still
    speaks for the weights is :func:`bound_verdict`'s question."""
    record = _read_record(run_folder(run_dir))
    return None if record is None else Verdict.from_dict(record)


@dataclass(frozen=True)
class StoredVerdict:
    """What ``RUN/verdict.json`` says about one weights file.

    ``verdict`` is the stored verdict when it judged ``weights_file`` exactly as it is now, else
    None; ``stale`` then says why it cannot be trusted (empty when the run has no verdict at all).
    """

    run_dir: Path
    verdict: Optional[Verdict]
    stale: str = ""


def bound_verdict(run: Union[str, os.PathLike], weights_file: Optional[Union[str, os.PathLike]]) -> StoredVerdict:
    """The stored verdict of ``run`` if it is bound to ``weights_file``'s current sha256."""
    folder = run_folder(run)
    record = _read_record(folder)
    if record is None:
        return StoredVerdict(folder, None)
    hashes = record.get("weights")
    if not isinstance(hashes, dict) or not hashes:
        return StoredVerdict(folder, None, "its verdict.json records no weights hash (an older run)")
    if weights_file is None or not Path(weights_file).is_file():
        return StoredVerdict(folder, None, "no weights file to check its verdict.json against")
    key = _key(folder, Path(weights_file))
    if key not in hashes:
        return StoredVerdict(folder, None, f"its verdict.json judged {', '.join(sorted(hashes))}, not {key}")
    actual = weights_sha256(weights_file)
    if actual != hashes[key]:
        return StoredVerdict(folder, None, f"{key} changed since its verdict (sha256 {actual[:12]}... "
                                           f"!= {str(hashes[key])[:12]}...)")
    return StoredVerdict(folder, Verdict.from_dict(record))
