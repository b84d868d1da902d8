"""Subcommands of this area (argparse only; heavy imports happen inside the run functions)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    p = subparsers.add_parser(
        "bench",
        help="latency, memory and fidelity of a bundle per backend, threads and size",
        description=(
            "Benchmark bundles or raw .tflite/.onnx/.pt files: artifacts x backends x threads x sizes, "
            "each cell in a fresh process. Reports load and first-inference time, latency min/p50/p90/"
            "p99/mean/std, images/s, peak RSS, file size, GMAC/s and PSNR against the bundle's "
            "reference outputs on that backend. Static artifacts run at their own size; pass one "
            "bundle per size to compare sizes."
        ),
    )
    p.add_argument("models", nargs="*", metavar="BUNDLE_OR_MODEL", help="bundle folders or model files")
    p.add_argument("--backend", default="all",
                   help="litert, tflite-runtime, onnxruntime, torch, coreml, adb, lut (a bundle's look.cube or "
                        "look recipe at full resolution, beside Pillow); comma-separated, or 'all' "
                        "(the installed ones; adb only when named) [all]")
    p.add_argument("--artifact", default="all", help="manifest keys (e.g. tflite_fp32,tflite_int8,onnx) or 'all' [all]")
    p.add_argument("--threads", default=None, help="thread counts, e.g. 1,2,4 [the runtime's default]")
    p.add_argument("--size", default=None,
                   help="sizes for dynamic-size artifacts, comma-separated, each HxW in pixels or N for NxN "
                        "(e.g. 256,512x768); filters static ones")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs after the first inference [3]")
    p.add_argument("--runs", type=int, default=20, help="timed runs per cell [20]")
    p.add_argument("--duration", type=float, default=None, help="time each cell for this many seconds instead of --runs")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: torch on GPU, ONNX Runtime's CUDA provider (skipped when CUDA is not available)")
    p.add_argument("--compute-units", default=None,
                   help="Core ML compute units for coreml cells: ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY (macOS) [CPU_ONLY]")
    p.add_argument("--delegate", default=None,
                   help="TFLite external delegate .so (NPU/GPU); with --backend adb: gpu, nnapi or a path on the phone")
    p.add_argument("--xnnpack", default="on",
                   help="LiteRT's default XNNPACK CPU delegate: on, off, or on,off to measure both [on]")
    p.add_argument("--adb-serial", default=None, help="adb device serial when several phones are attached")
    p.add_argument("--adb-benchmark-binary", default="/data/local/tmp/benchmark_model",
                   help="path of TFLite's benchmark_model on the phone [/data/local/tmp/benchmark_model]")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per cell [600]")
    p.add_argument("--json", default=None, metavar="FILE", help="write the full result as JSON")
    p.add_argument("--markdown", default=None, metavar="FILE", help="write a markdown report")
    p.add_argument("--plot", default=None, metavar="PNG", help="bar chart of p50 latency per cell (matplotlib)")
    p.add_argument("--video", default=None, metavar="CLIP",
                   help="time CLIP through each bundle's video path (decode / style / encode ms per frame, "
                        "fps) side by side with ffmpeg -vf lut3d=look.cube (a look recipe: its ffmpeg filtergraph "
                        "for the clip's size), compare their frames (rgb24, lossless), and for image-adaptive "
                        "bundles the flicker with and without smoothing")
    p.add_argument("--video-codec", default="libx264", help="encoder of both --video paths [libx264]")
    p.add_argument("--crf", type=int, default=18, help="--video encoder quality [18]")
    p.add_argument("--compare", nargs=2, default=None, metavar=("A.json", "B.json"),
                   help="compare two results: B/A latency ratios, B-A fidelity; runs nothing")
    p.set_defaults(func=run_bench)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _parse_threads(text: str | None) -> list[int | None]:
    from styleforge.errors import CLIError

    if not text:
        return [None]
    try:
        values = [int(t) for t in _split(text)]
    except ValueError:
        raise CLIError(f"--threads takes integers like 1,2,4, got {text!r}") from None
    if any(v < 1 for v in values):
        raise CLIError("--threads must be positive")
    return values


def _parse_sizes(text: str | None) -> list[tuple[int, int]]:
    from styleforge.cli_options import parse_sizes

    return parse_sizes(text)


def _parse_xnnpack(text: str) -> list[bool]:
    from styleforge.errors import CLIError

    values = {"on": True, "off": False}
    try:
        return [values[t.lower()] for t in _split(text)] or [True]
    except KeyError:
        raise CLIError(f"--xnnpack takes on, off or on,off, got {text!r}") from None


def run_bench(args) -> int:
    from styleforge.benchmarks import report
    from styleforge.errors import CLIError

    if args.compare:
        try:
            a, b = (report.load_result(p) for p in args.compare)
        except ValueError as err:
            raise CLIError(str(err)) from None
        print(report.format_compare(report.compare(a, b), "A", "B"))
        return 0
    if not args.models:
        raise CLIError("give at least one bundle folder or model file (or --compare A.json B.json)")
    if args.video:
        return _run_video(args)
    if args.runs < 1 and not args.duration:
        raise CLIError("--runs must be at least 1")

    from styleforge.benchmarks.bench import BenchSettings, benchmark

    backends = _split(args.backend) or ["all"]
    settings = BenchSettings(
        warmup=args.warmup, runs=args.runs, duration_s=args.duration, timeout_s=args.timeout,
        adb_serial=args.adb_serial, adb_binary=args.adb_benchmark_binary,
    )

    def on_cell(i: int, n: int, cell: dict) -> None:
        where = f"[{i}/{n}] {cell['model']}/{cell['artifact']} {cell['backend']} threads={cell['threads'] or 'default'}"
        if cell["status"] == "ok":
            fid = cell.get("fidelity")
            psnr = f"PSNR {fid['psnr']:.1f} dB" if fid else "PSNR n/a"
            print(f"{where}: p50 {cell['latency_ms']['p50'] or cell['latency_ms']['mean']:.2f} ms, {psnr}",
                  file=sys.stderr)
        else:
            print(f"{where}: {cell['status']}: {cell['error']}", file=sys.stderr)

    result = benchmark(
        args.models, backends=backends, artifacts=_split(args.artifact) or ["all"],
        threads=_parse_threads(args.threads), sizes=_parse_sizes(args.size), device=args.device,
        delegate=args.delegate, compute_units=args.compute_units, xnnpack=_parse_xnnpack(args.xnnpack), settings=settings, on_cell=on_cell,
    )

    from styleforge.benchmarks.environment import summary_lines

    print("\n".join(summary_lines(result["environment"])))
    print()
    print(report.format_table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    if args.json:
        print(f"wrote {report.write_json(result, args.json)}")
    if args.markdown:
        print(f"wrote {report.write_markdown(result, args.markdown)}")
    if args.plot:
        try:
            print(f"wrote {report.write_plot(result, args.plot)}")
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib); skipped", file=sys.stderr)
    failed = [c for c in result["cells"] if c["status"] == "error"]
    return 1 if failed and len(failed) == len(result["cells"]) else 0


def _run_video(args) -> int:
    """``bench --video CLIP BUNDLE...``: one report per bundle (see benchmarks/video_bench.py)."""
    import json

    from styleforge.atomic import write_text
    from styleforge.benchmarks.environment import collect, summary_lines
    from styleforge.benchmarks.video_bench import bench_video, format_report
    from styleforge.errors import CLIError

    threads = _parse_threads(args.threads)[0]
    artifact = "auto" if args.artifact == "all" else args.artifact
    env = collect(probe_runtimes=False)
    print("\n".join(summary_lines(env)))
    results = []
    for bundle in args.models:
        try:
            result = bench_video(bundle, args.video, artifact=artifact, threads=threads, codec=args.video_codec,
                                 crf=args.crf)
        except ValueError as err:
            raise CLIError(str(err)) from None
        print(format_report(result))
        results.append(result)
    if args.json:
        print(f"wrote {write_text(Path(args.json), json.dumps({'environment': env, 'video': results}, indent=2))}")
    return 0
