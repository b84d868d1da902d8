"""Stylize a video clip frame by frame: decode -> numpy -> style -> encode, audio copied untouched.

``stylize_video(stylizer, "clip.mp4", "styled/clip.mp4")`` works with every stylizer:

- the LUT path (a bundle's ``look.cube``): one global colour function, so it cannot flicker;
  a 1080p frame costs a few ms (:class:`~styleforge.runtime.lut.LutApplier`'s 8-bit table);
- an image-adaptive LUT bundle: a LUT per frame from the frame's thumbnail, its parameters
  smoothed over time (:class:`~styleforge.runtime.temporal.ParamSmoother`, ``smooth_s``) so the
  look follows the scene without flickering; a scene cut restarts the average;
- a look recipe (colour + local operators): the recipe per frame, on the whole frame, exactly as on
  a still (``stylize_rgb``). It cannot flicker from the frame's own statistics, because no operator
  reads any: radii are fractions of the frame's short side, the vignette is geometry, and grain's
  field depends on its seed and the frame size only. A still part of the picture therefore stays
  bit for bit still. Grain is one fixed pattern, the same on every frame, as on a still: a video
  frame equals the same photo styled alone, and a static pattern costs the encoder nothing
  frame to frame. Film grain that moves would need a seed per frame, and no recipe asks for that yet;
- a model artifact (TFLite, ONNX, ...): the model stylizer per frame, tiled at any size.

Three threads overlap the work: one reads decoded frames from ffmpeg, the caller's thread
styles them, one feeds the encoder (ffmpeg runs in its own processes, see
:mod:`~styleforge.runtime.video_io`). The output has the source's size, frame count, frame
rate and timestamps, and its audio streams bit for bit. It is written to a hidden temporary file
in the output folder and renamed into place when complete: an error or Ctrl-C leaves nothing
half-written, and the input is never overwritten.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from styleforge.atomic import replacing
from styleforge.progress import progress
from styleforge.runtime import lut as rlut
from styleforge.runtime.adaptive_lut import AdaptiveLutStylizer
from styleforge.runtime.stylizer_base import Stylizer
from styleforge.runtime.temporal import DEFAULT_TAU_S, ParamSmoother
from styleforge.runtime.video_io import (
    DEFAULT_CRF,
    FrameReader,
    FrameWriter,
    VideoError,
    VideoInfo,
    probe,
)

PathLike = Union[str, os.PathLike]
QUEUE_FRAMES = 3  # frames in flight between the threads (a 1080p frame is 6 MB)


class FrameStyler:
    """``styler(frame)``: uint8 ``[H, W, 3]`` RGB -> the same, one frame of a clip after another.

    Image-adaptive LUT stylizers get their per-frame parameters smoothed over time (``smooth_s``
    seconds, 0 = each frame alone); ``raw_params`` / ``used_params`` keep both per frame; the
    frame's LUT is applied with Pillow's ``Color3DLUT`` over a thread per strip
    (:func:`~styleforge.runtime.lut.apply_pillow`: within 1 level of the stills' exact path, about
    ten times faster than it at 1080p, as no 256^3 table can be built per frame). Every other
    stylizer runs ``stylize_rgb`` per frame. ``style_s``: seconds spent per frame.
    """

    def __init__(self, stylizer: Stylizer, fps: float, strength: float = 1.0,
                 smooth_s: float = DEFAULT_TAU_S):
        self.stylizer = stylizer
        self.strength = float(strength)
        self.adaptive = isinstance(stylizer, AdaptiveLutStylizer)
        self.smoother = ParamSmoother(fps, smooth_s) if self.adaptive else None
        self.raw_params: list[np.ndarray] = []
        self.used_params: list[np.ndarray] = []
        self.style_s: list[float] = []
        self._pool: Optional[ThreadPoolExecutor] = None
        if self.adaptive and stylizer.applier.threads > 1:
            self._pool = ThreadPoolExecutor(stylizer.applier.threads, thread_name_prefix="styleforge-frame")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if self.adaptive and self.strength > 0.0:
            look = self.stylizer.look
            thumb = look.thumbnail(frame)
            raw = look.predict(thumb)
            used = self.smoother.update(raw, thumb)
            self.raw_params.append(raw)
            self.used_params.append(used)
            lut = look.bake(used, self.stylizer.bake_size, "per-frame")
            out = rlut.apply_pillow(lut, frame, self.strength, self._pool)
        else:
            out = self.stylizer.stylize_rgb(frame, self.strength)
        self.style_s.append(time.perf_counter() - start)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@dataclass
class VideoResult:
    """What :func:`stylize_video` did: the clip's facts, frames written, and where time went
    (seconds the styling thread waited for decoded frames, styled, waited on the encoder)."""

    info: VideoInfo
    dst: Path
    frames: int
    seconds: float
    wait_decode_s: float = 0.0
    style_s: float = 0.0
    wait_encode_s: float = 0.0
    styler: Optional[FrameStyler] = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event, alive: Callable[[], bool]) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set() or not alive():
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return None


def run_frames(reader: FrameReader, style: Callable[[np.ndarray], np.ndarray],
               sink: Callable[[np.ndarray], None], total: Optional[int] = None, desc: str = "",
               quiet: bool = True) -> dict[str, float]:
    """Every frame of ``reader`` through ``style`` into ``sink``, reading and sinking on threads.

    Returns the styling thread's ``wait_decode_s``, ``style_s``, ``wait_encode_s`` and ``frames``.
    The first error of any thread is raised here after all threads stopped.
    """
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    styled: queue.Queue = queue.Queue(QUEUE_FRAMES)
    stop = threading.Event()
    errors: list[BaseException] = []

    def read_loop() -> None:
        try:
            for frame in reader:
                if not _put(decoded, frame, stop):
                    return
        except BaseException as err:  # noqa: B036  (handed to the caller's thread)
            errors.append(err)
        finally:
            _put(decoded, None, stop)

    def write_loop() -> None:
        try:
            while True:
                frame = _get(styled, stop, lambda: True)
                if frame is None:
                    return
                sink(frame)
        except BaseException as err:  # noqa: B036
            errors.append(err)
            stop.set()

    threads = [threading.Thread(target=read_loop, name="video-decode", daemon=True),
               threading.Thread(target=write_loop, name="video-encode", daemon=True)]
    for t in threads:
        t.start()
    stats = {"wait_decode_s": 0.0, "style_s": 0.0, "wait_encode_s": 0.0, "frames": 0}

    def frames():
        while not errors:
            t0 = time.perf_counter()
            frame = _get(decoded, stop, threads[0].is_alive)
            stats["wait_decode_s"] += time.perf_counter() - t0
            if frame is None:
                return
            yield frame

    try:
        for frame in progress(frames(), total=total, desc=desc, disable=quiet):
            t0 = time.perf_counter()
            out = style(frame)
            t1 = time.perf_counter()
            if not _put(styled, out, stop):
                break
            stats["style_s"] += t1 - t0
            stats["wait_encode_s"] += time.perf_counter() - t1
            stats["frames"] += 1
        _put(styled, None, stop)
        threads[1].join()
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        reader.close()  # unblocks a reader thread waiting on the pipe
        for t in threads:
            t.join(timeout=10)
    if errors:
        raise errors[0]
    return stats


def pump(info: VideoInfo, styler: FrameStyler, dst: Path, codec: Optional[str], crf: int, desc: str = "",
         quiet: bool = True) -> tuple[dict, FrameReader, FrameWriter]:
    """Decode ``info``'s clip, style each frame with ``styler``, encode into ``dst`` (written in
    place: the caller makes it atomic). Returns ``(run_frames' stats, reader, writer)``, whose
    ``cpu_s`` are the ffmpeg children's CPU seconds. The styler is closed either way."""
    writer = FrameWriter(info, dst, codec=codec, crf=crf)
    try:
        with FrameReader(info) as reader:
            stats = run_frames(reader, styler, writer.write, total=info.frames, desc=desc, quiet=quiet)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        styler.close()
    return stats, reader, writer


def stylize_video(stylizer: Stylizer, src: PathLike, dst: PathLike, strength: float = 1.0,
                  codec: Optional[str] = None, crf: int = DEFAULT_CRF, smooth_s: float = DEFAULT_TAU_S,
                  quiet: bool = True, info: Optional[VideoInfo] = None) -> VideoResult:
    """Stylize clip ``src`` into ``dst`` (see the module doc); VideoError for a clip ffmpeg cannot
    read or write. ``codec``: an ffmpeg encoder (default by ``dst``'s suffix: H.264, VP9 for
    .webm, FFV1 for .nut); ``crf``: its quality; ``smooth_s``: the adaptive look's time constant."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise VideoError(f"{dst}: refusing to overwrite the input")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    info = info or probe(src)
    styler = FrameStyler(stylizer, float(info.fps), strength, smooth_s)
    start = time.perf_counter()
    with replacing(dst) as tmp:
        stats, _, _ = pump(info, styler, tmp, codec, crf, desc=src.name, quiet=quiet)
    return VideoResult(info, dst, int(stats["frames"]), time.perf_counter() - start, stats["wait_decode_s"],
                       stats["style_s"], stats["wait_encode_s"], styler)
