"""A test and benchmark clip made from the album's photos: slow pans and crossfades, with audio.

``make_album_clip("clip.mp4", size=(1920, 1080), fps=25, seconds=4)`` writes a real video
(H.264 by default, yuv420p, the container by suffix) of album photos, each panned and slowly
zoomed across, dissolving into the next over ``fade_s`` seconds, and an audio track from
ffmpeg's ``sine`` source (AAC; FLAC in .mkv/.nut, Opus in .webm): what a
slideshow or a camera pan gives, so frame-to-frame changes are gradual as in real footage.
Nothing is downloaded. Also ``python -m styleforge.benchmarks.video_clip OUT [--size WxH]
[--fps N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.runtime.video_io import VideoError, ffmpeg_exe


def _shot(photo: Image.Image, size: tuple[int, int], t: float) -> np.ndarray:
    """The frame at phase ``t`` in [0, 1] of a slow pan + zoom across ``photo``: uint8 [H, W, 3]."""
    w, h = size
    pw, ph = photo.size
    aspect = w / h
    crop_h = min(ph, pw / aspect) * (0.9 - 0.1 * t)  # zoom in by ~10% over the shot
    crop_w = crop_h * aspect
    x0 = (pw - crop_w) * (0.15 + 0.7 * t)  # pan left to right
    y0 = (ph - crop_h) * (0.5 + 0.2 * (t - 0.5))
    box = (x0, y0, x0 + crop_w, y0 + crop_h)
    return np.asarray(photo.resize((w, h), Image.BILINEAR, box=box))


def album_frames(size: tuple[int, int], fps: float, seconds: float, shot_s: float = 1.5, fade_s: float = 0.5,
                 photos: Optional[Sequence[Path]] = None):
    """Yield ``round(fps * seconds)`` uint8 ``[H, W, 3]`` frames (see the module doc)."""
    paths = list(photos or album_paths())[::3]
    images = [Image.open(p).convert("RGB") for p in paths]
    count = int(round(fps * seconds))
    for i in range(count):
        t = i / fps
        k = int(t // shot_s)
        phase = (t - k * shot_s) / shot_s
        frame = _shot(images[k % len(images)], size, phase).astype(np.float32)
        into_next = t - k * shot_s - (shot_s - fade_s)
        if into_next > 0:  # the last fade_s of a shot dissolves into the next one
            a = into_next / fade_s
            nxt = _shot(images[(k + 1) % len(images)], size, 0.0).astype(np.float32)
            frame = frame * (1.0 - a) + nxt * a
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def make_album_clip(path, size: tuple[int, int] = (320, 240), fps: int = 25, seconds: float = 1.0,
                    audio: bool = True, codec: str = "libx264", crf: int = 18) -> Path:
    """Write the clip to ``path``; returns it. VideoError when ffmpeg fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "pipe:0"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
        suffix = path.suffix.lower()
        cmd += ["-c:a", "flac" if suffix in (".mkv", ".nut") else "libopus" if suffix == ".webm" else "aac"]
    pix = "yuv420p" if codec in ("libx264", "libx265", "libvpx-vp9", "mpeg4") else "rgb24"
    if pix == "yuv420p" and (w % 2 or h % 2):
        pix = "yuv444p"  # 4:2:0 needs even sizes
    quality = ["-crf", str(crf), "-preset", "veryfast"] if codec == "libx264" else []
    cmd += ["-c:v", codec, *quality, "-pix_fmt", pix, "-t", str(seconds), str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in album_frames(size, fps, seconds):
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    finally:
        err = proc.stderr.read().decode("utf-8", "replace")
        rc = proc.wait()
    if rc != 0:
        raise VideoError(f"{path}: ffmpeg could not write the clip ({err.strip().splitlines()[-1:] or rc})")
    return path


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Write a clip of album photos (pans, crossfades, a sine tone).")
    p.add_argument("out")
    p.add_argument("--size", default="1920x1080", help="WxH [1920x1080]")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--codec", default="libx264")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(make_album_clip(args.out, (w, h), args.fps, args.seconds, codec=args.codec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
