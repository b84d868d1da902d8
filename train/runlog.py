"""Run logging: a JSON-lines scalar log, the loss-curve plot and sample image grids.

Generic on purpose: GAN training and distillation both write through these three functions.
Every file a user looks at is written atomically (temp file in the same folder, then rename).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from styleforge.atomic import write_bytes
from styleforge.train.tensors import tensor_to_image

LOG_FILE = "log.jsonl"
# Keys of a log line that are not curves to plot.
_NOT_PLOTTED = {"step", "time", "elapsed_s", "lr_g", "lr_d", "lr", "images_per_s"}


def read_log(jsonl_path: Union[str, Path]) -> list[dict[str, Any]]:
    """All complete lines of a log (a torn last line, e.g. after a crash, is skipped)."""
    path = Path(jsonl_path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RunLogger:
    """Appends ``{"step": ..., **scalars}`` lines to ``RUN/log.jsonl``.

    ``resume_from=N`` keeps the lines with ``step <= N`` and drops the rest, so a resumed run's
    log reads like an uninterrupted one; ``resume_from=None`` starts a fresh log.
    """

    def __init__(self, run_dir: Union[str, Path], resume_from: Optional[int] = None,
                 filename: str = LOG_FILE):
        self.path = Path(run_dir) / filename
        kept = [r for r in read_log(self.path) if resume_from is not None and r.get("step", 0) <= resume_from]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
        write_bytes(self.path, text.encode("utf-8"))

    def log(self, step: int, **scalars: float) -> dict[str, Any]:
        row = {"step": int(step)}
        for key, value in scalars.items():
            value = float(value)
            row[key] = value if math.isfinite(value) else None  # JSON has no NaN/inf
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
        return row


def plot_losses(jsonl_path: Union[str, Path], png_path: Union[str, Path]) -> Optional[Path]:
    """Draw every scalar of the log against the step into ``png_path`` (Agg backend).

    Returns the path, or None when the log has nothing to plot yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(jsonl_path)
    keys = sorted({k for r in rows for k, v in r.items() if k not in _NOT_PLOTTED and v is not None})
    if not rows or not keys:
        return None
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys) + 0.6), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2)
        ax.set_ylabel(key, rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(Path(jsonl_path).parent.name or "losses", fontsize=9)
    fig.tight_layout()
    png_path = Path(png_path)
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    write_bytes(png_path, buffer.getvalue())
    return png_path


def tensor_to_uint8(image) -> Any:
    """``Tensor[3, H, W]`` in ``[-1, 1]`` -> numpy ``uint8 [H, W, 3]``."""

    return tensor_to_image(image)


def save_image_grid(
    rows: Sequence[Sequence[Any]],
    path: Union[str, Path],
    col_labels: Optional[Sequence[str]] = None,
    pad: int = 2,
) -> Path:
    """Save a grid of images; ``rows[r][c]`` is a ``Tensor[3, H, W]`` in ``[-1, 1]``.

    Cells are placed on a white canvas at the size of the largest cell; ``col_labels`` are
    written above the columns.
    """
    import io

    from PIL import Image, ImageDraw

    cells = [[tensor_to_uint8(t) for t in row] for row in rows]
    if not cells or not cells[0]:
        raise ValueError("save_image_grid needs at least one image")
    n_cols = max(len(r) for r in cells)
    cell_h = max(c.shape[0] for r in cells for c in r)
    cell_w = max(c.shape[1] for r in cells for c in r)
    label_h = 14 if col_labels else 0
    width = n_cols * (cell_w + pad) + pad
    height = label_h + len(cells) * (cell_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(col_labels or []):
        draw.text((pad + c * (cell_w + pad) + 2, 1), str(label), fill=(0, 0, 0))
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            canvas.paste(Image.fromarray(cell), (pad + c * (cell_w + pad), label_h + pad + r * (cell_h + pad)))
    path = Path(path)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())
    return path
