"""A look recipe with local operators on video: ``styleforge stylize BUNDLE clip`` keeps size, rate,
timestamps and audio as for a LUT, styles every frame exactly as the same photo alone, flickers
from nothing (no operator reads whole-frame statistics; grain is one fixed pattern), and ``bench
--video`` puts it beside the recipe's ffmpeg filtergraph on the same clip. Real ffmpeg, a lossless
(FFV1 + FLAC) clip made here from an album photo."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg", reason="video needs the optional extra: pip install styleforge[video]")

from styleforge.cli import main  # noqa: E402
from styleforge.export import calibration as cal  # noqa: E402
from styleforge.runtime import lut as rlut  # noqa: E402
from styleforge.runtime.video_io import ffmpeg_exe, probe  # noqa: E402

from .test_runtime_video import audio_packets, frames_of  # noqa: E402

WIDTH, HEIGHT, FPS = 160, 120, 10
CHANGED_FROM = 120  # odd frames differ from even ones from this column on
UNTOUCHED_BELOW = 60  # columns this far from the change see none of it (blur supports are ~20 px here)


@pytest.fixture(scope="module")
def recipe_bundle(tmp_path_factory):
    """A recipe bundle of known local operators (a generator with set parameters; grain included)."""
    pytest.importorskip("torch")
    from styleforge.export.recipe_export import export_recipe_bundle
    from styleforge.train.models.recipe import RecipeGenerator

    grid = rlut.identity_table(17)
    table = np.clip(grid ** np.array([0.85, 1.0, 1.2], dtype=np.float32) * [1.05, 1.0, 0.9], 0, 1).astype(np.float32)
    steps = [("smooth_skin", {"amount": 0.8, "radius": 0.01, "edge": 0.04}), ("colour_lut", {"table": table}),
             ("bloom", {"strength": 0.9, "threshold": 0.6, "radius": 0.04}),
             ("vignette", {"amount": -0.6, "midpoint": 0.5, "roundness": 0.0, "feather": 0.5, "center_x": 0.5,
                           "center_y": 0.5}),
             ("grain", {"amount": 0.015, "size": 0.01, "luma_dependence": 0.5})]
    out = tmp_path_factory.mktemp("recipe-video") / "glowish"
    export_recipe_bundle(RecipeGenerator.from_steps(steps, lut_size=17), out, ffmpeg_size=(WIDTH, HEIGHT),
                         heldout_images=cal.split_default_photos()[1][:2], progress=False)  # 2 photos: quick
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Frames A, B, A, B, A (B = A with its right part white), FFV1 (lossless) + a FLAC sine tone."""
    photo = cal.heldout_crops(cal.split_default_photos()[1][:1], (HEIGHT, WIDTH))[0]
    changed = photo.copy()
    changed[:, CHANGED_FROM:] = 255
    frames = np.stack([photo, changed, photo, changed, photo])
    path = tmp_path_factory.mktemp("recipe-clip") / "clip.mkv"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                           "-video_size", f"{WIDTH}x{HEIGHT}", "-framerate", str(FPS), "-i", "pipe:0",
                           "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-shortest",
                           "-c:v", "ffv1", "-pix_fmt", "bgr0", "-c:a", "flac", str(path)],
                          input=frames.tobytes(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def styled(recipe_bundle, clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("styled")
    assert main(["stylize", str(recipe_bundle), str(clip), "--out", str(out), "--video-codec", "ffv1", "--quiet"]) == 0
    return out


def test_a_recipe_clip_keeps_size_rate_timestamps_and_audio(clip, styled):
    a, b = probe(clip), probe(styled / clip.name)
    assert (b.width, b.height, b.fps, b.frames) == (a.width, a.height, a.fps, a.frames) == (WIDTH, HEIGHT, FPS, 5)
    assert np.allclose(b.pts, a.pts, atol=1e-6) and b.constant_rate
    assert a.audio_streams == b.audio_streams == 1 and audio_packets(styled / clip.name) == audio_packets(clip)
    assert sorted(p.name for p in styled.iterdir()) == [clip.name]  # written atomically: nothing else left


def test_every_frame_is_styled_as_the_same_photo_alone(recipe_bundle, clip, styled):
    from styleforge.runtime import open_bundle

    stylizer = open_bundle(recipe_bundle)
    assert stylizer.artifact.key == "recipe"
    source, ours = frames_of(clip), frames_of(styled / clip.name)
    expected = np.stack([stylizer.stylize(frame) for frame in source])
    assert np.array_equal(ours, expected)
    assert np.abs(ours.astype(int) - source).mean() > 3  # the look was applied


def test_nothing_flickers(styled, clip):
    """The same frame gives the same pixels wherever it is in the clip (grain included: one fixed
    pattern per seed), and a change in one part of a frame does not reach parts beyond the operators'
    radii: no operator normalises by the frame's own statistics."""
    ours = frames_of(styled / clip.name).astype(int)
    assert np.array_equal(ours[0], ours[2]) and np.array_equal(ours[0], ours[4]) and np.array_equal(ours[1], ours[3])
    assert np.array_equal(ours[0][:, :UNTOUCHED_BELOW], ours[1][:, :UNTOUCHED_BELOW])
    assert np.abs(ours[0][:, CHANGED_FROM:] - ours[1][:, CHANGED_FROM:]).mean() > 20


def test_an_rgb_coded_source_encodes_to_h264(recipe_bundle, clip, styled, tmp_path):
    """FFV1 in RGB (matrix 'gbr') to yuv420p: untagged bt601 as the decoder reads it (was refused)."""
    out = tmp_path / "h264"
    assert main(["stylize", str(recipe_bundle), str(clip), "--out", str(out), "--quiet"]) == 0
    lossy, exact = frames_of(out / clip.name).astype(int), frames_of(styled / clip.name).astype(int)
    assert lossy.shape == exact.shape and np.abs(lossy - exact).mean() < 4  # 4:2:0 chroma, CRF 18


def test_a_failing_encoder_leaves_nothing(recipe_bundle, clip, tmp_path, capsys):
    out = tmp_path / "styled"
    code = main(["stylize", str(recipe_bundle), str(clip), "--out", str(out), "--video-codec", "no-such-encoder", "--quiet"])
    assert code != 0 and "encoding" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())


def test_bench_video_puts_the_recipe_beside_its_ffmpeg_chain(recipe_bundle, clip, capsys):
    assert main(["bench", "--video", str(clip), str(recipe_bundle)]) == 0
    out = capsys.readouterr().out
    assert "ours / chain = " in out and "ours / lut3d" not in out  # the whole recipe, not its .cube alone
    line = next(line for line in out.splitlines() if "chain vs ours" in line)
    assert float(line.split("chain vs ours")[1].split("dB")[0]) >= 30  # its grain is another pattern of 3.8 levels
