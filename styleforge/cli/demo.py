"""``make demo``: the whole pipeline on the shipped photo album, in minutes, on a laptop CPU.

Stages (each resumable; a rerun reuses finished ones):

1. ``make-dataset``  the album split by scene group: content / style (``film-warm`` look) / test
   (held-out photos and their looked ground truth) / validation
2. ``train``         the teacher GAN (preset ``cpu``)
3. ``distill``       the ``small`` mobile student
4. ``export``        ONNX, TFLite fp32/fp16/dynamic-int8/int8 and Core ML, fidelity-gated
5. ``stylize``       the held-out test photos, full size, with the int8 TFLite model (torch-free runtime)
6. ``bench``         latency / memory / fidelity of the artifacts
7. a local look    ``--local-look`` (``glow``) learned from the album's 7 before/after pairs as a look
   recipe (``train --paired``), exported (``recipe.json`` + ``look.cube``) beside the tone look
8. report            ``demo/report.md``: comparison grids, fidelity and latency tables, plot, the
   recipe, and ``demo/preview/index.html`` + ``demo/preview_lut/index.html`` +
   ``demo/preview_recipe/index.html`` (``styleforge preview``)

Usage: ``python -m styleforge.cli.demo --out demo [--look film-warm] [--local-look glow] [--size 512] [--preset cpu]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from styleforge.benchmarks.stages import StageError, Stages, single_thread_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styleforge.cli.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo"))
    parser.add_argument("--look", default="film-warm")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--student", default="small")
    parser.add_argument("--size", type=int, default=512, help="square export size")
    parser.add_argument("--formats", default="onnx,tflite,coreml")
    parser.add_argument("--local-look", default="glow", help="a look learned from pairs as a look recipe ('' to skip)")
    args = parser.parse_args(argv)
    try:
        run_demo(args.out, args.look, args.preset, args.student, args.size, args.formats, args.local_look)
    except StageError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    return 0


def run_demo(out: Path, look: str, preset: str, student: str, size: int, formats: str,
             local_look: str = "glow") -> Path:
    out = Path(out)
    start = time.perf_counter()
    stages = Stages(out)
    threads = single_thread_env()
    data, teacher, student_run, bundle = out / "data", out / "runs" / "teacher", out / "runs" / "student", out / "bundle"
    stages.run("dataset", ["make-dataset", "--look", look, "--out", data], [data / "dataset.json"])
    stages.run(
        "teacher",
        ["train", "--content", data / "content", "--style", data / "style", "--preset", preset, "--out", teacher],
        [teacher],
        env=threads,
    )
    stages.run(
        "student",
        ["distill", "--teacher", teacher, "--content", data / "content", "--student", student,
         "--preset", preset, "--out", student_run],
        [student_run],
        env=threads,
    )
    stages.run(
        "export",
        ["export", student_run, "--formats", formats, "--size", f"{size}x{size}", "--calib", data / "content",
         "--heldout", data / "test" / "input", "--out", bundle],
        [bundle / "manifest.json"],
    )
    stages.run(  # the learned look is a colour function: it also ships as a .cube
        "lut",
        ["export", teacher, "--formats", "cube", "--heldout", data / "test" / "input", "--out", out / "lut"],
        [out / "lut" / "manifest.json"],
    )
    stages.run(
        "stylize",
        ["stylize", bundle, *_test_photos(data), "--artifact", "tflite_int8", "--out", out / "stylized"],
        [out / "stylized"],
    )
    stages.run(
        "bench",
        ["bench", bundle, "--backend", "litert,onnxruntime", "--artifact", "all", "--threads", "1,2",
         "--runs", "10", "--json", out / "bench.json", "--markdown", out / "bench.md", "--plot", out / "latency.png"],
        [out / "bench.json"],
    )
    local = run_local_look(stages, out, local_look, preset, threads) if local_look else None
    report = write_report(out, data, teacher, student_run, bundle, stages.timings, time.perf_counter() - start)
    pages = write_previews(out, data, {"preview": bundle, "preview_lut": out / "lut"})
    if local is not None:
        with open(report, "a") as f:
            f.write(local_section(out, *local))
        pages += write_previews(out, local[0], {"preview_recipe": local[2]})
    if pages:
        with open(report, "a") as f:
            f.write("\n## Interactive preview\n\n" + "".join(
                f"- [{p.relative_to(out)}]({p.relative_to(out).as_posix()})\n" for p in pages))
    print(f"\ndemo finished: open {report}", file=sys.stderr)
    return report


def run_local_look(stages: Stages, out: Path, look: str, preset: str, threads: dict) -> tuple[Path, Path, Path]:
    """A local look from the album's before/after pairs: its dataset, its recipe run and bundle."""
    data, run, bundle = out / f"data_{look}", out / "runs" / "recipe", out / "recipe"
    stages.run("local dataset", ["make-dataset", "--look", look, "--out", data], [data / "dataset.json"])
    stages.run("local recipe", ["train", "--paired", data / "paired", "--preset", preset, "--out", run], [run],
               env=threads)
    stages.run("local export", ["export", run, "--heldout", data / "test" / "input", "--out", bundle],
               [bundle / "manifest.json"])
    return data, run, bundle


def local_section(out: Path, data: Path, run: Path, bundle: Path) -> str:
    """The report's section on the local look: before / its colour part / the recipe / ground truth."""
    import numpy as np

    from styleforge.benchmarks.scoring import (
        load_pairs,
        markdown_table,
        save_comparison_grid,
        score_methods,
    )
    from styleforge.runtime import open_bundle
    from styleforge.train.checkpoint import load_checkpoint

    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    recipe, colour = open_bundle(bundle), open_bundle(bundle, artifact="cube")
    methods = {"before": lambda x: x, "its colour part alone (look.cube)": lambda x: np.asarray(colour.stylize(x)),
               "look recipe (torch-free runtime)": lambda x: np.asarray(recipe.stylize(x))}
    scores, outputs = score_methods(methods, pairs)
    save_comparison_grid({**outputs, "ground truth": [p[2] for p in pairs]}, out / "comparison_recipe.png")
    choice = load_checkpoint(run)[1].get("run", {}).get("paired_choice") or {}
    worth = "\n".join(f"| {o['op']} | {o['worth_db']:+.2f} | {'kept' if o['kept'] else 'dropped'} |"
                       for o in choice.get("ops", []))
    steps = "\n".join(f"    {line}" for line in recipe.info().get("recipe", []))
    dataset = json.loads((data / "dataset.json").read_text())
    return f"""
## A local look from {dataset['counts'].get('paired', 'a few')} before/after pairs: `{dataset['look']}` as a look recipe

`train --paired` fitted the colour LUT in closed form and the photographic operators by gradient
descent, kept what helps on held-out pairs, and `export` wrote `recipe.json` + `look.cube`
(lengths in fractions of the short side: the same look at any size).

![before / colour part / recipe / ground truth](comparison_recipe.png)

{markdown_table(scores, title="Against the look's ground truth on held-out photos")}
What each operator was worth on the held-out pairs (dB lost without it):

| operator | worth (dB) | |
|---|---:|---|
{worth}

The shipped recipe (`styleforge info {bundle.name}`):

{steps}
"""


def write_previews(out: Path, data: Path, bundles: dict[str, Path]) -> list[Path]:
    """``out/NAME/index.html`` (``styleforge preview``) per bundle on the held-out photos, PSNR
    against the look's ground truth, latency from ``out/bench.json``. A page that cannot be made
    is reported and skipped: the preview does not fail the demo."""
    from styleforge.errors import StyleforgeError
    from styleforge.runtime.preview import build_preview

    pages = []
    for name, bundle in bundles.items():
        bench = out / "bench.json"
        try:
            pages.append(build_preview(bundle, [data / "test" / "input"], out / name,
                                       reference_images=data / "test" / "target",
                                       reference_label="ground truth (the look)",
                                       bench=bench if bench.is_file() else None))
        except (StyleforgeError, OSError) as err:
            print(f"demo: no {name} page: {err}", file=sys.stderr)
    return pages


def _test_photos(data: Path) -> list[str]:
    """The original (full-size) album photos of the dataset's test side."""
    from styleforge.photo.album import album_dir

    meta = json.loads((data / "dataset.json").read_text())
    return [str(album_dir() / name) for name in meta["sources"]["test"]]


def photos_section(data: Path) -> str:
    """Markdown naming the photos of each side of the split, with their scene groups, and the credit."""
    from styleforge.photo.album import CREDIT

    meta = json.loads((data / "dataset.json").read_text())
    split = meta["split"]
    lines = [
        f"Split seed {meta['seed']}, scene groups by {split['grouping']}; no group is on two sides.",
        "",
        "| side | photos | groups | photos per scene group |",
        "|---|---:|---:|---|",
    ]
    for side, info in split["sides"].items():
        if info["photos"]:
            members = "; ".join(f"{g}: {', '.join(files)}" for g, files in info["members"].items())
            lines.append(f"| {side} | {info['photos']} | {info['groups']} | {members} |")
    lines += [f"\nNote: {note}" for note in split["notes"]]
    lines += ["", f"Photos: {CREDIT}. The images in this report are adaptations of them and are "
              "licensed under CC-BY-SA-4.0 too."]
    return "\n".join(lines) + "\n"


def write_report(out: Path, data: Path, teacher: Path, student_run: Path, bundle: Path, timings: dict, wall: float) -> Path:
    """Write ``out/report.md`` with the comparison grid, fidelity and latency tables."""
    import numpy as np

    from styleforge.benchmarks.eval_looks import environment
    from styleforge.benchmarks.scoring import (
        load_pairs,
        markdown_table,
        save_comparison_grid,
        score_methods,
        torch_method,
    )
    from styleforge.runtime import load_manifest, open_bundle
    from styleforge.train.checkpoint import load_generator

    pairs = load_pairs(data / "test" / "input", data / "test" / "target")
    int8 = open_bundle(bundle, artifact="tflite_int8", backend="litert")
    methods = {
        "before": lambda x: x,
        "teacher": torch_method(load_generator(teacher)[0]),
        "student": torch_method(load_generator(student_run)[0]),
        "student int8": lambda x: np.asarray(int8.stylize(x)),
    }
    scores, outputs = score_methods(methods, pairs)
    grid = save_comparison_grid({**outputs, "ground truth": [p[2] for p in pairs]}, out / "comparison.png")

    manifest = load_manifest(bundle)
    fidelity = ["| artifact | size (KB) | PSNR vs PyTorch (dB) | SSIM | max abs err | gate |", "|---|---:|---:|---:|---:|---|"]
    for key, art in manifest.artifacts.items():
        f = art.fidelity
        verified = f.get("verified", True)
        if verified is True:
            fidelity.append(
                f"| {key} | {art.size_bytes / 1024:.0f} | {f.get('psnr', float('nan')):.2f} | "
                f"{f.get('ssim', float('nan')):.4f} | {f.get('max_abs', float('nan')):.1f} | "
                f"≥ {f.get('bound_psnr', '-')} dB |"
            )
        else:
            fidelity.append(f"| {key} | {art.size_bytes / 1024:.0f} | - | - | - | {verified} |")
    env = environment()
    bench_md = (out / "bench.md").read_text() if (out / "bench.md").exists() else "(no benchmark)"
    bench_md = "\n".join("##" + line if line.startswith("#") else line for line in bench_md.splitlines())
    stage_lines = "\n".join(f"| {k} | {v:.0f} |" for k, v in timings.items())
    model = manifest.model
    text = f"""# styleforge demo report

Look `{manifest.style or 'film-warm'}`; machine: {env['processor']}, {env['cores']} cores, Python {env['python']}.
Total wall time of this run: {wall / 60:.1f} min (stages reused from an earlier run count their original time below).

## Photos per split

{photos_section(data)}
## Before / teacher / student / int8 / ground truth (held-out photos)

![comparison](comparison.png)

{markdown_table(scores, title="Against the look's ground truth on held-out photos")}
## Exported artifacts: fidelity against PyTorch fp32

Model: `{model.get('arch', '?')}` {model.get('config', '')}, {model.get('params', 0) / 1e6:.2f} M params,
{model.get('macs', 0) / 1e9:.2f} GMAC at the export size.

{chr(10).join(fidelity)}

## Latency (this machine)

![latency](latency.png)

{bench_md}

## Stage times (s)

| stage | seconds |
|---|---:|
{stage_lines}
"""
    (out / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    report = out / "report.md"
    report.write_text(text)
    assert grid.exists()
    return report


if __name__ == "__main__":
    raise SystemExit(main())
