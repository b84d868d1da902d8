"""Score image-to-image methods against ground truth on a held-out folder.

A *method* is any callable ``uint8 [H, W, 3] -> uint8 [H, W, 3]``: the identity, a classical
colour transfer, a PyTorch generator, or a runtime :class:`~styleforge.runtime.Stylizer`.
Scores are PSNR / SSIM / CIEDE2000 (``styleforge.runtime.metrics``) averaged over the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from styleforge.atomic import replacing
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.runtime.metrics import delta_e2000, pooled_psnr, psnr, ssim
from styleforge.train.whole_photo import stylize_array

Method = Callable[[np.ndarray], np.ndarray]


def load_pairs(input_dir: Path, target_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, input, target)`` uint8 HWC triples for files with the same stem in both folders."""
    targets = {p.stem: p for p in list_images(target_dir)}
    pairs = []
    for path in list_images(input_dir):
        if path.stem in targets:
            source = to_uint8_array(open_image(path).rgb)
            target = to_uint8_array(open_image(targets[path.stem]).rgb)
            pairs.append((path.stem, source, target))
    if not pairs:
        raise ValueError(f"no matching input/target images in {input_dir} and {target_dir}")
    return pairs


def score_methods(
    methods: dict[str, Method], pairs: Sequence[tuple[str, np.ndarray, np.ndarray]]
) -> tuple[dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """Run every method on every input; returns (metrics per method, outputs per method).

    PSNR is the PSNR of the pooled MSE over the images; SSIM and ΔE2000 are means.
    """
    scores: dict[str, dict[str, float]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    for name, method in methods.items():
        rows, outs = [], []
        for _, source, target in pairs:
            out = np.asarray(method(source), dtype=np.uint8)
            if out.shape != target.shape:
                raise ValueError(f"method {name!r} returned {out.shape}, expected {target.shape}")
            rows.append((psnr(out, target), ssim(out, target), delta_e2000(out, target)))
            outs.append(out)
        mean = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
        psnr_all = pooled_psnr([r[0] for r in rows])  # PSNR of the pooled MSE, as the distill report
        scores[name] = {"psnr": psnr_all, "ssim": float(mean[1]), "delta_e2000": float(mean[2])}
        outputs[name] = outs
    return scores, outputs


def torch_method(generator, device: str = "cpu") -> Method:
    """Wrap a PyTorch generator ([-1,1] NCHW in/out) as a uint8 HWC method (padded to its stride)."""

    generator = generator.to(device).eval()
    return lambda rgb: stylize_array(generator, rgb, device)


def markdown_table(scores: dict[str, dict[str, float]], title: str = "") -> str:
    """Scores as a Markdown table (PSNR and SSIM higher is better, ΔE2000 lower is better)."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| method | PSNR (dB) ↑ | SSIM ↑ | ΔE2000 ↓ |", "|---|---:|---:|---:|"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['delta_e2000']:.2f} |")
    return "\n".join(lines) + "\n"


def _wrap(draw, text: str, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` px in ``draw``'s font (words kept whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def save_comparison_grid(
    columns: dict[str, list[np.ndarray]], path: Path, cell: int = 256, max_rows: int = 4
) -> Path:
    """Save a grid image (PNG, or JPEG when ``path`` ends in .jpg/.jpeg): one row per image
    (uint8 HWC RGB), one labelled column per method (inputs first), each photo fitted in a
    ``cell`` px square; labels wrap to the column's width."""
    from PIL import Image, ImageDraw

    names = list(columns)
    n_rows = min(max_rows, min(len(v) for v in columns.values()))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [_wrap(measure, name, cell - 8) for name in names]
    line_h = 12
    label_h = 10 + line_h * max(len(lines) for lines in labels)
    grid = Image.new("RGB", (cell * len(names), label_h + cell * n_rows), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(names):
        for i, line in enumerate(labels[c]):
            draw.text((c * cell + 4, 4 + i * line_h), line, fill="black")
        for r in range(n_rows):
            img = Image.fromarray(columns[name][r])
            img.thumbnail((cell, cell))
            grid.paste(img, (c * cell + (cell - img.width) // 2, label_h + r * cell + (cell - img.height) // 2))
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
    with replacing(path) as tmp:
        grid.save(tmp, format="JPEG", quality=85) if jpeg else grid.save(tmp, format="PNG")
    return path
