"""Style-fidelity benchmark: how well is each built-in look learned, against ground truth.

For every look: build a dataset from the shipped photo album split by scene group (content,
style and test never share a scene), train the teacher, distill the student, export int8 TFLite,
train paired teachers too (the pix2pix ResNet, and whatever ``train --paired`` picks by default),
then score on the held-out split against the look's ground truth, beside the identity and seven
classical baselines (Reinhard, histogram matching, MKL, sliced OT, levels). With 23 photos one split is noisy (several dB from one split to the next), so
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

from styleforge.atomic import write_text
from styleforge.benchmarks.learning_curve import comparison
from styleforge.benchmarks.scoring import (
    load_pairs,
    markdown_table,
    save_comparison_grid,
    score_methods,
    torch_method,
)
from styleforge.benchmarks.stages import Stages, single_thread_env
from styleforge.export.verify import DEFAULT_BOUNDS_DB
from styleforge.photo import baselines
from styleforge.photo.baselines import CLASSICAL_NAMES
from styleforge.photo.looks import get_look
from styleforge.photo.verdict import read_verdict
from styleforge.runtime import load_manifest
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.train.checkpoint import load_checkpoint, load_generator

DEFAULT_LOOKS = ("film-warm", "noir", "teal-orange", "sky-teal", "bleach-bypass", "glow", "toon")
CLASSICAL = CLASSICAL_NAMES  # photo.baselines.classical_methods' keys, in its order
COLOUR = "colour generator (unpaired)"
PAIRED_AUTO = "paired (auto: look recipe or colour)"  # train --paired without --model


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
    full: bool = True,
    train_set: Sequence[str] = (),
) -> dict:
    """Build, train and score one look on one scene split; returns its result dict (also saved).

    Always: the dataset, the unpaired colour generator (the default ``train``), classical
    baselines and identity. With ``full``: also the unpaired ResNet (CycleGAN), the student
    distilled from the colour generator and its int8 TFLite export, and (``paired``) two paired
    teachers: the ResNet (pix2pix) and ``train --paired``'s default (a look recipe, or the colour generator).
    ``seed`` seeds training; ``split_seed`` (default ``seed``) the dataset's scene split.
    ``train_set`` (``KEY=VALUE`` strings) overrides the colour generator's training config.
    """
    split_seed = seed if split_seed is None else split_seed
    stages = Stages(root)
    threads = single_thread_env()
    data, colour, resnet, student_run, bundle, paired_run, paired_auto = (
        root / "data", root / "colour", root / "resnet", root / "student", root / "bundle", root / "paired",
        root / "paired-auto",
    )
    step_args = ["--steps", str(steps)] if steps else []
    unpaired = ["train", "--content", data / "content", "--style", data / "style", "--preset", preset,
                "--seed", seed, "--allow-degenerate", *step_args]
    stages.run("dataset", ["make-dataset", "--look", look, "--out", data, "--seed", split_seed], [data / "dataset.json"])
    # A measurement: a degenerate model is kept and scored, its verdict reported beside the score.
    overrides = [arg for kv in train_set for arg in ("--set", kv)]
    stages.run("colour", [*unpaired, *overrides, "--out", colour, *_resume(colour)], [colour / "verdict.json"],
               env=threads)
    if full:
        stages.run("resnet", [*unpaired, "--model", "resnet", "--out", resnet, *_resume(resnet)], [resnet],
                   env=threads)
        stages.run(
            "student",
            ["distill", "--teacher", colour, "--content", data / "content", "--student", student,
             "--preset", preset, "--out", student_run, "--seed", seed, "--allow-degenerate", *step_args],
            [student_run],
            env=threads,
        )
        stages.run(
            "export",
            ["export", student_run, "--formats", "tflite", "--size", f"{export_size}x{export_size}",
             "--calib", data / "content", "--heldout", data / "test" / "input", "--out", bundle,
             # A measurement, not a shipment: keep int8 models the ship gate (30 dB) would refuse,
             # and report their figure and verdict beside the ground-truth scores instead.
             "--bound", "int8=0", "--bound", "dynamic_int8=0", "--allow-degenerate"],
            [bundle / "manifest.json"],
        )
        if paired:
            stages.run(
                "paired",
                ["train", "--paired", data / "paired", "--model", "resnet", "--preset", preset, "--out", paired_run,
                 "--seed", seed, "--allow-degenerate", *step_args, *_resume(paired_run)],
                [paired_run],
                env=threads,
            )
            # What `train --paired` does by default: the generator chosen from the pairs' colour fit.
            stages.run(
                "paired-auto",
                ["train", "--paired", data / "paired", "--preset", preset, "--out", paired_auto,
                 "--seed", seed, "--allow-degenerate", *step_args, *_resume(paired_auto)],
                [paired_auto],
                env=threads,
            )
    saved = root / "scores.json"
    if not stages.ran and stages.done("score", [saved]):  # nothing retrained: the scores stand
        stages.say("[score] done earlier - reusing")
        return json.loads(saved.read_text())
    start = time.perf_counter()
    scores, outputs, pairs = _score(data, colour, full, root)
    stages.record("score", time.perf_counter() - start)
    best = max(CLASSICAL, key=lambda k: scores[k]["psnr"])
    grid = save_comparison_grid(
        {"input": [p[1] for p in pairs], **{k: outputs[k] for k in (best, COLOUR)},
         "ground truth": [p[2] for p in pairs]},
        root / "grid.png",
    )
    # identity, every classical transfer, the learned models and the paired ones, side by side
    shown = [m for m in ("identity", *CLASSICAL, COLOUR, "student int8 (TFLite)", "paired (ResNet)", PAIRED_AUTO)
             if m in outputs]
    page = comparison(pairs, {m: outputs[m] for m in shown}, root / "preview",
                      f"{look}, scene split {split_seed}: held-out scenes")
    verdict = json.loads((colour / "verdict.json").read_text())
    result = {
        "look": look,
        "split_seed": split_seed,
        "split": split_counts(data),
        "scores": scores,
        "colour": {
            "verdict": {k: verdict[k] for k in ("ok", "failed", "diversity", "structure", "change_levels")},
            "selection": _selection(verdict, scores),
            "init_fit": verdict.get("init_fit"),
            "chroma_cab": _mean_chroma(outputs[COLOUR]) if look == "noir" else None,
            "train_seconds": stages.timings.get("colour"),
        },
        "int8_vs_fp32": _int8_gate(bundle) if full else None,
        "paired_auto": _paired_choice(paired_auto) if paired_auto.is_dir() else None,
        "verdicts": _teacher_verdicts({"resnet": resnet, "paired": paired_run, "paired-auto": paired_auto}),
        "grid": str(grid),
        "preview": str(page),
        "stage_seconds": stages.timings,
    }
    write_text(saved, json.dumps(result, indent=2) + "\n")
    return result


def _resume(run: Path) -> list[str]:
    """``["--resume"]`` when a training stage was cut short after its first checkpoint."""
    return ["--resume"] if any((run / "checkpoints").glob("step_*")) else []


def _selection(verdict: dict, scores: dict) -> dict:
    """Which candidate the unsupervised criterion picked, and criterion vs ground-truth PSNR."""
    rows = verdict["selection"]
    selected, init, last = verdict["selected"], rows[0], rows[-1]
    return {
        "picked": "init" if selected["step"] == 0 else f"step {selected['step']}",
        "picked_init": selected["step"] == 0,
        "candidates": len(rows),
        "criterion": {"selected": selected["score"], "init": init["score"], "last": last["score"]},
        "psnr": {"selected": scores[COLOUR]["psnr"], "init": scores["colour: classical init"]["psnr"],
                 "last": scores["colour: last EMA"]["psnr"]},
    }


def _mean_chroma(images) -> float:
    """Mean CIELAB chroma C*ab of uint8 RGB images (0 for a neutral black-and-white photo)."""
    import numpy as np
    from skimage.color import rgb2lab

    values = [np.hypot(*rgb2lab(img)[..., 1:].transpose(2, 0, 1)).mean() for img in images]
    return float(np.mean(values))


def _colour_models(run: Path) -> dict:
    """The colour run's selected model, its classical start and its last EMA, from one checkpoint read."""
    import copy


    selected, _ = load_generator(run)
    state, _, _ = load_checkpoint(run)
    models = {"selected": selected}
    for key, network in (("init", "generator_init"), ("ema", "generator_ema")):
        models[key] = copy.deepcopy(selected)
        models[key].load_state_dict(state[network])
    return models


def _score(data: Path, colour: Path, full: bool, root: Path):
    import numpy as np


    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    style = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "style")]
    content = [to_uint8_array(open_image(p).rgb) for p in list_images(data / "content")]
    colour_models = _colour_models(colour)
    methods = {
        "identity": lambda x: x,
        **baselines.classical_methods(style, content),
        COLOUR: torch_method(colour_models["selected"]),
        "colour: classical init": torch_method(colour_models["init"]),
        "colour: last EMA": torch_method(colour_models["ema"]),
    }
    if full:
        from styleforge.runtime import open_bundle

        int8 = open_bundle(root / "bundle", artifact="tflite_int8", backend="litert")
        methods.update({
            "ResNet (unpaired, CycleGAN)": torch_method(load_generator(root / "resnet")[0]),
            "student fp32 (from colour)": torch_method(load_generator(root / "student")[0]),
            "student int8 (TFLite)": lambda x: np.asarray(int8.stylize(x)),
        })
        if (root / "paired").is_dir():
            methods["paired (ResNet)"] = torch_method(load_generator(root / "paired")[0])
        if (root / "paired-auto").is_dir():
            methods[PAIRED_AUTO] = torch_method(load_generator(root / "paired-auto")[0])
    scores, outputs = score_methods(methods, pairs)
    return scores, outputs, pairs


def _teacher_verdicts(runs: dict) -> dict:
    """``{stage: failed checks}`` of train's verdict on each run that has one (kept and scored here,
    flagged or not; an empty list: not degenerate)."""

    verdicts = {name: read_verdict(run) for name, run in runs.items() if run.is_dir()}
    return {name: list(v.failed) for name, v in verdicts.items() if v is not None}


def _paired_choice(run: Path) -> dict:
    """What ``train --paired`` chose (its checkpoint's ``run.paired_choice``): the look recipe or the
    colour generator, with the recipe fit's held-out figures and what each operator was worth."""

    _, meta, _ = load_checkpoint(run)
    choice = dict(meta.get("run", {}).get("paired_choice") or {})
    choice.setdefault("generator", meta.get("generator", {}).get("arch", "?"))
    return choice


def _int8_gate(bundle: Path) -> dict:
    """The export's own int8-vs-PyTorch fidelity and whether the default ship gate would pass it."""

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


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarise(results: Sequence[dict]) -> dict:
    """Per look over its scene splits: identity, best classical (per split), the colour generator,
    its margins (mean, sd), whether the issue's targets hold, selection and guard statistics."""
    by_look: dict[str, list[dict]] = {}
    for r in results:
        by_look.setdefault(r["look"], []).append(r)
    summary = {}
    for look, runs in by_look.items():
        rows = []
        for r in runs:
            s = r["scores"]
            best = max(CLASSICAL, key=lambda k: s[k]["psnr"])
            gain = s[COLOUR]["psnr"] - s["identity"]["psnr"]
            verdict = r["colour"]["verdict"]
            rows.append({
                "split_seed": r["split_seed"], "identity": s["identity"]["psnr"], "best_classical": best,
                "best_classical_psnr": s[best]["psnr"], "colour": s[COLOUR]["psnr"],
                "colour_minus_best": s[COLOUR]["psnr"] - s[best]["psnr"], "colour_minus_identity": gain,
                # what the adversarial step did to its classical start, and what selection kept of it
                "last_minus_start": s["colour: last EMA"]["psnr"] - s["colour: classical init"]["psnr"],
                "selected_minus_start": s[COLOUR]["psnr"] - s["colour: classical init"]["psnr"],
                "picked_init": r["colour"]["selection"]["picked_init"], "verdict_ok": verdict["ok"],
                "false_alarm": (not verdict["ok"]) and gain >= 1.0,
            })
        stats = {key: _mean_sd([row[key] for row in rows]) for key in
                 ("identity", "best_classical_psnr", "colour", "colour_minus_best", "colour_minus_identity",
                  "last_minus_start", "selected_minus_start")}
        tone = get_look(look).kind == "tone"  # built-in or random-tone-N
        if tone:
            target = stats["colour_minus_best"][0] >= 1.5 and stats["colour_minus_identity"][0] >= 3.0
        else:
            margin, sd = stats["colour_minus_best"]
            target = margin - sd >= 0.5 and stats["colour_minus_identity"][0] > 0
        chroma = [r["colour"]["chroma_cab"] for r in runs if r["colour"].get("chroma_cab") is not None]
        summary[look] = {
            "splits": rows, "stats": stats, "kind": "tone" if tone else "local",
            "target_met": bool(target),
            "init_picked": sum(row["picked_init"] for row in rows),
            "flagged": sum(not row["verdict_ok"] for row in rows),
            "false_alarms": sum(row["false_alarm"] for row in rows),
            "noir_chroma_cab": sum(chroma) / len(chroma) if chroma else None,
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
        shared = [m for m in runs[0]["scores"] if all(m in r["scores"] for r in runs)]
        for method in shared:
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
    split_seeds: Optional[Sequence[int]] = None, full_splits: int = 1, train_set: Sequence[str] = (),
) -> dict:
    """Evaluate every look on every scene split; writes ``out/results.json`` and ``out/results.md``.

    The colour generator, classical baselines and identity run on every split; the ResNet, the
    student, its export and the paired teacher on the first ``full_splits`` splits only (they cost
    ten times more). Each look/split lives in ``out/LOOK/split-N``; finished stages are reused.
    """
    out = Path(out)
    start = time.perf_counter()
    splits = list(split_seeds) if split_seeds else [seed]
    results = [
        run_look(look, out / look / f"split-{s}", preset, student, export_size, steps, paired, seed,
                 split_seed=s, full=i < full_splits, train_set=train_set)
        for look in looks
        for i, s in enumerate(splits)
    ]
    report = {
        "preset": preset,
        "student": student,
        "steps": steps,
        "train_set": list(train_set),
        "wall_seconds": time.perf_counter() - start,
        # every stage's own time, reused ones counted from when they ran (a resumed or parallel
        # run's wall time says little)
        "stage_seconds": round(sum(sum(r.get("stage_seconds", {}).values()) for r in results), 1),
        "environment": environment(),
        "split_seeds": splits,
        "looks": results,
        "summary": summarise(results),
        "across_splits": across_splits(results),
    }
    write_text(out / "results.json", json.dumps(report, indent=2) + "\n")
    write_text(out / "results.md", to_markdown(report, out))
    return report


def to_markdown(report: dict, out: Path) -> str:
    env = report["environment"]
    splits = report["split_seeds"]
    steps = f", {report['steps']} steps" if report.get("steps") else ""
    if report.get("train_set"):
        steps += ", colour generator trained with " + ", ".join(f"`{kv}`" for kv in report["train_set"])
    lines = [
        "# Style fidelity per look (held-out scene groups vs the look's ground truth)",
        "",
        f"Preset `{report['preset']}`{steps}, "
        f"scene splits {splits}; {env['processor']} ({env['cores']} cores), Python {env['python']}; "
        f"wall time {report['wall_seconds'] / 60:.1f} min this run, stage time "
        f"{report.get('stage_seconds', 0.0) / 60:.1f} min in all (reused stages counted from when they "
        "ran). PSNR in dB, mean ± sd over the splits; "
        "'best classical' is the best of seven classical transfers on each split.",
        "",
        "Photos: KPhotoAlbum demo album, © 2003-2007 Jesper K. Pedersen, CC-BY-SA-4.0; the grids "
        "below are derived from them and carry the same licence and credit (data/album/ATTRIBUTION.md).",
        "",
        "| look | identity | best classical | colour generator | colour − best classical | colour − identity "
        "| target | last EMA − start | shipped − start | init shipped | flagged (false alarms) |",
        "|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|",
    ]
    def fmt(stats, key, sign=""):
        mean, sd = stats[key]
        return f"{mean:{sign}.2f} ± {sd:.2f}"

    for look, s in report["summary"].items():
        st = s["stats"]
        lines.append(
            f"| {look} | {fmt(st, 'identity')} | {fmt(st, 'best_classical_psnr')} | {fmt(st, 'colour')} | "
            f"{fmt(st, 'colour_minus_best', '+')} | {fmt(st, 'colour_minus_identity', '+')} | "
            f"{'met' if s['target_met'] else 'not met'} | {fmt(st, 'last_minus_start', '+')} | "
            f"{fmt(st, 'selected_minus_start', '+')} | {s['init_picked']}/{len(s['splits'])} | "
            f"{s['flagged']} ({s['false_alarms']}) |"
        )
    lines += ["", "Targets: tone looks colour ≥ best classical + 1.5 dB and ≥ identity + 3 dB (means); "
              "glow/toon (mean − sd) ≥ best classical + 0.5 dB. 'last EMA − start': what the adversarial "
              "step did to the classical start it was anchored to; 'shipped − start': what the shipped model "
              "kept of it (model.shrink of the last EMA's change by default; the criterion's pick with "
              "model.select=criterion). 'init shipped': how often the shipped model is the classical "
              "start itself (levels by default; only the criterion picks it). 'flagged': runs the degeneracy "
              "check stopped; a false alarm is a flagged run that beat identity by ≥ 1 dB.", ""]
    noir = report["summary"].get("noir", {}).get("noir_chroma_cab")
    if noir is not None:
        lines += [f"noir: mean chroma C*ab of the colour generator's outputs {noir:.2f} (target ≤ 1.5).", ""]
    for r in report["looks"]:
        title = f"{r['look']} (scene split {r['split_seed']})"
        lines.append(markdown_table(r["scores"], title=title))
        lines.append("n per split (photos / scene groups): " + ", ".join(
            f"{side} {c['photos']}/{c['groups']}" for side, c in r["split"].items() if c["photos"]) + "\n")
        sel = r["colour"]["selection"]
        lines.append(
            f"selection: picked {sel['picked']} of {sel['candidates']} candidates; criterion (lower is "
            f"better) selected {sel['criterion']['selected']:.2f} / init {sel['criterion']['init']:.2f} / "
            f"last {sel['criterion']['last']:.2f} vs ground-truth PSNR {sel['psnr']['selected']:.2f} / "
            f"{sel['psnr']['init']:.2f} / {sel['psnr']['last']:.2f}; verdict "
            + ("ok" if r["colour"]["verdict"]["ok"] else "**" + ", ".join(r["colour"]["verdict"]["failed"]) + "**")
            + "\n")
        flagged = {name: failed for name, failed in (r.get("verdicts") or {}).items() if failed}
        if flagged:
            lines.append("degenerate by train's verdict (kept and scored here): " + "; ".join(
                f"{name} ({', '.join(failed)})" for name, failed in flagged.items()) + "\n")
        auto = r.get("paired_auto")
        if auto:
            kept = [o["op"] for o in auto.get("ops", []) if o.get("kept")]
            lines.append(
                f"{PAIRED_AUTO}: shipped the {auto['generator']} "
                + (f"({', '.join(kept)} around the colour LUT) " if auto["generator"] == "recipe" else "")
                + f"(on held-out pairs: closed-form colour fit {auto.get('colour_fit_db', float('nan')):.1f} dB, "
                f"every operator {auto.get('recipe_db', float('nan')):.1f} dB)\n")
        gate = r.get("int8_vs_fp32")
        if gate:
            lines.append(
                f"int8 TFLite vs PyTorch fp32: {gate['psnr']:.2f} dB (max abs {gate['max_abs']:.0f}/255) — "
                + ("passes" if gate["passes_ship_gate"] else "**fails**")
                + f" the {gate['ship_gate_db']:g} dB ship gate\n")
        grid = Path(r["look"]) / f"split-{r['split_seed']}" / Path(r["grid"]).name  # run_all's layout,
        lines.append(f"![{title}]({grid.as_posix()})\n")  # so a results folder moved elsewhere still links
        if r.get("preview"):
            lines.append(f"[every method side by side, interactive]({(grid.parent / 'preview' / 'index.html').as_posix()})\n")
    return "\n".join(lines)
