"""The distillation report: what the student costs and how closely it keeps the teacher's look.

``report.json`` holds params and MACs at 512x512 for teacher and student, and student-vs-teacher
PSNR / SSIM / CIEDE2000 on held-out photos at their full size (downscaled only above
``heldout_max_side``; padded to the networks' stride and cropped back), plus teacher-vs-target
and student-vs-target PSNR where ground-truth targets exist (a dataset's ``test/target``).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from styleforge.atomic import write_text
from styleforge.photo.album import album_photos
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.runtime.metrics import all_metrics, pooled_psnr, psnr
from styleforge.train.models.profile import count_macs, count_params
from styleforge.train.whole_photo import pad_multiple, stylize_array

REPORT_SIZE = (512, 512)


def model_cost(model: nn.Module, size: tuple[int, int] = REPORT_SIZE) -> dict[str, Any]:
    """``{"params", "macs", "gmacs"}``; MACs are None where hooks cannot see the layers (TorchScript)."""

    params = count_params(model)
    try:
        macs = count_macs(model, size=size)
    except Exception:  # an imported teacher may not run on a zero image of this size
        macs = 0
    macs = macs or None  # a scripted model's submodules run no hooks: 0 means "unknown"
    return {"params": int(params), "macs": macs, "gmacs": round(macs / 1e9, 4) if macs else None,
            "size": list(size)}


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def default_heldout(content_dir: Path, train_paths: list[Path]) -> tuple[list[Path], str, Optional[Path]]:
    """Held-out photos when none are given: ``(paths, source, target_dir or None)``.

    A dataset made by ``make-dataset`` has ``test/input`` (and ``test/target``) beside the content
    folder; otherwise the shipped album's photos not used for training (same name or same bytes).
    """
    test_input = Path(content_dir).parent / "test" / "input"
    if test_input.is_dir() and list_images(test_input):
        target = test_input.parent / "target"
        return list_images(test_input), str(test_input), target if target.is_dir() else None

    used_names = {p.stem for p in train_paths}
    used_bytes = {_digest(p) for p in train_paths}
    album = album_photos()
    # Leave out whole scene groups: a training photo's near-duplicate is not a held-out photo.
    used_groups = {a.group for a in album if a.path.stem in used_names or _digest(a.path) in used_bytes}
    photos = [a.path for a in album if a.group not in used_groups]
    return photos, "album photos minus the scene groups trained on", None


def _load(path: Path, max_side: int) -> np.ndarray:
    """uint8 ``[H, W, 3]``, downscaled so the longer side is at most ``max_side``."""
    from PIL import Image

    img = open_image(path).rgb
    scale = max_side / max(img.size)
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    return to_uint8_array(img)


def _run_full(model: nn.Module, rgb: np.ndarray, multiple: int, device: torch.device) -> np.ndarray:
    """Run ``model`` on a whole photo: pad (edge-replicate) to ``multiple``, then crop back."""
    return stylize_array(model, rgb, device, multiple=multiple, mode="replicate")


def heldout_metrics(teacher: nn.Module, student: nn.Module, paths: list[Path], target_dir: Optional[Path],
                    max_side: int, multiple: int, device: torch.device) -> dict[str, Any]:
    """Student vs teacher (and both vs targets) on whole held-out photos; summaries and per-image rows.

    PSNR summaries are the PSNR of the mean squared error over the images; SSIM and CIEDE2000 are means.
    """

    rows = []
    for path in paths:
        rgb = _load(path, max_side)
        teacher_out = _run_full(teacher, rgb, multiple, device)
        student_out = _run_full(student, rgb, multiple, device)
        scores = all_metrics(student_out, teacher_out)
        row = {"image": path.name, "size": [rgb.shape[1], rgb.shape[0]],
               **{k: round(v, 4) for k, v in scores.items() if k != "max_abs"}}
        target_path = _matching(target_dir, path) if target_dir else None
        if target_path is not None:
            target = _load(target_path, max_side)
            if target.shape == rgb.shape:
                row["teacher_vs_target_psnr"] = round(psnr(teacher_out, target), 4)
                row["student_vs_target_psnr"] = round(psnr(student_out, target), 4)
        rows.append(row)
    summary: dict[str, Any] = {"images": len(rows)}
    for key in ("psnr", "ssim", "delta_e2000", "teacher_vs_target_psnr", "student_vs_target_psnr"):
        values = [r[key] for r in rows if key in r]
        if values and key.endswith("psnr"):
            summary[key] = round(pooled_psnr(values), 4)  # PSNR of the pooled MSE, not mean dB
        elif values:
            summary[key] = round(float(np.mean(values)), 4)
    summary["per_image"] = rows
    return summary


def _matching(folder: Path, path: Path) -> Optional[Path]:
    for candidate in list_images(folder):
        if candidate.stem == path.stem:
            return candidate
    return None


def build_report(teacher, teacher_info: dict, student: nn.Module, cfg, content_dir: Path,
                 train_paths: list[Path], heldout: Optional[Path], device: torch.device) -> dict[str, Any]:
    """Costs of both networks and the held-out fidelity of the student (see module docstring)."""
    inner = getattr(teacher, "inner", teacher)
    teacher_cost = {"arch": teacher_info.get("arch"), **model_cost(inner)}
    student_cost = {"arch": getattr(student, "arch_name", "mobile"), "preset": cfg.student,
                    **model_cost(student)}
    if heldout is not None:
        folder = Path(heldout)
        paths, source = list_images(folder), str(folder)
        target = folder.parent / "target" if folder.name == "input" else None
        target = target if target is not None and target.is_dir() else None
    else:
        paths, source, target = default_heldout(content_dir, train_paths)
    paths = paths[: cfg.heldout_limit]
    multiple = math.lcm(pad_multiple(student), pad_multiple(teacher))
    fidelity = heldout_metrics(teacher, student, paths, target, cfg.heldout_max_side, multiple, device)
    report = {
        "teacher": teacher_cost,
        "student": student_cost,
        "mac_ratio": (round(teacher_cost["macs"] / student_cost["macs"], 2)
                      if teacher_cost["macs"] and student_cost["macs"] else None),
        "param_ratio": round(teacher_cost["params"] / max(1, student_cost["params"]), 2),
        "heldout": {"source": source, "targets": str(target) if target else None,
                    "max_side": cfg.heldout_max_side, **fidelity},
    }
    return report


def write_report(path: Path, report: dict) -> Path:
    write_text(Path(path), json.dumps(report, indent=2) + "\n")
    return Path(path)


def format_report(report: dict) -> str:
    """A few human lines for the terminal."""
    t, s, h = report["teacher"], report["student"], report["heldout"]

    def cost(c):
        gmacs = f"{c['gmacs']:.3f} GMAC" if c.get("gmacs") is not None else "? GMAC"
        return f"{c['params'] / 1e6:.3f} M params, {gmacs} at {c['size'][0]}x{c['size'][1]}"

    lines = [f"teacher ({t['arch']}): {cost(t)}", f"student ({s['arch']} {s['preset']}): {cost(s)}"]
    if report.get("mac_ratio"):
        lines.append(f"student is {report['mac_ratio']}x cheaper in MACs, {report['param_ratio']}x smaller")
    if h.get("images"):
        lines.append(f"student vs teacher on {h['images']} held-out photos ({h['source']}): "
                     f"PSNR {h['psnr']:.2f} dB, SSIM {h['ssim']:.4f}, CIEDE2000 {h['delta_e2000']:.2f}")
    if "student_vs_target_psnr" in h:
        lines.append(f"vs ground truth: teacher {h['teacher_vs_target_psnr']:.2f} dB, "
                     f"student {h['student_vs_target_psnr']:.2f} dB")
    return "\n".join(lines)
