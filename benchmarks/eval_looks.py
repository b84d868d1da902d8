"""Style-fidelity benchmark: how well is each built-in look learned, against ground truth.

For every look: build a dataset from the shipped photo album split by scene group (content,
style and test never share a scene), train the teacher, distill the student, export int8 TFLite,
train a paired teacher too, then score on the held-out split against the look's ground truth,
beside the identity and two classical baselines (Reinhard Lab mean/std transfer, histogram
matching). With 23 photos one split is noisy (several dB from one split to the next), so
``split_seeds`` repeats everything on other scene splits and reports the spread; every result
says how many photos and scene groups each side had.
Metrics as in the retouching literature (MIT-Adobe FiveK, PPR10K): PSNR, SSIM, CIEDE2000.

This module orchestrates the other stages through the CLI (each stage in its own process,
resumable); torch is only imported to score the PyTorch generators.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Optional, Sequence

from styleforge.benchmarks.scoring import (
    load_pairs,
    markdown_table,
    save_comparison_grid,
    score_methods,
    torch_method,
)
from styleforge.stages import Stages, single_thread_env

DEFAULT_LOOKS = ("film-warm", "noir", "teal-orange", "glow", "toon")
TONE_LOOKS = ("film-warm", "noir", "teal-orange", "glow")
CLASSICAL = (
    "reinhard (Lab mean/std)",
    "histogram match",
    "reinhard (set-to-set)",
    "histogram match (set-to-set)",
)


def run_look(
    look: str,
    root: Path,
    preset: str = "cpu",
    student: str = "small",
    export_size: int = 256,
    steps: Optional[int] = None,
    paired: bool = True,
    seed: int = 0,
    split_seed: Optional[int] = None,
) -> dict:
    """Build, train, distill, export and score one look; returns its result dict (also saved).

    ``seed`` seeds training; ``split_seed`` (default ``seed``) the dataset's scene split.
    """
    split_seed = seed if split_seed is None else split_seed
    stages = Stages(root)
    threads = single_thread_env()
    data, teacher, student_run, bundle, paired_run = (
        root / "data", root / "teacher", root / "student", root / "bundle", root / "paired",
    )
    step_args = ["--steps", str(steps)] if steps else []
    stages.run("dataset", ["make-dataset", "--look", look, "--out", data, "--seed", split_seed], [data / "dataset.json"])
    stages.run(
        "teacher",
        ["train", "--content", data / "content", "--style", data / "style", "--preset", preset,
         "--out", teacher, "--seed", seed, *step_args],
        [teacher],
        env=threads,
    )
    stages.run(
        "student",
        ["distill", "--teacher", teacher, "--content", data / "content", "--student", student,
         "--preset", preset, "--out", student_run, "--seed", seed, *step_args],
        [student_run],
        env=threads,
    )
    stages.run(
        "export",
        ["export", student_run, "--formats", "tflite", "--size", f"{export_size}x{export_size}",
         "--calib", data / "content", "--heldout", data / "test" / "input", "--out", bundle,
         # A measurement, not a shipment: keep int8 models the ship gate (30 dB) would refuse,
         # and report their figure and verdict beside the ground-truth scores instead.
         "--bound", "int8=0", "--bound", "dynamic_int8=0"],
        [bundle / "manifest.json"],
    )
    if paired:
        stages.run(
            "paired",
            ["train", "--paired", data / "paired", "--preset", preset, "--out", paired_run,
             "--seed", seed, *step_args],
            [paired_run],
            env=threads,
        )
    start = time.perf_counter()
    scores, outputs, pairs = _score(data, teacher, student_run, bundle, paired_run if paired else None)
    stages.record("score", time.perf_counter() - start)
    grid = save_comparison_grid(
        {"input": [p[1] for p in pairs], **outputs, "ground truth": [p[2] for p in pairs]},
        root / "grid.png",
    )
    result = {
        "look": look,
        "split_seed": split_seed,
        "split": split_counts(data),
        "scores": scores,
        "int8_vs_fp32": _int8_gate(bundle),
        "grid": str(grid),
        "stage_seconds": stages.timings,
    }
    (root / "scores.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _score(data: Path, teacher: Path, student_run: Path, bundle: Path, paired_run: Optional[Path]):
    import numpy as np

    from styleforge.runtime import Stylizer
    from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
    from styleforge.train.baselines import histogram_match, reinhard_transfer
    from styleforge.train.checkpoint import load_generator

    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    style_images = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "style")]
    content_images = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "content")]
    int8 = Stylizer.from_bundle(bundle, artifact="tflite_int8", backend="litert")
    methods = {
        "identity": lambda x: x,
        "reinhard (Lab mean/std)": lambda x: reinhard_transfer(x, style_images),
        "histogram match": lambda x: histogram_match(x, style_images),
        # Set-to-set: one global grade mapping the content set's statistics onto the style set's.
        "reinhard (set-to-set)": lambda x: reinhard_transfer(x, style_images, content_images),
        "histogram match (set-to-set)": lambda x: histogram_match(x, style_images, content_images),
        "teacher": torch_method(load_generator(teacher)[0]),
        "student fp32": torch_method(load_generator(student_run)[0]),
        "student int8 (TFLite)": lambda x: np.asarray(int8.stylize(x)),
    }
    if paired_run is not None:
        methods["paired teacher"] = torch_method(load_generator(paired_run)[0])
    scores, outputs = score_methods(methods, pairs)
    shown = {k: outputs[k] for k in ("reinhard (Lab mean/std)", "teacher", "student int8 (TFLite)")}
    return scores, shown, pairs


def _int8_gate(bundle: Path) -> dict:
    """The export's own int8-vs-PyTorch fidelity and whether the default ship gate would pass it."""
    from styleforge.export.verify import DEFAULT_BOUNDS_DB
    from styleforge.runtime import load_manifest

    fidelity = load_manifest(bundle).artifacts["tflite_int8"].fidelity
    floor = DEFAULT_BOUNDS_DB["int8"]
    return {
        "psnr": fidelity.get("psnr"),
        "max_abs": fidelity.get("max_abs"),
        "ship_gate_db": floor,
        "passes_ship_gate": bool(fidelity.get("psnr", 0.0) >= floor),
    }


def split_counts(data: Path) -> dict:
    """Photos and scene groups per side of the dataset's split (from its ``dataset.json``)."""
    meta = json.loads((data / "dataset.json").read_text())
    sides = meta["split"]["sides"]
    return {side: {"photos": info["photos"], "groups": info["groups"]} for side, info in sides.items()}


def _result_key(r: dict, many_splits: bool) -> str:
    return f"{r['look']}@split{r['split_seed']}" if many_splits else r["look"]


def summarise(results: Sequence[dict]) -> dict:
    """Per look (and split): the best classical baseline and the margins the issue targets."""
    summary = {}
    many = len({r.get("split_seed") for r in results}) > 1
    for r in results:
        s = r["scores"]
        classical = max(CLASSICAL, key=lambda k: s[k]["psnr"])
        summary[_result_key(r, many)] = {
            "best_classical": classical,
            "int8_minus_teacher_db": s["student int8 (TFLite)"]["psnr"] - s["teacher"]["psnr"],
            "int8_minus_best_classical_db": s["student int8 (TFLite)"]["psnr"] - s[classical]["psnr"],
        }
    return summary


def environment() -> dict:
    import os

    return {
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def across_splits(results: Sequence[dict]) -> dict:
    """Per look and method over the scene splits: PSNR mean/min/max and its gain over the identity."""
    by_look: dict[str, list[dict]] = {}
    for r in results:
        by_look.setdefault(r["look"], []).append(r)
    table = {}
    for look, runs in by_look.items():
        table[look] = {"split_seeds": [r["split_seed"] for r in runs], "methods": {}}
        for method in runs[0]["scores"]:
            psnr = [r["scores"][method]["psnr"] for r in runs]
            gain = [r["scores"][method]["psnr"] - r["scores"]["identity"]["psnr"] for r in runs]
            table[look]["methods"][method] = {
                "psnr_mean": sum(psnr) / len(psnr), "psnr_min": min(psnr), "psnr_max": max(psnr),
                "gain_mean": sum(gain) / len(gain), "gain_min": min(gain), "gain_max": max(gain),
            }
    return table


def run_all(
    looks: Sequence[str], out: Path, preset: str = "cpu", student: str = "small",
    export_size: int = 256, steps: Optional[int] = None, paired: bool = True, seed: int = 0,
    split_seeds: Optional[Sequence[int]] = None,
) -> dict:
    """Evaluate every look on every scene split; writes ``out/results.json`` and ``out/results.md``.

    One split (``split_seeds`` None or of length 1) keeps the folder ``out/LOOK``; several give
    ``out/LOOK/split-N`` each and an ``across_splits`` table.
    """
    out = Path(out)
    start = time.perf_counter()
    splits = list(split_seeds) if split_seeds else [seed]
    results = [
        run_look(look, out / look if len(splits) == 1 else out / look / f"split-{s}",
                 preset, student, export_size, steps, paired, seed, split_seed=s)
        for look in looks
        for s in splits
    ]
    report = {
        "preset": preset,
        "student": student,
        "steps": steps,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
        "split_seeds": splits,
        "looks": results,
        "summary": summarise(results),
        "across_splits": across_splits(results) if len(splits) > 1 else None,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(to_markdown(report))
    return report


def to_markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "# Style fidelity per look (held-out photos vs the look's ground truth)",
        "",
        f"Preset `{report['preset']}`, student `{report['student']}`; "
        f"{env['processor']} ({env['cores']} cores), Python {env['python']}; "
        f"wall time {report['wall_seconds'] / 60:.1f} min.",
        "",
    ]
    many = len(report.get("split_seeds") or [0]) > 1
    for look, table in (report.get("across_splits") or {}).items():
        lines += [
            f"**{look}: PSNR over scene splits {table['split_seeds']}** (mean [min, max]; gain over identity)",
            "",
            "| method | PSNR (dB) | gain over identity (dB) |",
            "|---|---:|---:|",
        ]
        for method, m in table["methods"].items():
            lines.append(
                f"| {method} | {m['psnr_mean']:.2f} [{m['psnr_min']:.2f}, {m['psnr_max']:.2f}] | "
                f"{m['gain_mean']:+.2f} [{m['gain_min']:+.2f}, {m['gain_max']:+.2f}] |"
            )
        lines.append("")
    for r in report["looks"]:
        title = f"{r['look']} (scene split {r.get('split_seed', 0)})" if many else r["look"]
        lines.append(markdown_table(r["scores"], title=title))
        if r.get("split"):
            lines.append("n per split (photos / scene groups): " + ", ".join(
                f"{side} {c['photos']}/{c['groups']}" for side, c in r["split"].items() if c["photos"]
            ) + "\n")
        summary = report["summary"][_result_key(r, many)]
        lines.append(
            f"int8 vs teacher: {summary['int8_minus_teacher_db']:+.2f} dB; int8 vs best classical "
            f"({summary['best_classical']}): {summary['int8_minus_best_classical_db']:+.2f} dB\n"
        )
        gate = r["int8_vs_fp32"]
        lines.append(
            f"int8 TFLite vs PyTorch fp32: {gate['psnr']:.2f} dB (max abs {gate['max_abs']:.0f}/255) — "
            + ("passes" if gate["passes_ship_gate"] else "**fails**")
            + f" the {gate['ship_gate_db']:g} dB ship gate\n"
        )
        grid = Path(r["grid"])
        lines.append(f"![{title}]({grid.relative_to(grid.parents[2 if many else 1])})\n")
    return "\n".join(lines)
