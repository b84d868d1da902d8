"""Video through the runtime: real ffmpeg (imageio-ffmpeg's binary), real clips of album photos.

Each clip is made here from the album (pans, crossfades, a sine tone from ffmpeg's ``sine``
source), so nothing is downloaded. Checked: frame count, size, rate, every timestamp and the
audio packets bit for bit; frames within 1 level of ``ffmpeg -vf lut3d`` (both lossless, in
rgb24); a model artifact per frame exactly as on stills; bad clips end in one line and leave
nothing behind; an image-adaptive look flickers less smoothed; the runtime imports no torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg", reason="video needs the optional extra: pip install styleforge[video]")

from styleforge.benchmarks.video_clip import make_album_clip  # noqa: E402
from styleforge.cli import main  # noqa: E402
from styleforge.runtime.video_io import FrameReader, ffmpeg_exe, probe  # noqa: E402

STYLEFORGE = Path(sys.executable).parent / "styleforge"
LUT3D = "format=rgb24,lut3d=file=look.cube:interp=trilinear"


@pytest.fixture(scope="module")
def lut_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video-bundle") / "warm"
    assert main(["export", "--look", "film-warm", "--lut-size", "17", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """An H.264 + AAC .mp4 (320x240, 20 fps, 1 s) and an H.264 + FLAC .mkv (25 fps, 0.8 s)."""
    root = tmp_path_factory.mktemp("clips")
    return {"mp4": make_album_clip(root / "clip.mp4", (320, 240), fps=20, seconds=1.0),
            "mkv": make_album_clip(root / "clip.mkv", (320, 240), fps=25, seconds=0.8)}


def audio_packets(path: Path) -> tuple[list[tuple[str, ...]], str]:
    """``path``'s audio by stream copy: each packet's (dts, pts, size, CRC) from ffmpeg's framecrc
    (the container's duration field is left out: Matroska rounds the last one to its own clock),
    and the MD5 of all packet payloads (``-f data``)."""
    def ffmpeg(*args: str) -> str:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                               "-map", "0:a", "-c", "copy", *args, "pipe:1"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    rows = [tuple(c.strip() for c in line.split(",")) for line in ffmpeg("-f", "framecrc").splitlines()
            if line and not line.startswith("#")]
    return [(r[1], r[2], r[4], r[5]) for r in rows], ffmpeg("-f", "hash", "-hash", "md5").strip()


def frames_of(path: Path, filters: str = "", cwd=None) -> np.ndarray:
    info = probe(path)
    with FrameReader(info, filters, cwd=cwd) as reader:
        return np.stack(list(reader))


@pytest.mark.parametrize("kind", ["mp4", "mkv"])
def test_clip_keeps_size_rate_timestamps_and_audio(lut_bundle, clips, tmp_path, kind):
    src = clips[kind]
    out = tmp_path / "styled"
    assert main(["stylize", str(lut_bundle), str(src), "--out", str(out), "--quiet"]) == 0
    dst = out / src.name
    a, b = probe(src), probe(dst)
    assert (b.width, b.height, b.fps, b.frames) == (a.width, a.height, a.fps, a.frames) == (320, 240, a.fps, a.frames)
    assert a.frames == {"mp4": 20, "mkv": 20}[kind] and b.constant_rate
    assert np.allclose(b.pts, a.pts, atol=1e-6), (a.pts[:4], b.pts[:4])
    assert b.audio_streams == a.audio_streams == 1
    packets, md5 = audio_packets(src)
    assert packets and audio_packets(dst) == (packets, md5)  # bit for bit: the same packets and payload
    assert sorted(p.name for p in out.iterdir()) == [src.name]  # no temporary file left
    styled = frames_of(dst)
    assert np.abs(styled.astype(int) - frames_of(src).astype(int)).mean() > 2  # the look was applied


@pytest.mark.parametrize("name,size,fps,codec,audio", [
    ("odd.mp4", (97, 65), 30, "libx264", False),  # odd size (4:4:4), no audio track
    ("clip.webm", (160, 120), 24, "libvpx-vp9", True),  # millisecond time base: steps of 41 and 42 ms
])
def test_odd_sizes_vp9_and_millisecond_timestamps(lut_bundle, tmp_path, name, size, fps, codec, audio):
    src = make_album_clip(tmp_path / name, size, fps=fps, seconds=0.5, audio=audio, codec=codec)
    out = tmp_path / "styled"
    assert main(["stylize", str(lut_bundle), str(src), "--out", str(out), "--quiet"]) == 0
    a, b = probe(src), probe(out / name)
    assert (a.width, a.height) == (b.width, b.height) == size
    assert a.fps == b.fps == fps and a.constant_rate and a.frames == b.frames
    assert np.allclose(a.pts, b.pts, atol=1e-6) and a.audio_streams == b.audio_streams == int(audio)
    if audio:
        assert audio_packets(out / name) == audio_packets(src)


def test_frames_agree_with_ffmpeg_lut3d(lut_bundle, clips, tmp_path):
    """Lossless both ways: our FFV1 output decoded to rgb24 vs lut3d's rgb24 frames of the source."""
    src = clips["mkv"]
    out = tmp_path / "styled"
    assert main(["stylize", str(lut_bundle), str(src), "--out", str(out), "--video-codec", "ffv1", "--quiet"]) == 0
    ours = frames_of(out / src.name)
    (tmp_path / "look.cube").write_bytes((lut_bundle / "look.cube").read_bytes())
    theirs = frames_of(src, LUT3D, cwd=tmp_path)
    assert ours.shape == theirs.shape == (20, 240, 320, 3)
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 1, diff.max()


def test_model_artifact_runs_per_frame(tiny_bundle, clips, tmp_path):
    """A model (ONNX, tiled at the clip's size) per frame equals the same model on each decoded frame."""
    pytest.importorskip("onnxruntime")
    from styleforge.runtime import open_bundle

    src = make_album_clip(tmp_path / "small.mkv", (96, 64), fps=10, seconds=0.5)
    out = tmp_path / "styled"
    assert main(["stylize", str(tiny_bundle), str(src), "--artifact", "onnx", "--out", str(out),
                 "--video-codec", "ffv1", "--quiet"]) == 0
    ours = frames_of(out / src.name)
    stylizer = open_bundle(tiny_bundle, artifact="onnx")
    expected = np.stack([stylizer.stylize(f) for f in frames_of(src)])
    assert ours.shape == expected.shape == (5, 64, 96, 3)
    assert np.array_equal(ours, expected)


def _bad_clips(root: Path, clips) -> dict[str, Path]:
    """A text file named .mp4; the .mkv and a fast-start .mp4 (index first) cut in half."""
    text = root / "notes.mp4"
    text.write_text("not a video\n")
    faststart = root / "faststart.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clips["mp4"]), "-c", "copy", "-movflags", "+faststart",
                    str(faststart)], check=True)
    out = {"text": text}
    for name, whole in (("cut-mkv", clips["mkv"]), ("cut-mp4", faststart)):
        data = whole.read_bytes()
        out[name] = root / f"{name}{whole.suffix}"
        out[name].write_bytes(data[: len(data) // 2])
    return out


@pytest.mark.parametrize("case,extra,message", [
    ("text", [], "not a video ffmpeg can read"),
    ("cut-mkv", [], "truncated or damaged"),
    ("cut-mp4", [], "truncated or damaged"),
    ("good", ["--video-codec", "no-such-encoder"], "encoding"),
])
def test_bad_clip_is_one_line_and_leaves_nothing(lut_bundle, clips, tmp_path, case, extra, message):
    bad = _bad_clips(tmp_path, clips)
    src = bad.get(case, clips["mp4"])
    out = tmp_path / "out"
    proc = subprocess.run([str(STYLEFORGE), "stylize", str(lut_bundle), str(src), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [x for x in proc.stderr.splitlines() if ": error: " in x]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith("styleforge stylize: error: ") and message in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_without_the_extra_one_line_says_how_to_install(lut_bundle, clips, tmp_path):
    code = ("import sys\nsys.modules['imageio_ffmpeg'] = None  # as if the extra were not installed\n"
            "from styleforge.cli import main\n"
            f"sys.exit(main(['stylize', {str(lut_bundle)!r}, {str(clips['mp4'])!r}, '--out', {str(tmp_path / 'o')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "styleforge stylize: error: video needs ffmpeg: pip install styleforge[video]"


def test_video_path_imports_no_torch(lut_bundle, clips, tmp_path):
    code = ("import sys\nfrom styleforge.cli import main\n"
            f"rc = main(['stylize', {str(lut_bundle)!r}, {str(clips['mkv'])!r}, '--out', {str(tmp_path / 'o')!r}, '-q'])\n"
            "assert rc == 0, rc\n"
            "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_bench_video_reports_stages_and_agreement(lut_bundle, clips, capsys):
    assert main(["bench", "--video", str(clips["mkv"]), str(lut_bundle)]) == 0
    out = capsys.readouterr().out
    for word in ("decode", "style", "encode", "ours / lut3d", "max 1 level", "ms/frame"):
        assert word in out or (word == "max 1 level" and "max 0 level" in out), out


def test_per_frame_luts_via_pillow_are_within_one_level_of_the_exact_path(clips):
    """The adaptive video path's LUT application (Pillow's Color3DLUT, two strips on two threads)."""
    from concurrent.futures import ThreadPoolExecutor

    from styleforge.runtime import lut as rlut

    frame = frames_of(clips["mp4"])[5]
    rng = np.random.default_rng(1)
    table = np.clip(rlut.identity_table(33) * [1.1, 0.95, 0.8] + rng.normal(0, 0.01, (33, 33, 33, 3)), 0, 1)
    lut = rlut.Lut3D(table.astype(np.float32))
    exact = rlut.LutApplier(lut, threads=1).apply(frame, 0.7)
    with ThreadPoolExecutor(2) as pool:
        fast = rlut.apply_pillow(lut, frame, 0.7, pool)
    assert np.abs(fast.astype(int) - exact.astype(int)).max() <= 1
    assert np.array_equal(fast, rlut.apply_pillow(lut, frame, 0.7))


def test_smoother_follows_the_scene_and_restarts_at_a_cut():
    """Jittery parameters come out steadier; a new scene (a big thumbnail change) restarts at once."""
    from styleforge.runtime.temporal import ParamSmoother, frame_changes

    rng = np.random.default_rng(0)
    smoother = ParamSmoother(fps=25, tau_s=0.5)
    thumb = np.full((3, 32, 32), 0.4, np.float32)
    raw = [np.array([1.0, -0.5], np.float32) + rng.normal(0, 0.1, 2).astype(np.float32) for _ in range(50)]
    smooth = [smoother.update(p, thumb + rng.normal(0, 0.01, thumb.shape).astype(np.float32)) for p in raw]
    assert frame_changes(smooth)["mean"] < 0.2 * frame_changes(raw)["mean"]
    assert smoother.cuts == 0 and np.allclose(smooth[-1], [1.0, -0.5], atol=0.1)
    jump = smoother.update(np.array([3.0, 2.0], np.float32), thumb + 0.5)  # a hard cut to a new scene
    assert smoother.cuts == 1 and np.allclose(jump, [3.0, 2.0])


@pytest.mark.slow  # exports an image-adaptive bundle with torch (~20 s)
def test_adaptive_look_is_smoothed_over_frames(clips, tmp_path):
    """Per-frame parameters of an image-adaptive look change less from frame to frame smoothed."""
    pytest.importorskip("torch")
    from styleforge.benchmarks.video_bench import flicker
    from styleforge.export.bundle import export_bundle
    from styleforge.runtime import open_bundle

    from .test_runtime_adaptive_lut import adaptive_model

    bundle = tmp_path / "adaptive"
    export_bundle(adaptive_model(), bundle, formats=(), size=(64, 64), style="adaptive", progress=False,
                  lut_size=17, lut=True)
    stylizer = open_bundle(bundle)
    report = flicker(stylizer, probe(clips["mp4"]), tau_s=0.5)
    assert report["frames"] == 20
    raw, smooth = report["lut_levels_raw"]["mean"], report["lut_levels_smoothed"]["mean"]
    assert raw > 0 and smooth < 0.6 * raw, report
    out = tmp_path / "styled"
    assert main(["stylize", str(bundle), str(clips["mp4"]), "--out", str(out), "--quiet"]) == 0
    assert probe(out / "clip.mp4").frames == 20


class _InterruptedAt:
    """A real LUT stylizer that raises KeyboardInterrupt (as Ctrl-C or SIGTERM do) at frame ``n``."""

    def __init__(self, stylizer, n: int):
        self.stylizer, self.n, self.seen = stylizer, n, 0

    def stylize_rgb(self, rgb, strength=1.0, on_tile=None):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt
        return self.stylizer.stylize_rgb(rgb, strength)


def test_interrupted_clip_leaves_nothing_and_no_ffmpeg(lut_bundle, clips, tmp_path):
    psutil = pytest.importorskip("psutil")
    from styleforge.runtime import open_bundle
    from styleforge.runtime.video import stylize_video

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out = tmp_path / "styled"
    stylizer = _InterruptedAt(open_bundle(lut_bundle), n=8)
    with pytest.raises(KeyboardInterrupt):
        stylize_video(stylizer, clips["mp4"], out / "clip.mp4")
    assert stylizer.seen == 8
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], left
