"""``styleforge preview``: a self-contained web page of a bundle's look on photos (argparse only at import)."""

from __future__ import annotations

import argparse

from styleforge.runtime.preview import DEFAULT_MAX_EDGE, build_preview


def register(subparsers) -> None:
    """Add ``preview`` to the ``styleforge`` parser."""

    p = subparsers.add_parser(
        "preview",
        help="write one self-contained web page: before/after, strength, the artifacts side by side, a recipe's "
        "sliders (torch-free)",
        description="Write OUT/index.html: per photo a before/after split, a strength slider and every artifact's "
        "output with its PSNR against the reference and its benchmarked latency. A LUT look is applied live "
        "in the browser with WebGL2; so is a look recipe (recipe.json), pass by pass, with a slider per step "
        "for its main parameter and a 'Save recipe' button that downloads the edited recipe.json "
        "(styleforge export --recipe FILE --bundle BUNDLE makes it a bundle). No server or network needed; "
        "open it from disk.",
    )
    p.add_argument("bundle", help="bundle folder (with manifest.json)")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="image files and/or folders")
    p.add_argument("--out", "-o", required=True, help="output folder for index.html (created if missing)")
    p.add_argument("--artifacts", default=None,
                   help="comma-separated keys or aliases to show (default: every artifact that runs here)")
    p.add_argument("--reference", default=None, metavar="DIR",
                   help="folder of reference images named like the photos (teacher outputs, ground truth); "
                   "PSNR is measured against them (default: the bundle's fp32 artifact)")
    p.add_argument("--reference-label", default="reference", help="name shown for --reference (e.g. teacher)")
    p.add_argument("--bench", default=None, metavar="FILE",
                   help="styleforge bench --json file for latencies (default BUNDLE/bench.json when present)")
    p.add_argument("--max-edge", type=int, default=DEFAULT_MAX_EDGE,
                   help=f"long edge of the embedded photos in pixels, 0 = as they are (default {DEFAULT_MAX_EDGE})")
    p.add_argument("--lossless", action="store_true", help="embed the outputs as PNG (default JPEG q92; the "
                   "before photo is always PNG)")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads")
    p.add_argument("--title", default=None, help="page title")
    p.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:

    page = build_preview(
        args.bundle, args.photos, args.out,
        artifacts=[a.strip() for a in args.artifacts.split(",") if a.strip()] if args.artifacts else None,
        max_edge=args.max_edge or None, reference_images=args.reference, reference_label=args.reference_label,
        bench=args.bench, lossless=args.lossless, threads=args.threads, title=args.title,
    )
    print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB); open it in a browser")
    return 0
