"""``styleforge bench --video CLIP BUNDLE``: a clip through the runtime's video path, timed per
stage, side by side with ffmpeg's own ``lut3d`` filter (a look recipe: its ffmpeg filtergraph) on
the same clip, in one run.

Per bundle (one process, stages run one after another on the same clip):

- ``decode``: a decode-only pass (ffmpeg -> rgb24 pipe -> numpy), wall ms per frame; and in the
  styled run, the decoder's and the encoder's CPU ms per frame (the children's own rusage);
- ``style``: ms per frame of the stylizer in the styled run (median and mean, wall);
- ``ours``: end-to-end frames per second of :func:`~styleforge.runtime.video.stylize_video`
  (decode, style, encode overlapped on three threads and two ffmpeg processes);
- ``ffmpeg_lut3d``: end-to-end fps of one ffmpeg command doing the same
  (``-vf format=rgb24,lut3d=look.cube:interp=trilinear`` then the same RGB -> YUV and the same
  encoder settings), and ``ratio`` = ours / ffmpeg's;
- ``ffmpeg_chain`` instead, for a look recipe with local operators: the recipe as an ffmpeg
  filtergraph (:mod:`styleforge.export.ffmpeg_chain`, written for the clip's own frame size, the
  bundle's ``.cube`` files beside it) in the same one ffmpeg command, and ``ratio`` = ours / its;
- ``agreement``: both paths decoded again to rgb24 (lossless: raw frames over pipes, no
  encoder) and compared frame by frame: the largest difference in levels and the share of
  values that differ (the runtime's ``look.cube``, the file lut3d reads); for a recipe also the
  PSNR of the chain's frames against ours (mean over the clip and the worst frame);
- ``flicker`` (image-adaptive bundles): the frame-to-frame change of the per-frame parameters
  and of the baked LUT (in 8-bit levels), each frame on its own and smoothed over time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from styleforge.export.ffmpeg_chain import CHAIN_FILE, filter_chain
from styleforge.runtime import bundle_files
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer
from styleforge.runtime.manifest import load_manifest
from styleforge.runtime.metrics import psnr
from styleforge.runtime.recipe import Recipe
from styleforge.runtime.stylizer import open_bundle
from styleforge.runtime.temporal import DEFAULT_TAU_S, ParamSmoother, frame_changes
from styleforge.runtime.video import FrameStyler, pump
from styleforge.runtime.video_io import (
    CODECS,
    DEFAULT_CRF,
    FrameReader,
    VideoError,
    VideoInfo,
    colour_args,
    encoder_pix_fmt,
    ffmpeg_exe,
    probe,
)


def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True).stdout
    return out.split("\n", 1)[0].replace("ffmpeg version ", "").split(" Copyright")[0]


def has_lut3d() -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == ["lut3d"] for line in out.splitlines() if line.strip())


def _cube_of(bundle: Path, folder: Path) -> Optional[Path]:
    """The bundle's verified ``look.cube``, copied into ``folder`` as ``look.cube`` (so the
    filter argument needs no escaping); None when the bundle has none."""
    manifest = load_manifest(bundle)
    if "lut_cube" not in manifest.artifacts:
        return None
    data = bundle_files.read_artifact(bundle, manifest.artifacts["lut_cube"], True)
    (folder / "look.cube").write_bytes(data)
    return folder / "look.cube"


SAMPLE_FRAMES = 10  # frames kept from the decode-only pass to time the stylizer alone


def _decode_only(info: VideoInfo) -> tuple[float, list[np.ndarray]]:
    """Wall seconds to decode every frame into numpy, and the first :data:`SAMPLE_FRAMES` frames."""
    sample = []
    start = time.perf_counter()
    with FrameReader(info) as reader:
        for frame in reader:
            if len(sample) < SAMPLE_FRAMES:
                sample.append(frame)
    return time.perf_counter() - start, sample


def _style_alone(stylizer, info: VideoInfo, frames: list[np.ndarray], smooth_s: float) -> float:
    """Median ms per frame of the stylizer on decoded frames with no ffmpeg running beside it."""
    styler = FrameStyler(stylizer, float(info.fps), 1.0, smooth_s)
    for frame in frames:
        styler(frame)
    styler.close()
    return float(np.median(styler.style_s)) * 1000.0


def ffmpeg_filtered(info: VideoInfo, graph: str, cwd: Path, dst: Path, codec: str, crf: int, what: str = "lut3d") -> float:
    """Wall seconds of one ffmpeg command: decode, the filtergraph ``graph`` (run in ``cwd``, where
    its files are), the same RGB -> YUV as our writer, encode, audio copied."""
    pix_fmt, options = encoder_pix_fmt(info, codec), CODECS.get(codec, ("yuv420p", ()))[1]
    colour = colour_args(info, pix_fmt)  # the same RGB -> YUV as our writer
    scale = colour[1] if colour else ""
    script = cwd / f"{what}.graph.txt"  # a file (-/vf): a recipe's graph is long
    script.write_text(graph.rstrip() + (f",{scale}" if scale else "") + "\n", encoding="utf-8")
    quality = ["-crf", str(crf)] if codec in ("libx264", "libx265", "libvpx-vp9", "libx264rgb") else []
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(info.path.absolute()),
           "-map", "0:v:0", "-map", "0:a?", "-c:a", "copy", "-/vf", script.name, "-c:v", codec, *options, *quality,
           *colour[2:], "-pix_fmt", pix_fmt, str(dst.absolute())]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise VideoError(f"ffmpeg {what} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return seconds


def ffmpeg_lut3d(info: VideoInfo, cube: Path, dst: Path, codec: str, crf: int) -> float:
    """Wall seconds of one ffmpeg command: decode, lut3d, RGB -> YUV, encode, audio copied."""
    return ffmpeg_filtered(info, "format=rgb24,lut3d=file=look.cube:interp=trilinear", cube.parent, dst, codec, crf)


def local_recipe(stylizer) -> Optional[Recipe]:
    """The stylizer's look recipe when it has local operators (None for a colour look or a model)."""
    recipe = getattr(stylizer, "recipe", None)
    return recipe if isinstance(recipe, Recipe) and not recipe.is_colour_only else None


def _chain_of(bundle: Path, recipe: Recipe, info: VideoInfo, folder: Path) -> str:
    """The recipe as an ffmpeg filtergraph for the clip's frame size, fed rgb24 as our path is; the
    bundle's ``.cube`` files it names copied (hash-checked) into ``folder``, as ``look.ffmpeg.txt``
    expects them beside it."""
    manifest = load_manifest(bundle)
    for art in manifest.artifacts.values():
        if art.format == "cube" and art.file in recipe.tables:
            target = folder / art.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bundle_files.read_artifact(bundle, art, True))
    chain = filter_chain(recipe, info.width, info.height)
    (folder / CHAIN_FILE).write_text(chain, encoding="utf-8")
    return "format=rgb24," + chain


def chain_agreement(stylizer, info: VideoInfo, graph: str, folder: Path) -> dict[str, Any]:
    """Our frames vs the chain's, both rgb24 straight from the decoder: PSNR (whole clip, worst frame)
    and the largest difference in levels."""
    styler = FrameStyler(stylizer, float(info.fps), 1.0)
    errors, per_frame, worst = [], [], 0
    with FrameReader(info) as ours, FrameReader(info, graph, cwd=folder) as theirs:
        for frame in ours:
            ref = theirs.read()
            if ref is None:
                raise VideoError("the ffmpeg chain gave fewer frames than the clip has")
            mine = styler(frame)
            diff = mine.astype(np.int16) - ref.astype(np.int16)
            errors.append(float(np.mean(diff.astype(np.float64) ** 2)))
            per_frame.append(psnr(mine, ref))
            worst = max(worst, int(np.abs(diff).max()))
    styler.close()
    whole = float(10 * np.log10(255.0**2 / max(np.mean(errors), 1e-10)))
    return {"frames": len(per_frame), "psnr": round(min(whole, 100.0), 2), "psnr_min": round(min(per_frame), 2),
            "max_diff_levels": worst}


def agreement(stylizer, info: VideoInfo, cube: Path) -> dict[str, Any]:
    """Our frames vs lut3d's, both rgb24 straight from the decoder (no encoder in between)."""
    styler = FrameStyler(stylizer, float(info.fps), 1.0)
    worst, differ, values, frames = 0, 0, 0, 0
    with FrameReader(info) as ours, FrameReader(info, "format=rgb24,lut3d=file=look.cube:interp=trilinear",
                                                 cwd=cube.parent) as theirs:
        for frame in ours:
            ref = theirs.read()
            if ref is None:
                raise VideoError("lut3d gave fewer frames than the clip has")
            diff = np.abs(styler(frame).astype(np.int16) - ref.astype(np.int16))
            worst = max(worst, int(diff.max()))
            differ += int(np.count_nonzero(diff))
            values += diff.size
            frames += 1
    styler.close()
    return {"frames": frames, "max_diff_levels": worst, "differing_share": differ / max(1, values)}


def flicker(stylizer: AdaptiveLutStylizer, info: VideoInfo, tau_s: float = DEFAULT_TAU_S,
            lut_size: int = 17) -> dict[str, Any]:
    """Frame-to-frame change of an adaptive look's parameters and baked LUT, per frame vs smoothed.

    LUT change: mean |LUT_t - LUT_{t-1}| over the ``lut_size^3`` nodes in 8-bit levels.
    """
    look = stylizer.look
    smoother = ParamSmoother(float(info.fps), tau_s)
    raw, smooth = [], []
    with FrameReader(info) as reader:
        for frame in reader:
            thumb = look.thumbnail(frame)
            p = look.predict(thumb)
            raw.append(p)
            smooth.append(smoother.update(p, thumb))
    luts_raw = [look.bake(p, lut_size).table * 255.0 for p in raw]
    luts_smooth = [look.bake(p, lut_size).table * 255.0 for p in smooth]
    return {"frames": len(raw), "tau_s": tau_s, "cuts": smoother.cuts,
            "params_raw": frame_changes(raw), "params_smoothed": frame_changes(smooth),
            "lut_levels_raw": frame_changes(luts_raw), "lut_levels_smoothed": frame_changes(luts_smooth)}


def bench_video(bundle, clip, artifact: str = "auto", threads: Optional[int] = None,
                codec: str = "libx264", crf: int = DEFAULT_CRF, smooth_s: float = DEFAULT_TAU_S) -> dict[str, Any]:
    """Every figure of the module doc for one bundle on one clip."""
    bundle, clip = Path(bundle), Path(clip)
    info = probe(clip)
    stylizer = open_bundle(bundle, artifact=artifact, threads=threads)
    result: dict[str, Any] = {
        "bundle": str(bundle), "clip": str(clip), "stylizer": stylizer.info(), "codec": codec, "crf": crf,
        "clip_info": {"size": f"{info.width}x{info.height}", "fps": str(info.fps), "frames": info.frames,
                      "codec": info.codec, "audio_streams": info.audio_streams},
        "ffmpeg": ffmpeg_version(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="styleforge-video-bench-"))
    try:
        recipe = local_recipe(stylizer)
        if hasattr(stylizer, "applier") and not isinstance(stylizer, AdaptiveLutStylizer) and recipe is None:
            stylizer.applier.table_u8(1.0)  # the 256^3 table is loading, not the first frame
        decode_s, sample = _decode_only(info)
        n = info.frames
        alone_ms = _style_alone(stylizer, info, sample, smooth_s)
        del sample
        timed = _timed_run(stylizer, info, tmp / f"ours{clip.suffix}", codec, crf, smooth_s)
        style = np.array(timed.pop("style_frame_s")) * 1000.0
        result["ours"] = {**timed, "decode_only_ms": decode_s * 1000.0 / n, "style_alone_ms": alone_ms,
                          "style_ms_median": float(np.median(style)), "style_ms_mean": float(style.mean())}
        cube = None if recipe is not None else _cube_of(bundle, tmp)
        if recipe is not None:
            graph = _chain_of(bundle, recipe, info, tmp)
            chain_s = ffmpeg_filtered(info, graph, tmp, tmp / f"chain{clip.suffix}", codec, crf, what="chain")
            result["ffmpeg_chain"] = {"seconds": chain_s, "fps": n / chain_s, "frame_size": [info.width, info.height]}
            result["ratio"] = result["ours"]["fps"] / result["ffmpeg_chain"]["fps"]
            result["agreement"] = chain_agreement(stylizer, info, graph, tmp)
        elif cube is not None and has_lut3d():
            lut_s = ffmpeg_lut3d(info, cube, tmp / f"lut3d{clip.suffix}", codec, crf)
            result["ffmpeg_lut3d"] = {"seconds": lut_s, "fps": n / lut_s}
            result["ratio"] = result["ours"]["fps"] / result["ffmpeg_lut3d"]["fps"]
            plain = open_bundle(bundle, artifact="lut", adaptive=False, threads=threads)
            result["agreement"] = agreement(plain, info, cube)
            plain.close()
        elif cube is None:
            result["note"] = "the bundle has no look.cube: no ffmpeg lut3d comparison"
        if isinstance(stylizer, AdaptiveLutStylizer):
            result["flicker"] = flicker(stylizer, info, smooth_s or DEFAULT_TAU_S)
    finally:
        stylizer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _timed_run(stylizer, info: VideoInfo, dst: Path, codec: str, crf: int, smooth_s: float) -> dict[str, Any]:
    """stylize_video's path with the children's CPU time read: fps and ms per frame per stage."""
    styler = FrameStyler(stylizer, float(info.fps), 1.0, smooth_s)
    start = time.perf_counter()
    stats, reader, writer = pump(info, styler, dst, codec, crf)
    decoder_cpu = reader.cpu_s
    seconds = time.perf_counter() - start
    n = max(1, int(stats["frames"]))
    return {"frames": n, "seconds": seconds, "fps": n / seconds,
            "decode_cpu_ms": decoder_cpu * 1000.0 / n if decoder_cpu is not None else None,
            "encode_cpu_ms": writer.cpu_s * 1000.0 / n if writer.cpu_s is not None else None,
            "wait_decode_ms": stats["wait_decode_s"] * 1000.0 / n,
            "wait_encode_ms": stats["wait_encode_s"] * 1000.0 / n,
            "style_frame_s": styler.style_s}


def format_report(r: dict[str, Any]) -> str:
    """The result as a few aligned lines."""
    o = r["ours"]
    c = r["clip_info"]
    lines = [f"{r['bundle']} ({r['stylizer']['artifact']} on {r['stylizer']['backend']}) on {r['clip']}: "
             f"{c['size']} {c['codec']}, {c['frames']} frames at {c['fps']} fps; encoder {r['codec']} crf {r['crf']}; "
             f"ffmpeg {r['ffmpeg']}",
             f"  decode   {o['decode_only_ms']:7.2f} ms/frame (decode-only pass, wall; in the styled run the decoder used "
             f"{_ms(o['decode_cpu_ms'])} CPU ms/frame)",
             f"  style    {o['style_alone_ms']:7.2f} ms/frame alone (median of {SAMPLE_FRAMES} frames, nothing beside it); "
             f"in the styled run beside both ffmpeg processes {o['style_ms_median']:.2f} median, "
             f"{o['style_ms_mean']:.2f} mean",
             f"  encode   {_ms(o['encode_cpu_ms']):>7} CPU ms/frame (the encoder's own CPU time)",
             f"  ours     {o['fps']:7.1f} frames/s end to end ({o['seconds']:.2f} s)"]
    if "ffmpeg_lut3d" in r:
        a = r["agreement"]
        lines += [f"  lut3d    {r['ffmpeg_lut3d']['fps']:7.1f} frames/s end to end ({r['ffmpeg_lut3d']['seconds']:.2f} s)"
                  f"  ->  ours / lut3d = {r['ratio']:.2f}x",
                  f"  agree    max {a['max_diff_levels']} level(s) over {a['frames']} frames (rgb24, lossless); "
                  f"{100 * a['differing_share']:.3f}% of values differ"]
    if "ffmpeg_chain" in r:
        a = r["agreement"]
        lines += [f"  chain    {r['ffmpeg_chain']['fps']:7.1f} frames/s end to end ({r['ffmpeg_chain']['seconds']:.2f} s, "
                  f"the recipe as an ffmpeg filtergraph for {c['size']})  ->  ours / chain = {r['ratio']:.2f}x",
                  f"  agree    chain vs ours {a['psnr']:.2f} dB over {a['frames']} frames (worst frame {a['psnr_min']:.2f}, "
                  f"max {a['max_diff_levels']} levels; rgb24, lossless)"]
    if "note" in r:
        lines.append(f"  note     {r['note']}")
    if "flicker" in r:
        f = r["flicker"]
        lines.append(f"  flicker  per-frame change, raw -> smoothed (tau {f['tau_s']} s, {f['cuts']} cut(s)): "
                     f"params mean {f['params_raw']['mean']:.4f} -> {f['params_smoothed']['mean']:.4f}, "
                     f"LUT mean {f['lut_levels_raw']['mean']:.3f} -> {f['lut_levels_smoothed']['mean']:.3f} levels, "
                     f"LUT p95 {f['lut_levels_raw']['p95']:.3f} -> {f['lut_levels_smoothed']['p95']:.3f}, "
                     f"largest node jump {f['lut_levels_raw']['max_element']:.2f} -> "
                     f"{f['lut_levels_smoothed']['max_element']:.2f} levels")
    return "\n".join(lines)


def _ms(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"
