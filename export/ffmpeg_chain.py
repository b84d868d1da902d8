"""A look recipe as an ffmpeg filtergraph (``look.ffmpeg.txt``), checked against the runtime.

The runtime runs a recipe in numpy (:mod:`styleforge.runtime.recipe`). Video people run looks in
ffmpeg, so a recipe bundle also carries the same steps as one ffmpeg filtergraph with one input
and one output. Run it from the bundle folder, where ``lut3d`` finds ``look.cube`` by its
relative name::

    cd dist/mylook
    ffmpeg -i /abs/clip.mp4 -/vf look.ffmpeg.txt -c:a copy /abs/styled.mp4       # ffmpeg >= 7.1
    ffmpeg -i /abs/clip.mp4 -vf "$(cat look.ffmpeg.txt)" -c:a copy /abs/styled.mp4  # older ffmpeg

**The chain is written for one frame size.** ``gblur`` takes its sigma in pixels, not as an
expression, and a recipe's radii are fractions of the short side. So the file is written for a
stated size, by default 1920x1080 (:data:`FRAME_SIZE`). It serves every frame with that short side
(1080x1920, 1440x1080 too): the vignette is computed from the frame's own ``W`` and ``H``.
At another short side the blurs are too wide or too narrow for the frame. ``python -m
styleforge.export.ffmpeg_chain BUNDLE --size WxH`` prints the chain for another size.

The graph works in float planar RGB (``gbrpf32le``), the sRGB-encoded values in [0, 1] as in the
runtime. Nothing is clipped or rounded to 8 bits between steps. Each operator is built as follows:

- ``colour_lut``: ``lut3d`` (trilinear) on the bundle's ``.cube``.
- Luma operators (``clarity``, ``detail``, ``sharpen``, ``smooth_skin``): Rec.709 luma in one
  float plane (``colorchannelmixer`` + ``extractplanes``), ``gblur`` for the Gaussians, and
  ``mix`` (linear combinations) or ``blend`` expressions (the mid-tone weight, the guided filter).
  The luma change is added to R, G and B (``mergeplanes`` + ``blend=addition``). ``unsharp``
  is not used: its kernel is a box, not a Gaussian. ``smooth_skin`` is the runtime's fast guided
  filter: its statistics on the blur's pyramid level (``scale=flags=area`` down, ``gblur`` and
  ``blend`` there, ``scale=flags=bilinear`` back up); from level 1 on its chain needs frames of
  the stated size (or another whose padded size the level's factor divides).
- ``bloom``: a soft threshold on luma (a ``blend`` expression), times the clipped colour, then
  ``gblur``, its tint a ``colorchannelmixer`` gain per channel, then ``blend=all_mode=screen``
  with the strength as opacity (an expression for a negative strength).
- ``fade``: ``colorlevels``, a straight line per channel (its output or input black point).
- ``vignette``: Lightroom's mask (not ffmpeg's ``vignette``, whose falloff is another curve) as
  a ``geq`` expression in ``X, Y, W, H``. It is evaluated on the first frame only (``trim``)
  and repeated by ``blend`` for every frame, so it costs once per run.
- ``grain``: **no faithful equivalent.** It uses ffmpeg's ``noise`` (uniform, not temporal) on
  the same grid of cells, bilinear-upsampled and blurred like the runtime's field, and scaled to the
  same standard deviation. It is another random pattern of the same strength and size, so it
  cannot match pixel for pixel. Like the runtime's, it is the same on every frame.

``gblur`` is a recursive (IIR) Gaussian of :data:`GBLUR_STEPS` passes at full resolution, run on
the frame padded by 3 sigma of reflected pixels (the runtime's blurs reflect at the edges). The
runtime's blur is a sampled Gaussian on a pyramid. The two differ by a few percent of a blurred
value. :func:`verify_chain` measures all of it: it runs the chain with ffmpeg on photos at the
stated size, the whole recipe and then each step alone, and takes the PSNR against the runtime's
8-bit output (at 1080p with ffmpeg 9.0.2: 48-65 dB per operator, grain ~28 dB; docs/recipes.md).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.export.lut_common import lut_tensor_spec
from styleforge.runtime.contract import Artifact
from styleforge.runtime.look_blur import LUMA, gaussian_blur, level_sigma, pyramid_level
from styleforge.runtime.look_ops import BLOOM_KNEE, DETAIL_BANDS, GRAIN_CELLS, grain_noise
from styleforge.runtime.metrics import psnr
from styleforge.runtime.recipe import Recipe, Step
from styleforge.subproc import run_guarded

CHAIN_FILE = "look.ffmpeg.txt"
FRAME_SIZE = (1920, 1080)  # (width, height) the chain's blur widths are written for
CHAIN_BOUND_DB = 35.0  # ffmpeg's frames vs the runtime's, 8-bit, at the stated size
CHAIN_PHOTOS = 3  # held-out photos checked at the stated size (1080p: ~5 s per step on 2 busy cores)
GBLUR_STEPS = 4  # passes of ffmpeg's recursive Gaussian: 1 is a poor Gaussian; 4 is near the sampled one
NOISE_STRENGTH = 40  # ffmpeg noise=alls=40:allf=u on 8-bit grey 128: uniform in 128 +- 20 levels
NOISE_STD_LEVELS = NOISE_STRENGTH / 12**0.5  # its standard deviation (measured 11.56 with ffmpeg 9.0.2)
NOISE_MEAN_LEVELS = 127.5  # and its mean (108..147)
RUN_TIMEOUT_S = 600.0
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")  # a .cube name that needs no filtergraph escaping
LUMA_PLANE = (f"colorchannelmixer=rr={LUMA[0]}:rg={LUMA[1]}:rb={LUMA[2]},format=gbrpf32le,extractplanes=r,"
              "format=grayf32")  # formats named: extractplanes cannot always choose its own


class ChainError(StyleforgeError, ValueError):
    """A recipe the chain cannot express, or ffmpeg failing on it; the message says which."""


def _n(value: float) -> str:
    """A number for a filtergraph: 8 significant digits (ffmpeg reads ``2.5e-05`` in options and expressions)."""
    return f"{float(value):.8g}"


def _gblur(sigma_px: float) -> str:
    return f"gblur=sigma={_n(max(float(sigma_px), 0.0))}:steps={GBLUR_STEPS}"


def _margin(sigma_px: float, short: int) -> int:
    """Pixels of reflected padding a blur of ``sigma_px`` needs (3 sigma), at most ``short - 1``."""
    return max(0, min(math.ceil(3.0 * sigma_px), short - 1))


def _pad(margin: int) -> str:
    """Pad a ``gbrpf32le`` frame by ``margin`` on each side, filled by reflection (the runtime's
    blurs reflect at the edges; ``gblur`` alone treats them its own way: at 1080p bloom's halo was
    54 dB inside the frame and 49 dB whole). ``pad`` is used on ``gbrpf32le`` only: on ``grayf32``
    ffmpeg 9.0.2 shifts the picture."""
    if margin < 1:
        return "null"
    m = margin
    return (f"pad=iw+{2 * m}:ih+{2 * m}:{m}:{m},fillborders=left={m}:right={m}:top={m}:bottom={m}:mode=reflect,"
            "format=gbrpf32le")


def _crop(margin: int) -> str:
    return "null" if margin < 1 else f"crop=iw-{2 * margin}:ih-{2 * margin}:{margin}:{margin}"


def _to_rgb(src: str, dst: str, tag: str) -> str:
    """A grey float plane ``[src]`` copied into the three planes of ``gbrpf32le`` as ``[dst]``."""
    return (f"[{src}]split=3[{tag}p0][{tag}p1][{tag}p2];"
            f"[{tag}p0][{tag}p1][{tag}p2]mergeplanes=map1s=1:map2s=2:format=gbrpf32le[{dst}]")


def _add_luma(tag: str, margin: int) -> str:
    """``[tag rgb]`` plus the grey plane ``[tag d]`` (padded by ``margin``) on every channel (the
    runtime's ``_add_luma``)."""
    return (f"[{tag}d]{_crop(margin)}[{tag}dc];" + _to_rgb(f"{tag}dc", f"{tag}d3", tag)
            + f";[{tag}rgb][{tag}d3]blend=all_mode=addition")


# ------------------------------------------------------------------------------ operators
# Each builder returns the graph text from the step's input "[IN]" to its unlabelled output;
# ``tag`` prefixes its inner labels, ``short`` is the frame's short side in pixels.


def _colour_lut(step: Step, tag: str, short: int) -> str:
    if not step.lut or not _SAFE_NAME.match(step.lut):
        raise ChainError(f"colour_lut names {step.lut!r}, which an ffmpeg filtergraph cannot quote safely")
    return f"[IN]lut3d=file={step.lut}:interp=trilinear"


def _luma_head(tag: str, outputs: int, margin: int) -> str:
    """Split the input into ``[tag rgb]`` and ``outputs`` copies of its luma plane ``[tag l0..]``,
    padded by ``margin`` reflected pixels (:func:`_add_luma` crops them off again)."""
    names = "".join(f"[{tag}l{i}]" for i in range(outputs))
    return f"[IN]split[{tag}rgb][{tag}y];[{tag}y]{_pad(margin)},{LUMA_PLANE},split={outputs}{names};"


def _clarity(step: Step, tag: str, short: int) -> str:
    p = step.params
    margin = _margin(p["radius"] * short, short)
    return (_luma_head(tag, 2, margin) + f"[{tag}l1]{_gblur(p['radius'] * short)}[{tag}base];"
            f"[{tag}l0][{tag}base]blend=all_expr='st(0,clip(B,0,1));{_n(4 * p['amount'])}*ld(0)*(1-ld(0))*(A-B)'"
            f"[{tag}d];" + _add_luma(tag, margin))


def _detail(step: Step, tag: str, short: int) -> str:
    f, m, c = (step.params[k] for k in ("fine", "medium", "coarse"))
    blurs = "".join(f"[{tag}l{k + 1}]{_gblur(sigma * short)}[{tag}b{k}];" for k, sigma in enumerate(DETAIL_BANDS))
    weights = " ".join(_n(w) for w in (f, m - f, c - m, -c))  # f L + (m - f) B0 + (c - m) B1 - c B2
    margin = _margin(max(DETAIL_BANDS) * short, short)
    return (_luma_head(tag, 4, margin) + blurs +
            f"[{tag}l0][{tag}b0][{tag}b1][{tag}b2]mix=inputs=4:weights='{weights}':scale=1[{tag}d];"
            + _add_luma(tag, margin))


def _sharpen(step: Step, tag: str, short: int) -> str:
    a, sigma = step.params["amount"], step.params["radius"] * short
    margin = _margin(sigma, short)
    return (_luma_head(tag, 2, margin) + f"[{tag}l1]{_gblur(sigma)}[{tag}bl];"
            f"[{tag}l0][{tag}bl]mix=inputs=2:weights='{_n(a)} {_n(-a)}':scale=1[{tag}d];" + _add_luma(tag, margin))


def _smooth_skin(step: Step, tag: str, short: int, width: int, height: int) -> str:
    """The runtime's fast guided filter on luma (:func:`~styleforge.runtime.look_ops.smooth_skin`).

    At pyramid level ``L >= 1``: ``[L, L^2]`` area-scaled down by ``f = 2**L``
    (``scale=flags=area``: the runtime's 2x2 means), ``gblur`` there with the level's sigma,
    ``r = eps / (var + eps)`` and ``m r`` (``blend`` expressions), ``gblur`` again,
    ``scale=flags=bilinear`` back up by ``f`` (the runtime's half-pixel upsampling), then
    ``amount (B - R L)``. The frame is padded by reflection, ``m`` (a multiple of ``f``) on the
    left and top and ``m + e`` on the right and bottom, ``e`` making the padded ``width`` x
    ``height`` a multiple of ``f``: the level's grid is then the frame's, and the fields come back
    at the padded size (a frame of another size whose padded size ``f`` does not divide fails in
    ffmpeg). swscale works in 16 bits inside: its area means and bilinear upsampling are the
    runtime's within 1.5e-5 (measured at 2x, 4x and 8x with ffmpeg 9.0.2), 0.004 of an 8-bit
    level. At level 0 every mean is a full-resolution ``gblur``, as the runtime computes it there."""
    a, eps = step.params["amount"], step.params["edge"] ** 2
    sigma_px = step.params["radius"] * short
    level = pyramid_level(sigma_px, height, width)
    if level == 0:
        return _guided_full_resolution(tag, a, eps, sigma_px, short)
    f = 2**level
    sigma = float(level_sigma(sigma_px, level))
    m = min(f * math.ceil(3.0 * 2**0.5 * sigma), (short - 1) // f * f)  # two blurs at the level
    ew, eh = -(width + 2 * m) % f, -(height + 2 * m) % f
    blur, down = _gblur(sigma), f"scale=w=iw/{f}:h=ih/{f}:flags=area,format=grayf32"
    up = f"scale=w=iw*{f}:h=ih*{f}:flags=bilinear,format=grayf32"
    pad = (f"pad=iw+{2 * m + ew}:ih+{2 * m + eh}:{m}:{m},"
           f"fillborders=left={m}:right={m + ew}:top={m}:bottom={m + eh}:mode=reflect,format=gbrpf32le")
    crop = f"crop=iw-{2 * m + ew}:ih-{2 * m + eh}:{m}:{m}"
    return (f"[IN]split[{tag}rgb][{tag}y];[{tag}y]{pad},{LUMA_PLANE},split=4[{tag}l0][{tag}l1][{tag}l2][{tag}l3];"
            f"[{tag}l1][{tag}l2]blend=all_mode=multiply,{down},{blur}[{tag}m2];"  # mean(L^2) on the level
            f"[{tag}l3]{down},{blur},split[{tag}m][{tag}mm];"  # mean(L) on the level
            f"[{tag}m][{tag}m2]blend=all_expr='{_n(eps)}/(max(B-A*A,0)+{_n(eps)})',split[{tag}r0][{tag}r1];"
            f"[{tag}mm][{tag}r1]blend=all_mode=multiply,{blur},{up}[{tag}b];"  # B = mean(m r), full size
            f"[{tag}r0]{blur},{up}[{tag}r];[{tag}r][{tag}l0]blend=all_mode=multiply[{tag}rl];"  # R L
            f"[{tag}b][{tag}rl]mix=inputs=2:weights='{_n(a)} {_n(-a)}':scale=1,{crop}[{tag}dc];"
            + _to_rgb(f"{tag}dc", f"{tag}d3", tag) + f";[{tag}rgb][{tag}d3]blend=all_mode=addition")


def _guided_full_resolution(tag: str, a: float, eps: float, sigma_px: float, short: int) -> str:
    """smooth_skin at pyramid level 0: He's self-guided filter, every mean a full-resolution ``gblur``."""
    blur = _gblur(sigma_px)
    margin = _margin(2**0.5 * sigma_px, short)  # two blurs in a row
    return (_luma_head(tag, 5, margin) +
            f"[{tag}l0][{tag}l1]blend=all_mode=multiply,{blur}[{tag}m2];"  # mean(L^2)
            f"[{tag}l2]{blur},split[{tag}m][{tag}mm];"  # mean(L)
            f"[{tag}m][{tag}m2]blend=all_expr='st(0,max(B-A*A,0));ld(0)/(ld(0)+{_n(eps)})',split[{tag}a0][{tag}a1];"
            f"[{tag}mm][{tag}a0]blend=all_expr='A-B*A',{blur}[{tag}mb];"  # mean(b), b = m (1 - a)
            f"[{tag}a1]{blur}[{tag}ma];[{tag}ma][{tag}l3]blend=all_mode=multiply[{tag}q];"  # mean(a) L
            f"[{tag}q][{tag}mb][{tag}l4]mix=inputs=3:weights='{_n(a)} {_n(a)} {_n(-a)}':scale=1[{tag}d];"
            + _add_luma(tag, margin))


def _bloom(step: Step, tag: str, short: int) -> str:
    t, s, sigma = step.params["threshold"], step.params["strength"], step.params["radius"] * short
    margin = _margin(sigma, short)
    tint = [step.params[ch] for ch in "rgb"]  # parse_step fills an optional tint left out
    tinted = "" if tint == [1.0, 1.0, 1.0] else f",colorchannelmixer=rr={_n(tint[0])}:gg={_n(tint[1])}:bb={_n(tint[2])}"
    head = (f"[IN]split=3[{tag}rgb][{tag}c][{tag}y];[{tag}y]{LUMA_PLANE},"
            f"split[{tag}y0][{tag}y1];[{tag}y0][{tag}y1]blend=all_expr='1/(1+exp(({_n(t)}-clip(A,0,1))*{_n(1 / BLOOM_KNEE)}))'"
            f"[{tag}gate];" + _to_rgb(f"{tag}gate", f"{tag}g3", tag) + ";"
            f"[{tag}c]limiter=min=0:max=65535[{tag}cc];"  # clip(x) to [0, 1] (the float limit is max/65535)
            f"[{tag}cc][{tag}g3]blend=all_mode=multiply,{_pad(margin)},{_gblur(sigma)},{_crop(margin)}{tinted}[{tag}glow];")
    if s >= 0:  # screen at opacity s: x + s glow (1 - x), exactly the runtime's formula
        return head + f"[{tag}rgb][{tag}glow]blend=all_mode=screen:all_opacity={_n(s)}"
    return head + f"[{tag}rgb][{tag}glow]blend=all_expr='A+{_n(s)}*B*(1-A)'"


def _fade(step: Step, tag: str, short: int) -> str:
    """``x + k (1 - x)`` per channel, ``k = amount * colour``: the output black point at ``k`` for
    ``k >= 0``; for ``k < 0`` the input black point ``-k / (1 - k)`` gives the same line."""
    parts = []
    for ch in "rgb":
        k = step.params["amount"] * step.params[ch]
        parts.append(f"{ch}omin={_n(k)}" if k >= 0 else f"{ch}imin={_n(-k / (1.0 - k))}")
    return "[IN]colorlevels=" + ":".join(parts)


def _vignette(step: Step, tag: str, short: int) -> str:
    """The runtime's :func:`~styleforge.runtime.look_ops.vignette_mask` as a ``geq`` expression of the
    frame's own ``W``/``H``, evaluated once (first frame) and reused for every frame."""
    p = step.params
    to_circle, power = max(p["roundness"], 0.0), 2.0 + 6.0 * max(-p["roundness"], 0.0)
    circle = "0.5*hypot(W,H)"
    axis_x = f"({_n(1 - to_circle)}*W/sqrt(2)+{_n(to_circle)}*{circle})"
    axis_y = f"({_n(1 - to_circle)}*H/sqrt(2)+{_n(to_circle)}*{circle})"
    ux = f"max(abs(X+0.5-{_n(p['center_x'])}*W)/{axis_x},1e-6)"
    uy = f"max(abs(Y+0.5-{_n(p['center_y'])}*H)/{axis_y},1e-6)"
    dist = f"pow(pow({ux},{_n(power)})+pow({uy},{_n(power)}),{_n(1 / power)})*{_n(2 ** (0.5 - 1 / power))}"
    ramp = f"st(0,clip(({dist}-{_n(p['midpoint'])})/{_n(0.02 + 0.98 * p['feather'])}+0.5,0,1))"
    weight = f"{ramp};ld(0)*ld(0)*(3-2*ld(0))"
    amount = p["amount"]
    # darken: x (1 + amount w), a multiply; lighten: x + amount w (1 - x), a screen
    mask, mode = (f"1+{_n(amount)}*({weight})", "multiply") if amount < 0 else (f"{_n(amount)}*({weight})", "screen")
    return (f"[IN]split[{tag}rgb][{tag}y];[{tag}y]trim=end_frame=1,extractplanes=r,geq=lum='{mask}'[{tag}w];"
            + _to_rgb(f"{tag}w", f"{tag}w3", tag) + f";[{tag}rgb][{tag}w3]blend=all_mode={mode}")


def grain_field_std(width: int, height: int, size: float) -> float:
    """Standard deviation of the runtime's grain field *before* its normalisation, per unit of
    white noise on its grid (the scale that turns ffmpeg's noise into the runtime's strength)."""
    return float(gaussian_blur(grain_noise(height, width, size, seed=0), size / 2.0).std())


def _grain(step: Step, tag: str, short: int, width: int, height: int) -> str:
    p = step.params
    cells = GRAIN_CELLS / float(p["size"])
    grid_w = int(min(width, max(1, round(cells * width / short))))
    grid_h = int(min(height, max(1, round(cells * height / short))))
    unit = NOISE_STD_LEVELS / 255.0 * grain_field_std(width, height, p["size"])
    k = p["luma_dependence"]
    gain = p["amount"] / unit
    return (_luma_head(tag, 2, 0) +
            f"[{tag}l1]trim=end_frame=1,scale={grid_w}:{grid_h}:flags=neighbor,format=gray,geq=lum=128,"
            f"noise=alls={NOISE_STRENGTH}:allf=u,format=grayf32,scale={width}:{height}:flags=bilinear,"
            f"{_gblur(p['size'] / 2.0 * short)}[{tag}n];"
            f"[{tag}l0][{tag}n]blend=all_expr='st(0,clip(A,0,1));{_n(gain)}*({_n(1 - k)}+{_n(4 * k)}*ld(0)*(1-ld(0)))"
            f"*(B-{_n(NOISE_MEAN_LEVELS / 255)})'[{tag}d];" + _add_luma(tag, 0))


BUILDERS: dict[str, Callable[[Step, str, int], str]] = {
    "colour_lut": _colour_lut, "clarity": _clarity, "detail": _detail,
    "sharpen": _sharpen, "bloom": _bloom, "fade": _fade, "vignette": _vignette,
}
SIZED: dict[str, Callable[[Step, str, int, int, int], str]] = {"smooth_skin": _smooth_skin, "grain": _grain}
FAITHFUL = {  # what each operator becomes, for the manifest and the docs
    "colour_lut": "lut3d, trilinear",
    "clarity": "gblur + blend expression (mid-tone weight)",
    "detail": "three gblur + mix",
    "sharpen": "gblur + mix (unsharp mask on luma; ffmpeg's unsharp is a box kernel)",
    "smooth_skin": "fast guided filter: area scale to the blur's level, gblur + blend expressions there, "
                   "bilinear scale back up",
    "bloom": "blend-expression threshold, gblur, blend=screen",
    "fade": "colorlevels",
    "vignette": "geq mask once (Lightroom's curve, not ffmpeg's vignette), blend",
    "grain": "noise: a different random pattern of the same strength and size (not pixel-faithful)",
}


def filter_chain(recipe: Recipe, width: int = FRAME_SIZE[0], height: int = FRAME_SIZE[1]) -> str:
    """The recipe as one ffmpeg filtergraph for frames ``width`` x ``height`` (see the module doc):
    one step per line, one unlabelled input and output, float planar RGB inside."""
    if width < 1 or height < 1:
        raise ChainError(f"frame size {width}x{height} is not a size")
    short = min(width, height)
    lines = ["format=gbrpf32le[x0];"]
    for i, step in enumerate(recipe.steps):
        if step.op in SIZED:  # builders that need the frame's width and height
            body = SIZED[step.op](step, f"s{i}", short, width, height)
        elif step.op in BUILDERS:
            body = BUILDERS[step.op](step, f"s{i}", short)
        else:
            raise ChainError(f"recipe step {i + 1}: ffmpeg has no chain for operator {step.op!r}")
        last = i == len(recipe.steps) - 1
        lines.append(body.replace("[IN]", f"[x{i}]") + ("" if last else f"[x{i + 1}];"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ running it


def _run(cmd: list[str], timeout_s: float, cwd: Optional[Path] = None):
    try:
        return run_guarded(cmd, timeout_s=timeout_s, cwd=None if cwd is None else str(cwd))
    except OSError as err:  # no such binary, not executable
        raise ChainError(f"cannot run ffmpeg ({cmd[0]}): {err.strerror or err}") from None


def ffmpeg_version(exe: str) -> str:
    result = _run([exe, "-hide_banner", "-version"], 30)
    first = (result.stdout.splitlines() or [""])[0]
    return first.replace("ffmpeg version ", "").split(" Copyright")[0]


def run_chain(exe: str, chain_file: Path, frames: np.ndarray, cwd: Path, timeout_s: float = RUN_TIMEOUT_S) -> np.ndarray:
    """``frames`` uint8 ``[N, H, W, 3]`` RGB through the filtergraph file ``chain_file`` (run in ``cwd``,
    where its ``.cube`` files are) -> uint8 ``[N, H, W, 3]``; raw rgb24 in and out, lossless.
    The ffmpeg child cannot outlive this process (:func:`styleforge.subproc.run_guarded`)."""
    n, h, w, _ = frames.shape
    with tempfile.TemporaryDirectory(prefix="styleforge-ffmpeg-") as tmp:
        src, dst = Path(tmp) / "in.rgb", Path(tmp) / "out.rgb"
        src.write_bytes(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())
        cmd = [exe, "-hide_banner", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-video_size", f"{w}x{h}", "-framerate", "25", "-i", str(src), "-/vf", str(chain_file.absolute()),
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", str(dst)]
        result = _run(cmd, timeout_s, cwd)
        if result.returncode != 0:
            last = " / ".join(result.last_lines(2)) or result.reason()
            raise ChainError(f"ffmpeg failed on {chain_file.name} ({result.reason()}): {last}")
        data = dst.read_bytes()
    if len(data) != frames.nbytes:
        raise ChainError(f"ffmpeg gave {len(data)} bytes for {n} frames of {w}x{h} ({frames.nbytes} expected)")
    return np.frombuffer(data, dtype=np.uint8).reshape(frames.shape)


def runtime_frames(recipe: Recipe, frames: np.ndarray) -> np.ndarray:
    """What ``styleforge stylize`` gives: the runtime's recipe on each uint8 frame, rounded to uint8."""
    out = [np.clip(np.rint(recipe.apply(f.astype(np.float32) / np.float32(255.0)) * 255.0), 0, 255) for f in frames]
    return np.stack(out).astype(np.uint8)


def _compare(exe: str, recipe: Recipe, frames: np.ndarray, folder: Path, chain_file: Path) -> dict[str, float]:
    theirs = run_chain(exe, chain_file, frames, folder)  # first: an ffmpeg that cannot run fails before the runtime's work
    ours = runtime_frames(recipe, frames)
    per = [psnr(a, b) for a, b in zip(theirs, ours)]
    return {"psnr": round(float(psnr(theirs, ours)), 2), "psnr_min": round(float(min(per)), 2),
            "max_abs": int(np.abs(theirs.astype(np.int16) - ours.astype(np.int16)).max())}


def verify_chain(recipe: Recipe, folder: Path, frames: np.ndarray, exe: str, bound_db: float = CHAIN_BOUND_DB,
                 show_progress: bool = False) -> dict[str, Any]:
    """The chain file ``folder/look.ffmpeg.txt`` (and the ``.cube`` files it names, in ``folder``) run by
    ffmpeg on ``frames`` (uint8 ``[N, H, W, 3]``, the stated size) against the runtime's ``recipe``:
    the whole recipe, then each step alone (its own chain, in a scratch folder). PSNR over all
    frames (``psnr``) and of the worst frame (``psnr_min``), 8-bit levels; ``verified`` when the
    whole chain's worst frame clears ``bound_db``; ``differs`` lists the steps below it alone."""
    from styleforge.progress import progress

    height, width = frames.shape[1:3]
    whole = _compare(exe, recipe, frames, folder, folder / CHAIN_FILE)
    per_op = {}
    with tempfile.TemporaryDirectory(prefix="styleforge-chain-") as scratch:
        for i, step in enumerate(progress(recipe.steps, desc="ffmpeg chain per step", disable=not show_progress)):
            alone = Recipe((step,), recipe.tables)
            chain_file = Path(scratch) / f"step{i + 1}.txt"
            chain_file.write_text(filter_chain(alone, width, height), encoding="utf-8")
            per_op[f"{i + 1}. {step.op}"] = {**_compare(exe, alone, frames, folder, chain_file), "as": FAITHFUL[step.op]}
    differs = [key for key, r in per_op.items() if r["psnr_min"] < bound_db]
    return {**whole, "images": int(frames.shape[0]), "frame_size": [width, height], "compared_with": "runtime",
            "bound_psnr": bound_db, "verified": bool(whole["psnr_min"] >= bound_db), "per_op": per_op,
            "differs": differs, "ffmpeg": ffmpeg_version(exe)}


def find_ffmpeg() -> Optional[str]:
    """imageio-ffmpeg's binary (``pip install styleforge[video]``), or None without it."""
    from styleforge.runtime.video_io import VideoError, ffmpeg_exe

    try:
        return ffmpeg_exe()
    except VideoError:
        return None


def chain_facts(recipe: Recipe, frame_size: tuple[int, int] = FRAME_SIZE) -> dict[str, Any]:
    """The manifest's ``extra`` of the chain artifact: what it is for and how to run it."""
    width, height = frame_size
    return {"frame_size": [width, height], "short_side": min(width, height),
            "run": f"cd BUNDLE && ffmpeg -i IN -/vf {CHAIN_FILE} -c:a copy OUT (ffmpeg >= 7.1; "
                   f"older: -vf \"$(cat {CHAIN_FILE})\")",
            "sizes": f"blur widths are for a short side of {min(width, height)} px; the vignette follows the frame",
            "steps": {f"{i + 1}. {step.op}": FAITHFUL[step.op] for i, step in enumerate(recipe.steps)}}


def write_chain(folder: Path, recipe: Recipe, photos: Sequence[Path], frame_size: tuple[int, int] = FRAME_SIZE,
                bound_db: float = CHAIN_BOUND_DB, show_progress: bool = False) -> dict[str, Any]:
    """Write ``folder/look.ffmpeg.txt`` for frames ``frame_size`` (width, height) and check it on
    ``photos`` (centre crops at that size) with imageio-ffmpeg's ffmpeg; returns the fidelity record.

    ``recipe`` has its tables loaded and ``folder`` holds its ``.cube`` files. A chain below the bound,
    no ffmpeg, or an ffmpeg failure does not stop anything: the record says ``verified`` false (or
    why it was not checked) and a warning line is printed. The recipe and its ``.cube`` are what
    the bundle is for, and they are gated on their own."""
    from styleforge.export.calibration import heldout_crops

    width, height = frame_size
    (folder / CHAIN_FILE).write_text(filter_chain(recipe, width, height), encoding="utf-8")
    exe = find_ffmpeg()
    if exe is None:
        _warn(f"{CHAIN_FILE} written for {width}x{height} but not verified: no ffmpeg here (pip install styleforge[video])")
        return {"verified": "not verified: no ffmpeg (pip install styleforge[video])", "frame_size": [width, height],
                "bound_psnr": bound_db}
    frames = heldout_crops(list(photos), (height, width))
    try:
        fidelity = verify_chain(recipe, folder, frames, exe, bound_db, show_progress)
    except ChainError as err:
        _warn(f"{CHAIN_FILE} is not verified: {err}")
        return {"verified": False, "error": str(err), "frame_size": [width, height], "bound_psnr": bound_db}
    if not fidelity["verified"]:
        alone = ", ".join(f"{key} {fidelity['per_op'][key]['psnr_min']:.1f} dB" for key in fidelity["differs"])
        _warn(f"{CHAIN_FILE} is {fidelity['psnr_min']:.2f} dB from the runtime at {width}x{height} (bound {bound_db:g})"
              + (f"; alone: {alone}" if alone else "") + "; recipe.json and the .cube are unaffected")
    return fidelity


def chain_artifact(folder: Path, recipe: Recipe, photos: Sequence[Path], frame_size: tuple[int, int] = FRAME_SIZE,
                   bound_db: float = CHAIN_BOUND_DB, show_progress: bool = False) -> Optional[Artifact]:
    """``folder/look.ffmpeg.txt`` written and checked by :func:`write_chain` (same arguments), and its
    manifest entry (key ``ffmpeg``; size and sha256 are filled in when the manifest is built).

    Every recipe bundle gets its chain this way, a trained recipe's and an edited one's. None, with
    one warning line and no file, when the recipe cannot be written as a filtergraph (a ``.cube``
    named with characters a filtergraph cannot quote): the chain is an extra, the bundle ships."""
    try:
        fidelity = write_chain(folder, recipe, photos, frame_size, bound_db, show_progress)
    except ChainError as err:
        _warn(f"no {CHAIN_FILE}: {err}; recipe.json and its .cube files are unaffected")
        return None
    return Artifact(key="ffmpeg", file=CHAIN_FILE, format="ffmpeg", precision="fp32", input=lut_tensor_spec("rgb"),
                    output=lut_tensor_spec("styled"), fidelity=fidelity, extra=chain_facts(recipe, frame_size))


def chain_summary(artifact: Optional[Artifact]) -> Optional[str]:
    """The export's line on a checked chain (PSNR against the runtime, size, bound); None when it was
    not checked or not written (a warning line said why)."""
    if artifact is None or not isinstance(artifact.fidelity.get("psnr_min"), float):
        return None
    fidelity = artifact.fidelity
    width, height = fidelity["frame_size"]
    return (f"{CHAIN_FILE}: ffmpeg vs the runtime {fidelity['psnr_min']:.2f} dB at {width}x{height} "
            f"(bound {fidelity['bound_psnr']:g})")


def _warn(message: str) -> None:
    print(f"[export] warning: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------ command line


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m styleforge.export.ffmpeg_chain BUNDLE --size WxH``: the bundle's recipe as a chain
    for another frame size, on stdout (the bundle's own file is written for one size)."""
    from styleforge.runtime.lut_stylizer import read_recipe
    from styleforge.runtime.manifest import load_manifest

    parser = argparse.ArgumentParser(prog="python -m styleforge.export.ffmpeg_chain", description=main.__doc__)
    parser.add_argument("bundle", help="a recipe bundle folder")
    parser.add_argument("--size", default=f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}", help="frame size WxH (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        manifest = load_manifest(args.bundle)
        if "recipe" not in manifest.artifacts:
            raise ChainError(f"{args.bundle} has no recipe artifact")
        recipe = read_recipe(Path(args.bundle), manifest)[0]
        sys.stdout.write(filter_chain(recipe, width, height))
    except (ValueError, StyleforgeError) as err:
        print(f"ffmpeg_chain: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
