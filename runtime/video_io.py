"""Video in and out of the runtime through ffmpeg child processes: raw rgb24 frames over pipes.

ffmpeg comes from the optional ``imageio-ffmpeg`` package (``pip install styleforge[video]``),
which ships a static ffmpeg binary; ``IMAGEIO_FFMPEG_EXE`` points it at another one. Nothing is
imported from it at module level, so the runtime imports without it.

- :func:`probe` reads a clip's video packets with a stream copy (``-c copy -f framecrc``: no
  decoding): the exact time base and every packet's timestamp give the frame count, the frame
  rate as an exact fraction (``30000/1001``), the start time and whether the rate is constant;
  the upright frame size comes from the first decoded frame (rotation metadata applied, as ffmpeg
  decodes); audio streams and colour tags come from ffmpeg's stream listing.
- :class:`FrameReader` decodes to uint8 ``[H, W, 3]`` RGB frames (rgb24, ffmpeg's own
  YUV -> RGB conversion with the stream's colour matrix), no frame dropped or duplicated.
- :class:`FrameWriter` encodes such frames at the source's rate, copies the source's audio
  streams untouched (``-c:a copy``) and tags the output with the source's colour matrix and
  range, so a round trip keeps colours.

Errors are :class:`VideoError` with ffmpeg's last message; every child is killed and waited
for on failure or interruption, so none outlives the caller.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np

from styleforge.errors import StyleforgeError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                  ".m2ts", ".wmv", ".flv", ".3gp", ".ogv", ".nut")
INSTALL_HINT = "pip install styleforge[video]"
# encoder -> (pixel format it is fed, extra options); rgb formats are lossless for our frames
CODECS: dict[str, tuple[str, tuple[str, ...]]] = {
    "libx264": ("yuv420p", ("-preset", "veryfast")),
    "libx265": ("yuv420p", ("-preset", "fast")),
    "libvpx-vp9": ("yuv420p", ("-b:v", "0", "-row-mt", "1")),
    "mpeg4": ("yuv420p", ()),
    "libx264rgb": ("rgb24", ("-preset", "veryfast")),
    "ffv1": ("bgr0", ()),
    "png": ("rgb24", ()),
}
LOSSLESS_CODECS = ("ffv1", "png")
DEFAULT_CRF = 18
PathLike = Union[str, os.PathLike]


class VideoError(StyleforgeError, ValueError):
    """A clip ffmpeg cannot read or write, or no ffmpeg; the message says which and why."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary of ``imageio-ffmpeg``; :class:`VideoError` with the install hint without it."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError(f"video needs ffmpeg: {INSTALL_HINT}") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise VideoError(f"no usable ffmpeg ({err}): {INSTALL_HINT}") from None


def is_video(path: PathLike) -> bool:
    """Whether ``path``'s name says video (by extension; :func:`probe` then says what it holds)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def default_codec(dst: PathLike) -> str:
    """The encoder for an output name: VP9 for ``.webm``, FFV1 for ``.nut``, else H.264."""
    suffix = Path(dst).suffix.lower()
    return {".webm": "libvpx-vp9", ".nut": "ffv1"}.get(suffix, "libx264")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found. ``pts``: every frame's presentation time in seconds, sorted."""

    path: Path
    width: int  # upright, as decoded
    height: int
    fps: Fraction
    frames: int
    start: float  # seconds, the first frame's time
    constant_rate: bool
    codec: str
    audio_streams: int
    colour: dict[str, str] = field(default_factory=dict)  # range, matrix (+ primaries, transfer) when tagged
    pts: tuple[float, ...] = ()

    @property
    def duration(self) -> float:
        return self.frames / float(self.fps) if self.fps else 0.0


def _last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(" ")]
    return lines[-1] if lines else "ffmpeg failed"


def _run(args: list[str], what: str, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VideoError(f"{what}: ffmpeg took longer than {timeout:.0f} s") from None


_LEVEL = re.compile(r"^(?:\[[^\]]* @ [^\]]*\] )?\[(\w+)\] ?(.*)$")  # -loglevel level+info lines
_STREAM = re.compile(r"^\s*Stream #0:\d+.*?: (Video|Audio): (\w+)(.*)$")
_PIXFMT = re.compile(r"^[^,]*?, (\w+)\(([^)]*)\)")


def _colour_tags(rest: str) -> dict[str, str]:
    """``yuv420p(tv, bt709/bt709/bt709, progressive)`` -> range, matrix, primaries, transfer."""
    m = _PIXFMT.match(rest)
    if not m:
        return {}
    tags: dict[str, str] = {}
    for part in (p.strip() for p in m.group(2).split(",")):
        if part in ("tv", "pc"):
            tags["range"] = part
        elif part and part not in ("progressive", "tt", "bb", "tb", "bt", "top first", "bottom first") \
                and not part.startswith(("left", "center", "top", "bottom")):
            names = part.split("/")
            tags["matrix"] = names[0]
            if len(names) == 3:
                tags["primaries"], tags["transfer"] = names[1], names[2]
    return tags


def probe(path: PathLike, timeout: Optional[float] = 300.0) -> VideoInfo:
    """Facts of ``path``'s first video stream (see the module doc); VideoError when it has none,
    is not a video ffmpeg reads, or its first frame cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    proc = _run(["-loglevel", "level+info", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc",
                 "pipe:1"], str(path), timeout)
    levels = [_LEVEL.match(line) for line in proc.stderr.decode("utf-8", "replace").splitlines()]
    stderr = "\n".join(m.group(2) for m in levels if m)
    damage = [m.group(2).strip() for m in levels
              if m and (m.group(1) in ("error", "fatal", "panic") or "corrupt" in m.group(2).lower())]
    if proc.returncode != 0:
        if "matches no streams" in stderr:
            raise VideoError(f"{path}: has no video stream")
        raise VideoError(f"{path}: not a video ffmpeg can read ({_last_error(stderr)})")
    if damage:  # the container or the stream is cut short or broken: refuse rather than drop frames
        raise VideoError(f"{path}: the clip is truncated or damaged ({damage[0]})")
    time_base, pts, durations, codec = Fraction(1, 1), [], [], ""
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        if line.startswith("#tb 0:"):
            time_base = Fraction(line.split(":", 1)[1].strip())
        elif line.startswith("#codec_id 0:"):
            codec = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            cols = [c.strip() for c in line.split(",")]
            if len(cols) >= 4 and cols[0] == "0":
                pts.append(int(cols[2]))
                durations.append(int(cols[3]))
    if not pts:
        raise VideoError(f"{path}: its video stream holds no frames")
    pts.sort()
    fps, constant = _frame_rate(pts, durations, time_base)
    audio, colour = 0, {}
    in_input = False
    for line in stderr.splitlines():
        if line.startswith("Input #0"):
            in_input = True
        elif line.startswith(("Output #", "Stream mapping")):
            in_input = False
        m = _STREAM.match(line) if in_input else None
        if m and m.group(1) == "Audio":
            audio += 1
        elif m and m.group(1) == "Video" and not colour:
            colour = _colour_tags(m.group(3))
    width, height = _first_frame_size(path, timeout)
    return VideoInfo(path, width, height, fps, len(pts), float(pts[0] * time_base), constant, codec, audio,
                     colour, tuple(float(p * time_base) for p in pts))


COMMON_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50",
                                             "60000/1001", "60", "120"))


def _frame_rate(pts: list[int], durations: list[int], time_base: Fraction) -> tuple[Fraction, bool]:
    """(frames per second, constant) from sorted packet timestamps in ``time_base`` ticks.

    Constant when one rate puts every frame within one tick of ``pts[0] + i / fps`` (so 24 fps
    in a millisecond time base, steps of 41 and 42 ticks, is 24 fps): the exact step when all
    steps are equal, else the nearest common rate that fits, else the average rate as a small fraction.
    """
    steps = {b - a for a, b in zip(pts, pts[1:])}
    if len(steps) == 1 and 0 not in steps:
        return 1 / (steps.pop() * time_base), True
    if len(pts) < 2 or pts[-1] <= pts[0]:
        if durations and durations[0] > 0:
            return 1 / (durations[0] * time_base), True
        return Fraction(25), True
    average = Fraction(len(pts) - 1) / ((pts[-1] - pts[0]) * time_base)
    for fps in [*sorted(COMMON_RATES, key=lambda r: abs(r - average)), average.limit_denominator(1001)]:
        ticks = 1 / (fps * time_base)  # frame step in ticks (a fraction)
        if all(abs(p - pts[0] - i * ticks) <= 1 for i, p in enumerate(pts)):
            return fps, True
    return average.limit_denominator(1001), False


def _first_frame_size(path: Path, timeout: Optional[float]) -> tuple[int, int]:
    """(width, height) of the first decoded frame, from its PPM header (upright, as decoded)."""
    proc = _run(["-v", "error", "-i", str(path), "-map", "0:v:0", "-frames:v", "1", "-f", "image2pipe",
                 "-c:v", "ppm", "pipe:1"], str(path), timeout)
    head = proc.stdout[:64].split()
    if proc.returncode != 0 or len(head) < 3 or head[0] != b"P6":
        raise VideoError(f"{path}: its first frame cannot be decoded ({_last_error(proc.stderr.decode('utf-8', 'replace'))})")
    return int(head[1]), int(head[2])


# ------------------------------------------------------------------------------ the pipes


class _Child:
    """An ffmpeg child with its stderr drained by a thread (so it can never block on it).
    ``cpu_s``: the CPU seconds (user + system) it used, once it has been waited for (POSIX)."""

    def __init__(self, args: list[str], what: str, stdin=None, stdout=None, cwd: Optional[PathLike] = None):
        self.what = what
        self.cpu_s: Optional[float] = None
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args],
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     stdout=stdout if stdout is not None else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=cwd)
        self._err = bytearray()
        self._drain = threading.Thread(target=self._read_stderr, daemon=True, name="ffmpeg-stderr")
        self._drain.start()

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):
            if len(self._err) < 1 << 16:
                self._err += chunk

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", "replace")

    def wait(self) -> int:
        with self._lock:  # one waiter: wait4 reaps the child and reads its CPU time
            if self.proc.returncode is None and hasattr(os, "wait4"):
                try:
                    _, status, usage = os.wait4(self.proc.pid, 0)
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    self.cpu_s = usage.ru_utime + usage.ru_stime
                except ChildProcessError:  # reaped elsewhere
                    pass
            rc = self.proc.wait()
        self._drain.join(timeout=5)
        return rc

    def kill(self) -> None:
        with self._lock:
            if self.proc.returncode is None:
                self.proc.kill()
        self.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class FrameReader:
    """Decoded frames of a clip: iterate for uint8 ``[H, W, 3]`` RGB arrays (each a new array).

    ``info``: the clip's :class:`VideoInfo`. A variable-rate clip is read at its average rate
    (frames repeated or dropped by ffmpeg), a constant-rate one frame for frame. After the last
    frame, VideoError when ffmpeg failed or gave fewer frames than the clip's packets (truncated
    or damaged data). Use as a context manager (the child is killed on exit).
    """

    def __init__(self, info: VideoInfo, extra_filters: str = "", cwd: Optional[PathLike] = None):
        self.info = info
        timing = (["-fps_mode", "passthrough"] if info.constant_rate
                  else ["-fps_mode", "cfr", "-r", str(info.fps)])
        vf = ["-vf", extra_filters] if extra_filters else []
        self.frame_bytes = info.width * info.height * 3
        self.count = 0
        self._child = _Child(["-i", str(info.path.absolute()), "-map", "0:v:0", "-an", "-sn", "-dn", *timing, *vf,
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], str(info.path),
                             stdout=subprocess.PIPE, cwd=cwd)

    @property
    def cpu_s(self) -> Optional[float]:
        """CPU seconds the decoder used (known once it ended)."""
        return self._child.cpu_s

    def read(self) -> Optional[np.ndarray]:
        """The next frame, or None at the end (after checking how the decoder ended)."""
        frame = np.empty((self.info.height, self.info.width, 3), dtype=np.uint8)
        view = memoryview(frame.reshape(-1))
        got = 0
        while got < self.frame_bytes:
            n = self._child.proc.stdout.readinto(view[got:])
            if not n:
                break
            got += n
        if got == self.frame_bytes:
            self.count += 1
            return frame
        self._finish(partial=got > 0)
        return None

    def _finish(self, partial: bool) -> None:
        rc = self._child.wait()
        where = self.info.path
        if rc != 0:
            raise VideoError(f"{where}: decoding failed after {self.count} frame(s) ({_last_error(self._child.stderr)})")
        if partial:
            raise VideoError(f"{where}: the decoder stopped inside frame {self.count + 1}")
        if self.info.constant_rate and self.count < self.info.frames:
            raise VideoError(f"{where}: decoded {self.count} of {self.info.frames} frames: the clip is truncated "
                             f"or damaged ({_last_error(self._child.stderr)})")

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._child.kill()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def encoder_pix_fmt(info: VideoInfo, codec: str) -> str:
    """The pixel format ``codec`` is fed: :data:`CODECS`'s (yuv420p for others), yuv444p where
    4:2:0 cannot hold an odd width or height (the size stays exact)."""
    pix_fmt = CODECS.get(codec, ("yuv420p", ()))[0]
    if pix_fmt == "yuv420p" and (info.width % 2 or info.height % 2):
        pix_fmt = "yuv444p"
    return pix_fmt


def colour_args(info: VideoInfo, pix_fmt: str) -> list[str]:
    """ffmpeg output options for RGB -> ``pix_fmt``: for YUV, ``-vf scale=...`` with the source's
    matrix and range (bt601, limited, when untagged or RGB-coded: what the decoder assumes), then
    the tags."""
    if not pix_fmt.startswith("yuv"):
        return []
    tags = info.colour
    if tags.get("matrix") == "gbr":  # an RGB-coded source (FFV1, PNG, x264rgb): no YUV matrix to keep
        tags = {}  # encode as an untagged clip is decoded: bt601, limited range
    matrix = tags.get("matrix", "bt601")
    matrix = {"smpte170m": "bt601", "bt470bg": "bt601", "bt2020nc": "bt2020"}.get(matrix, matrix)
    if matrix not in ("bt601", "bt709", "fcc", "smpte240m", "bt2020"):
        matrix = "bt601"
    out_range = "pc" if tags.get("range") == "pc" else "tv"
    args = ["-vf", f"scale=out_color_matrix={matrix}:out_range={out_range}"]
    if "matrix" in tags:
        args += ["-colorspace", tags["matrix"], "-color_range", out_range]
        if tags.get("primaries", "unknown") != "unknown":
            args += ["-color_primaries", tags["primaries"]]
        if tags.get("transfer", "unknown") != "unknown":
            args += ["-color_trc", tags["transfer"]]
    return args


class FrameWriter:
    """Encodes uint8 ``[H, W, 3]`` RGB frames into ``dst`` at ``info``'s size and rate, with the
    audio streams of ``info.path`` copied untouched (``audio_from``: another file's, or None).

    ``codec``: a key of :data:`CODECS` or any ffmpeg encoder (fed ``pix_fmt``, default yuv420p,
    or yuv444p for odd sizes); ``crf``: quality for the codecs that take one. The container
    follows ``dst``'s suffix. :meth:`close` waits for ffmpeg and raises VideoError on failure.
    """

    def __init__(self, info: VideoInfo, dst: PathLike, codec: Optional[str] = None, crf: int = DEFAULT_CRF,
                 audio_from: Optional[PathLike] = "source", pix_fmt: Optional[str] = None):
        codec = codec or default_codec(dst)
        options = CODECS.get(codec, ("yuv420p", ()))[1]
        pix_fmt = pix_fmt or encoder_pix_fmt(info, codec)
        self.info, self.dst, self.codec = info, Path(dst), codec
        source = info.path if audio_from == "source" else audio_from
        start = ["-itsoffset", f"{info.start:.6f}"] if info.start else []
        args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{info.width}x{info.height}",
                "-framerate", str(info.fps), *start, "-i", "pipe:0"]
        maps = ["-map", "0:v:0"]
        if source is not None and info.audio_streams:
            args += ["-i", str(source)]
            maps += ["-map", "1:a?", "-c:a", "copy", "-map_metadata", "1"]
        quality = ["-crf", str(int(crf))] if codec in ("libx264", "libx265", "libvpx-vp9", "libx264rgb") else []
        if codec == "mpeg4":
            quality = ["-q:v", "2"]
        args += [*maps, "-c:v", codec, *options, *quality, *colour_args(info, pix_fmt), "-pix_fmt", pix_fmt,
                 "-y", str(self.dst)]
        self.count = 0
        self._child = _Child(args, str(dst), stdin=subprocess.PIPE)

    @property
    def cpu_s(self) -> Optional[float]:
        """CPU seconds the encoder used (known after :meth:`close`)."""
        return self._child.cpu_s

    def write(self, frame: np.ndarray) -> None:
        """One uint8 ``[H, W, 3]`` frame of the clip's size."""
        frame = np.ascontiguousarray(frame)
        if frame.dtype != np.uint8 or frame.shape != (self.info.height, self.info.width, 3):
            raise ValueError(f"expected a uint8 [{self.info.height}, {self.info.width}, 3] frame, got "
                             f"{frame.dtype} {list(frame.shape)}")
        try:
            self._child.proc.stdin.write(memoryview(frame.reshape(-1)))
        except (BrokenPipeError, OSError):
            self._child.kill()
            raise VideoError(f"{self.dst}: encoding failed after {self.count} frame(s) "
                             f"({_last_error(self._child.stderr)})") from None
        self.count += 1

    def close(self) -> None:
        """Finish the file; VideoError when ffmpeg failed."""
        try:
            self._child.proc.stdin.close()
        except OSError:
            pass
        rc = self._child.wait()
        if rc != 0:
            raise VideoError(f"{self.dst}: encoding with {self.codec} failed ({_last_error(self._child.stderr)})")

    def abort(self) -> None:
        """Kill the encoder (the caller removes the partial file)."""
        self._child.kill()
