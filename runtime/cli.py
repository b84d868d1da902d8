"""``styleforge stylize``: run a bundle over photos and folders (argparse only at import time)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_FORMAT_SUFFIX = {"jpg": ".jpg", "jpeg": ".jpg", "png": ".png", "webp": ".webp", "tif": ".tif", "tiff": ".tif"}


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    from styleforge.runtime.backends import BACKENDS
    from styleforge.runtime.imageio import DEFAULT_MAX_PIXELS

    p = subparsers.add_parser(
        "stylize",
        help="stylize photos, videos or folders with an exported bundle (torch-free)",
        description="Stylize photos of any size with a bundle: alpha, ICC profile and EXIF are kept, "
        "inputs are never overwritten, outputs are written atomically. Video (.mp4, .mov, .mkv, .webm, "
        "... anything ffmpeg reads; needs pip install styleforge[video]) is styled frame by frame "
        "through the LUT path or any model artifact: same size, frame rate and timestamps, audio "
        "copied untouched; an image-adaptive look is smoothed over time so it does not flicker.",
    )
    p.add_argument("bundle", help="bundle folder (with manifest.json)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image and video files and/or folders")
    p.add_argument("--out", "-o", required=True, help="output folder (created if missing)")
    p.add_argument("--strength", type=float, default=1.0, help="blend with the original, 0..1 (default 1)")
    p.add_argument("--backend", default="auto", choices=["auto", *BACKENDS], help="interpreter (default auto)")
    p.add_argument("--artifact", default="auto", help="auto, a manifest key (tflite_int8, onnx, ...) or int8/fp16/fp32/torch, "
                   "or lut (the bundle's look.cube: full resolution, no interpreter, 16-bit TIFF kept; a LUT per "
                   "photo when the look is image-adaptive, lut_cube for its single .cube)")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads")
    p.add_argument("--delegate", default=None, help="external TFLite delegate .so (Edge TPU, vendor NPU)")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE", help="option for --delegate (repeatable)")
    p.add_argument("--providers", default=None, help="ONNX Runtime execution providers, comma-separated")
    p.add_argument("--device", default="cpu", help="torch: cpu|cuda; coreml: compute units")
    p.add_argument("--tile", type=int, default=None, help="tile edge for dynamic-size models (fixed-size models use their input size)")
    p.add_argument("--tile-overlap", type=int, default=None, help="overlap between tiles in pixels (default max(16, tile/8))")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=f"refuse larger images (decompression bombs); 0 = no limit (default {DEFAULT_MAX_PIXELS})")
    p.add_argument("--suffix", default="", help="added to output file names, e.g. _styled")
    p.add_argument("--format", default=None, choices=sorted(_FORMAT_SUFFIX), help="output format (default: same as the input)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders of INPUT folders")
    p.add_argument("--video-codec", default=None, help="video encoder: libx264 (default; libvpx-vp9 for .webm, "
                   "ffv1 for .nut), libx265, libvpx-vp9, mpeg4, or lossless ffv1 / libx264rgb (with --crf 0)")
    p.add_argument("--crf", type=int, default=18, help="video quality for x264/x265/VP9, lower is better (default 18)")
    p.add_argument("--smooth", type=float, default=0.5, metavar="SECONDS",
                   help="time constant of an image-adaptive look's smoothing over video frames; 0 = per frame (default 0.5)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run_stylize)


def plan_outputs(
    inputs: list[str], out: Path, suffix: str, fmt: str | None, recursive: bool
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(input, output) pairs, and the files of INPUT folders that are not images, with the reason.

    Folders keep their relative layout under ``out`` and admit whatever Pillow opens (a GIF is
    styled from its first frame). An output keeps its input's format where we can write it,
    else PNG. A video (by extension) keeps its container; folders admit videos too. Raises
    ``CLIError`` when an output would overwrite an input or two inputs share an output.
    """
    from styleforge.errors import CLIError
    from styleforge.runtime.imageio import scan_images
    from styleforge.runtime.video_io import is_video
    from styleforge.runtime.writer import FORMATS

    def output_for(src: Path, rel_parent: Path) -> Path:
        if is_video(src):
            return out / rel_parent / f"{src.stem}{suffix}{src.suffix}"
        ext = _FORMAT_SUFFIX[fmt] if fmt else (src.suffix if src.suffix.lower() in FORMATS else ".png")
        return out / rel_parent / f"{src.stem}{suffix}{ext}"

    jobs: list[tuple[Path, Path]] = []
    not_images: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            scan = scan_images(path, recursive=recursive)
            videos = [src for src, _ in scan.skipped if is_video(src)]
            not_images += [(src, why) for src, why in scan.skipped if not is_video(src)]
            for src in sorted(scan.images + videos):
                jobs.append((src, output_for(src, src.parent.relative_to(path))))
        else:
            jobs.append((path, output_for(path, Path("."))))  # a missing file is reported as a failure later
    if not jobs:
        found = f" ({len(not_images)} other file(s): {', '.join(p.name for p, _ in not_images[:5])})" if not_images else ""
        raise CLIError(f"no images found in {', '.join(inputs)}{found}")
    sources = {src.resolve() for src, _ in jobs}
    seen: dict[Path, Path] = {}
    for src, dst in jobs:
        key = dst.resolve()
        if key in sources:
            raise CLIError(f"refusing to overwrite input {dst}: choose another --out or add a --suffix")
        if key in seen:
            raise CLIError(f"{seen[key]} and {src} would both be written to {dst}; use --suffix or separate runs")
        seen[key] = src
    return jobs, not_images


def run_stylize(args: argparse.Namespace) -> int:
    from styleforge.errors import CLIError
    from styleforge.progress import progress
    from styleforge.runtime.backends import BackendError
    from styleforge.runtime.contract import BundleError
    from styleforge.runtime.imageio import ImageError
    from styleforge.runtime.stylizer import open_bundle
    from styleforge.runtime.video_io import is_video

    if not 0.0 <= args.strength <= 1.0:
        raise CLIError(f"--strength must be in [0, 1], got {args.strength}")
    delegate_options = {}
    for item in args.delegate_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--delegate-option must be KEY=VALUE, got {item!r}")
        delegate_options[key] = value
    out = Path(args.out)
    jobs, not_images = plan_outputs(args.inputs, out, args.suffix, args.format, args.recursive)
    stylizer = open_bundle(
        args.bundle,
        artifact=args.artifact,
        backend=args.backend,
        threads=args.threads,
        delegate=args.delegate,
        delegate_options=delegate_options,
        providers=args.providers.split(",") if args.providers else None,
        device=args.device,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
    )
    failures: list[tuple[Path, str]] = list(not_images)  # every file not styled is listed with its reason
    max_pixels = args.max_pixels or None
    videos = [(src, dst) for src, dst in jobs if is_video(src)]
    if videos:
        from styleforge.runtime.video_io import ffmpeg_exe

        ffmpeg_exe()  # without the extra: one line saying how to install it, before any work
        if args.smooth < 0:
            raise CLIError(f"--smooth must be 0 or more seconds, got {args.smooth}")
        if len(jobs) == 1:  # one clip: its failure is the command's error line
            _stylize_videos(stylizer, videos, args, [], raise_first=True)
        else:
            _stylize_videos(stylizer, videos, args, failures)
    images = [(src, dst) for src, dst in jobs if not is_video(src)]
    for src, dst in progress(images, total=len(images), desc="stylize", disable=args.quiet or not images):
        try:
            stylizer.stylize_file(src, dst, strength=args.strength, max_pixels=max_pixels, quality=args.quality)
        except (ImageError, ValueError, OSError) as err:
            failures.append((src, str(err)))
        except (BundleError, BackendError) as err:  # the model itself failed: no point going on
            raise CLIError(str(err)) from None
    total = len(jobs) + len(not_images)
    done = total - len(failures)
    info = stylizer.info()
    print(f"stylized {done}/{total} file(s) into {out} ({info['artifact']} on {info['backend']})")
    for src, reason in failures:
        print(f"failed: {reason if str(src) in reason else f'{src}: {reason}'}", file=sys.stderr)
    return 1 if failures else 0


def _stylize_videos(stylizer, videos: list[tuple[Path, Path]], args: argparse.Namespace,
                    failures: list[tuple[Path, str]], raise_first: bool = False) -> None:
    """Each clip through :func:`~styleforge.runtime.video.stylize_video` with a frame progress bar;
    a clip that fails is added to ``failures`` (or, ``raise_first``, raised as the error line)."""
    from styleforge.errors import CLIError
    from styleforge.runtime.backends import BackendError
    from styleforge.runtime.contract import BundleError
    from styleforge.runtime.video import stylize_video
    from styleforge.runtime.video_io import VideoError

    for src, dst in videos:
        try:
            result = stylize_video(stylizer, src, dst, strength=args.strength, codec=args.video_codec,
                                   crf=args.crf, smooth_s=args.smooth, quiet=args.quiet)
        except (VideoError, ValueError, OSError) as err:
            if raise_first:
                raise CLIError(str(err) if str(src) in str(err) else f"{src}: {err}") from None
            failures.append((src, str(err)))
            continue
        except (BundleError, BackendError) as err:
            raise CLIError(str(err)) from None
        if not args.quiet:
            print(f"{dst}: {result.frames} frames at {float(result.info.fps):.3f} fps, "
                  f"{result.fps:.1f} frames/s", file=sys.stderr)
