"""A look recipe as a static mobile graph: ONNX opset 17, TFLite fp32 / fp16 / int8 and Core ML
fp32 / fp16 at one size.

At a fixed input size every choice the recipe's blur makes is fixed too: the pyramid level,
the kernel radius and the taps of each Gaussian (:mod:`styleforge.runtime.look_blur`), the
vignette's weight map and grain's noise field. :class:`RecipeGraph` makes those choices once,
in Python, when it is built, and its ``forward`` is straight-line tensor code of mobile-friendly
ops only:

- the pyramid: ``AveragePool`` 2x2 (an odd edge repeated with ``Slice`` + ``Concat`` first),
  the Gaussian as two depthwise convolutions with constant taps after a reflect ``Pad``, and one
  bilinear ``Resize`` back (half-pixel centres). The graph converted to TFLite
  (``RecipeGraph(tflite=True)``, its own ONNX export, :func:`ready_for_tflite`) computes the same
  numbers in ops XNNPACK runs whole and fast: each reflect pad as 1-row ``Slice``s + ``Concat``s
  of at most 5 inputs (:func:`reflect_pad`; onnx2tf made a reflect ``Pad`` TFLite's
  ``MIRROR_PAD``, which XNNPACK does not take), and a blur of 2-3 channels as grouped 1-D
  convolutions with the other axis folded into the channels (:func:`_blur_along`);
- the colour LUT: index arithmetic + one ``Gather`` of each lattice cell's trilinear polynomial,
  interpolated in a flat ``[24, H W]`` layout (:class:`GatherLut`,
  :func:`styleforge.export.lut_graph.gather_cell`);
- luma as a 1x1 convolution, only where a colour step (the LUT, bloom, vignette, fade) changed
  the photo: a luma step (clarity, detail, smooth_skin, sharpen, grain) adds one ``[1, 1, H, W]``
  term to all three channels, which moves the luma by the same term (its weights sum to 1), so
  consecutive luma steps share one convolution and their terms are summed before one 3-channel
  ``Add``; the output's ``2 u - 1`` as a 1x1 convolution too (see :meth:`RecipeGraph.forward`);
- the vignette's weights and grain's field (its blur and
  normalisation included) baked as constants ``[1, 1, H, W]`` for this size, so grain is in the
  graph, exactly the runtime's noise at this size;
- element-wise ``Mul``/``Add``/``Sub``/``Div``/``Min``/``Max``/``Sigmoid``.

For int8, every clamp gets a tensor of its own, scaled *before* it is clamped (:class:`GatherLut`,
``_midtones``, bloom, the output): TFLite's quantiser gives a clamp's input the clamp's range,
also where that tensor is used unclipped elsewhere or multiplied by a constant afterwards (a
recipe clips once, at the end, so a step's output may exceed [0, 1]; clipped early, bright
pixels came out grey).

No InstanceNorm, PixelShuffle (DepthToSpace), ConvTranspose or GridSample: :data:`REFUSED_OPS`
is checked on the ONNX graph. The graph has the contract of every styleforge image artifact:
float32 ``[1, 3, H, W]`` NCHW (ONNX) or ``[1, H, W, 3]`` NHWC (TFLite, via onnx2tf) in
``[-1, 1]`` both ways, sRGB-encoded.

A recipe is defined on the whole photo (radii are fractions of its short side, the vignette
spans the frame), so a graph of it is a *whole-photo* artifact (``extra["whole_photo"]``): the
runtime runs it on photos of exactly its size and refuses others with one line, never in tiles.

Each artifact passes the gate every model artifact passes (:mod:`styleforge.export.verify`):
the runtime stylizes the held-out crops with it in a child process, compared with the PyTorch
recipe (:class:`~styleforge.train.models.recipe.RecipeGenerator`, fp32) against
:data:`~styleforge.export.verify.DEFAULT_BOUNDS_DB` (fp32 60, fp16 40, int8 30 dB).

Core ML (``.mlpackage``, an ML program for iOS 16+) is converted by coremltools from a TorchScript
trace of the same :class:`RecipeGraph`, NCHW like the ONNX graph. Core ML predicts only on macOS:
there it passes the same gate; elsewhere the package is written, read back as a spec (its I/O
shapes checked, its MIL ops counted and checked against :data:`REFUSED_MIL_OPS`) and its fidelity
recorded as :data:`~styleforge.export.verify.NOT_VERIFIED_COREML`, as every Core ML artifact's is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge.errors import StyleforgeError
from styleforge.export import calibration as cal
from styleforge.export import coreml_export as cm
from styleforge.export import ops_report, verify
from styleforge.export.lut_graph import (
    cell_coefficients,
    gather_cell,
    signed_image_weight,
    to_signed_image,
)
from styleforge.export.onnx_export import INPUT_NAME, ONNX_OPSET, OUTPUT_NAME, export_onnx, onnx_ops
from styleforge.export.tflite_convert import TFLiteConversionError, convert_tflite
from styleforge.runtime import look_blur, look_ops
from styleforge.runtime.contract import Artifact, TensorSpec
from styleforge.train.models import recipe_ops
from styleforge.train.models.recipe import RecipeGenerator

GRAPH_FORMATS = ("onnx", "tflite", "coreml")
TFLITE_VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8")
TFLITE_FILES = {"tflite_fp32": "recipe_fp32.tflite", "tflite_fp16": "recipe_fp16.tflite",
                "tflite_int8": "recipe_int8.tflite"}
ONNX_FILE = "recipe.onnx"
REFUSED_OPS = {"InstanceNormalization", "DepthToSpace", "ConvTranspose", "GridSample"}
COREML_FILES = {"coreml_fp32": "recipe_fp32.mlpackage", "coreml_fp16": "recipe_fp16.mlpackage"}
REFUSED_MIL_OPS = {"instance_norm", "pixel_shuffle", "depth_to_space", "conv_transpose", "resample"}  # Core ML's names
WORK_DIR = ".recipe-graph-work"
LUMA_ONLY = {"clarity", "detail", "smooth_skin", "sharpen", "grain"}  # x + d, d [1, 1, H, W] from luma(x)
NEEDS_LUMA = LUMA_ONLY | {"bloom"}
assert abs(sum(look_blur.LUMA) - 1.0) < 1e-6, "RecipeGraph moves the luma by each luma step's d"


class RecipeGraphError(StyleforgeError, RuntimeError):
    """A recipe graph could not be built, converted or did not pass its gate; nothing was written."""


@dataclasses.dataclass(frozen=True)
class GraphOptions:
    """What recipe graphs to build: ``formats`` (of :data:`GRAPH_FORMATS`), ``size`` (H, W) they run
    at, the TFLite ``variants`` (of :data:`TFLITE_VARIANTS`), the photos for int8 calibration
    (``calibration_images``: default the album's photos outside the held-out scenes;
    ``calibration_count`` random crops) and PSNR ``bounds`` by key or precision on top of
    :data:`~styleforge.export.verify.DEFAULT_BOUNDS_DB`."""

    formats: Sequence[str] = GRAPH_FORMATS
    size: tuple[int, int] = (512, 512)
    variants: Sequence[str] = TFLITE_VARIANTS
    calibration_images: Optional[Sequence[Path]] = None
    calibration_count: int = cal.MIN_CALIBRATION_CROPS
    bounds: Optional[dict[str, float]] = None


# ------------------------------------------------------------------------------ the graph


def _midtones(v: Tensor) -> Tensor:
    """``4 v (1 - v)`` of ``v`` clipped to [0, 1], as ``1 - 4 t^2`` of ``t = clip(v - 1/2)``: the clamp
    gets a tensor of its own. TFLite's int8 quantiser gives a clamp's input the clamp's range, and
    ``v`` (a blurred luma) is used unclipped elsewhere."""
    t = (v - 0.5).clamp(-0.5, 0.5)
    return 1.0 - t * t * 4.0


def reflect_pad(x: Tensor, radius: int, dim: int) -> Tensor:
    """``x`` (``[1, C, h, w]`` or ``[1, C, n]``) reflect-padded by ``radius`` (less than its length) on
    both ends of ``dim``, as ``F.pad(mode="reflect")`` pads it, written as 1-row ``Slice``s and one
    ``Concat``: TFLite's ``MIRROR_PAD`` (what onnx2tf makes of a reflect ``Pad``) is not taken by
    XNNPACK, so every blur split the graph into more delegate partitions (glow's five: 10, now 2;
    the LUT's integer index ops split it once). The ``Concat`` is split into XNNPACK's 5 inputs at
    most after export (:func:`ready_for_tflite`)."""
    n = x.shape[dim]
    before = [x.narrow(dim, i, 1) for i in range(radius, 0, -1)]  # rows radius .. 1
    after = [x.narrow(dim, n - 1 - i, 1) for i in range(1, radius + 1)]  # rows n - 2 .. n - 1 - radius
    return torch.cat([*before, x, *after], dim)


def _blur_along(x: Tensor, taps: Tensor, radius: int, dim: int, tflite: bool) -> Tensor:
    """``x`` ``[1, C, h, w]`` convolved along ``dim`` (2: down the columns, 3: along the rows) after a
    reflect pad of ``radius`` (``tflite``: :func:`reflect_pad`, else a reflect ``Pad``). ``taps``
    ``[C, 1, k, 1]`` / ``[C, 1, 1, k]``: a depthwise 2-D convolution. ``taps`` ``[w C, 1, k]`` /
    ``[h C, 1, k]`` (``k = 2 radius + 1``): the *folded* form, one grouped 1-D convolution of
    ``[1, w C, h]`` / ``[1, h C, w]``, the other axis folded into the channels. XNNPACK vectorises
    a depthwise convolution over channels, so C = 2 left most of each vector idle: a 2-channel
    256x256 level (17 taps) took about 2.3 ms per pass in TFLite fp32 (1 thread), folded about
    0.5 (onnx2tf adds a few ``Transpose``s). The same numbers either way. Not folded for one
    channel nor where ``w C == h`` (``h C == w``): with a square ``[1, n, n]`` onnx2tf guessed the
    axes wrong (a clarity graph 0.06 off; :class:`StaticBlur` decides)."""
    _, channels, height, width = x.shape
    if taps.dim() == 4:  # [C, 1, k, 1] / [C, 1, 1, k]: a depthwise 2-D convolution
        padded = reflect_pad(x, radius, dim) if tflite else F.pad(
            x, (0, 0, radius, radius) if dim == 2 else (radius, radius, 0, 0), mode="reflect")
        return F.conv2d(padded, taps, groups=channels)
    if dim == 2:
        lines = x.permute(0, 3, 1, 2).reshape(1, width * channels, height)
    else:
        lines = x.permute(0, 2, 1, 3).reshape(1, height * channels, width)
    lines = F.conv1d(reflect_pad(lines, radius, 2), taps, groups=lines.shape[1])
    if dim == 2:
        return lines.reshape(1, width, channels, height).permute(0, 2, 3, 1)
    return lines.reshape(1, height, channels, width).permute(0, 2, 1, 3)


XNNPACK_CONCAT_INPUTS = 5  # the most inputs of a CONCATENATION XNNPACK takes (ai-edge-litert 2.3.0)


def ready_for_tflite(path: Path, most: int = XNNPACK_CONCAT_INPUTS) -> int:
    """Rewrite the exported ONNX file ``path`` in place for onnx2tf and XNNPACK; the same graph:

    - no ``Concat`` has more than ``most`` inputs: each wider one becomes a tree of narrower ones
      with its longest input (along the axis) at the root, so that it is copied once. onnxsim
      fuses the nested concatenations a module writes into one, and XNNPACK leaves a
      ``CONCATENATION`` of more inputs to TFLite's own kernel, outside its partition;
    - node names start with a letter: onnx2tf names a grouped convolution's kernel after its node,
      and TensorFlow refuses the exporter's names (``/Conv_2``) there.

    Returns how many ``Concat`` nodes were split."""
    import onnx
    from onnx import helper, shape_inference

    model = onnx.load(str(path))
    known = shape_inference.infer_shapes(model).graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*known.value_info, *known.input, *known.output]}
    nodes: list = []
    rewritten = 0

    def tree(inputs: list[str], axis: int, stem: str) -> str:
        while len(inputs) > most:
            groups = [inputs[i:i + most] for i in range(0, len(inputs), most)]
            inputs = [concat(g, axis, f"{stem}/{len(nodes)}") if len(g) > 1 else g[0] for g in groups]
        return concat(inputs, axis, f"{stem}/{len(nodes)}") if len(inputs) > 1 else inputs[0]

    def concat(inputs: list[str], axis: int, name: str, output: Optional[str] = None) -> str:
        output = output or f"{name}_out"
        nodes.append(helper.make_node("Concat", inputs, [output], name=name, axis=axis))
        return output

    for node in model.graph.node:
        node.name = "n" + node.name.replace("/", "_") if node.name.startswith("/") else node.name
        if node.op_type != "Concat" or len(node.input) <= most:
            nodes.append(node)
            continue
        rewritten += 1
        axis = next(a.i for a in node.attribute if a.name == "axis")
        inputs = list(node.input)
        lengths = [dims.get(i, [])[axis] if len(dims.get(i, [])) > axis else 0 for i in inputs]
        root = max(range(len(inputs)), key=lambda i: lengths[i])
        before, after = inputs[:root], inputs[root + 1:]
        parts = [tree(before, axis, node.name)] if before else []
        parts += [inputs[root], *([tree(after, axis, node.name)] if after else [])]
        concat(parts, axis, node.name, node.output[0])
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return rewritten


class StaticBlur(nn.Module):
    """:func:`styleforge.runtime.look_blur.gaussian_blur` of ``[1, C, H, W]`` by ``sigma_frac``, its
    schedule (level, radii, taps) fixed for ``size`` when built, times ``gain`` (folded into the
    taps: the blur is linear, so a step that scales it saves a full-resolution ``Mul``). ``tflite``:
    the form converted to TFLite (:func:`_blur_along`): reflect pads as ``Slice``s + ``Concat``,
    each pass of a blur of 2 or more channels a 1-D convolution of the other axis folded into the
    channels."""

    def __init__(self, size: tuple[int, int], sigma_frac: float, channels: int, gain: float = 1.0,
                 tflite: bool = False):
        super().__init__()
        height, width = size
        self.size = (height, width)
        sigma_px = float(sigma_frac) * min(height, width)
        self.level = look_blur.pyramid_level(sigma_px, height, width)
        self.odd: list[tuple[bool, bool]] = []  # per 2x2 step: repeat the last row / column first
        h, w = height, width
        for _ in range(self.level):
            self.odd.append((h % 2 == 1, w % 2 == 1))
            h, w = (h + 1) // 2, (w + 1) // 2
        sigma = float(look_blur.level_sigma(sigma_px, self.level))
        self.radius = (look_blur.kernel_radius(sigma, h), look_blur.kernel_radius(sigma, w))
        # the gain goes into the first convolution that runs; with none (both radii 0), a Mul
        self.gain = 1.0 if any(self.radius) else float(gain)
        gain_on = "taps_y" if self.radius[0] else "taps_x"
        # [C, 1, k, 1] / [C, 1, 1, k] for a depthwise 2-D convolution, or one row per channel of the
        # folded layout (_blur_along): [w C, 1, k] down the columns, [h C, 1, k] along the rows
        for name, radius, lines, length, shape in (("taps_y", self.radius[0], w, h, (-1, 1)),
                                                   ("taps_x", self.radius[1], h, w, (1, -1))):
            taps = look_blur.gaussian_kernel(sigma, radius) if radius else np.ones(1, np.float32)
            taps = taps * gain if name == gain_on and radius else taps  # a float64 product, rounded once
            weight = torch.from_numpy(np.ascontiguousarray(taps, np.float32)).view(1, 1, -1)
            if tflite and channels > 1 and lines * channels != length:  # folded; not square (_blur_along)
                self.register_buffer(name, weight.repeat(lines * channels, 1, 1))
            else:
                self.register_buffer(name, weight.view(1, 1, *shape).repeat(channels, 1, 1, 1))
        self.channels, self.tflite = channels, tflite

    def pool(self, x: Tensor, step: int) -> Tensor:  # pyramid level ``step`` -> ``step + 1``: 2x2 mean
        odd_h, odd_w = self.odd[step]
        if odd_h:
            x = torch.cat([x, x[:, :, -1:]], dim=2)
        if odd_w:
            x = torch.cat([x, x[:, :, :, -1:]], dim=3)
        return F.avg_pool2d(x, 2)

    def pooled(self, x: Tensor, pyramid: Optional[list[Tensor]] = None) -> Tensor:
        """``x`` ``[1, C, H, W]`` 2x2-pooled down to the blur's level. ``pyramid``: ``[x, x pooled
        once, ...]`` shared by blurs of the same ``x`` at this size (a list this call extends), so
        two blurs pool each level once."""
        pyramid = [x] if pyramid is None else pyramid
        while len(pyramid) <= self.level:
            pyramid.append(self.pool(pyramid[-1], len(pyramid) - 1))
        return pyramid[self.level]

    def at_level(self, x: Tensor) -> Tensor:
        """The Gaussian (times ``gain``) of a ``[1, C, h, w]`` tensor of the level: down the columns,
        then along the rows, each a reflect pad and a 1-D convolution (:func:`_blur_along`)."""
        ry, rx = self.radius
        if ry:
            x = _blur_along(x, self.taps_y, ry, 2, self.tflite)
        if rx:
            x = _blur_along(x, self.taps_x, rx, 3, self.tflite)
        if self.gain != 1.0:
            x = x * self.gain
        return x

    def upsample(self, x: Tensor) -> Tensor:
        """A tensor of the level bilinearly up to ``size`` (one ``Resize``, half-pixel centres)."""
        if self.level == 0:
            return x
        x = F.interpolate(x, scale_factor=float(2**self.level), mode="bilinear", align_corners=False)
        height, width = self.size
        if x.shape[2] != height or x.shape[3] != width:
            x = x[:, :, :height, :width]
        return x

    def forward(self, x: Tensor, pyramid: Optional[list[Tensor]] = None) -> Tensor:  # [1, C, H, W] -> same
        """:meth:`pooled`, :meth:`at_level`, :meth:`upsample`: the runtime's gaussian_blur."""
        return self.upsample(self.at_level(self.pooled(x, pyramid)))


class _Step(nn.Module):
    """One recipe operator at a fixed size: parameters as Python floats, constants as buffers."""

    def __init__(self, name: str, params: dict[str, float], size: tuple[int, int], seed: int, tflite: bool):
        super().__init__()
        self.name, self.p = name, params
        blur = lambda frac, c=1, gain=1.0: StaticBlur(size, frac, c, gain, tflite)  # noqa: E731
        if name == "clarity":
            self.blur = blur(params["radius"])
        elif name == "detail":
            self.bands = nn.ModuleList(blur(s) for s in look_ops.DETAIL_BANDS)
        elif name == "smooth_skin":  # the fast guided filter; amount rides in the second blur's taps
            self.blur = blur(params["radius"], 2)
            self.spread = blur(params["radius"], 2, params["amount"])
        elif name == "sharpen":
            self.blur = blur(params["radius"])
        elif name == "bloom":  # strength * blur, then the tint (a Mul only when it is not (1, 1, 1))
            self.blur = blur(params["radius"], 3, params["strength"])
            tint = [float(params[ch]) for ch in "rgb"]
            self.register_buffer("tint", None if tint == [1.0, 1.0, 1.0] else
                                 torch.tensor(tint, dtype=torch.float32).view(1, 3, 1, 1))
        elif name == "vignette":  # x * (1 + min(a, 0) w) + max(a, 0) w (1 - x) = x * scale + offset
            w = recipe_ops.vignette_mask(torch.zeros(1, 1, *size), *(params[k] for k in (
                "midpoint", "roundness", "feather", "center_x", "center_y")))
            amount = params["amount"]
            offset = max(amount, 0.0) * w
            self.register_buffer("scale", (1.0 + min(amount, 0.0) * w) - offset)
            self.register_buffer("offset", offset)
        elif name == "fade":
            colour = torch.tensor([params["r"], params["g"], params["b"]], dtype=torch.float32).view(1, 3, 1, 1)
            self.register_buffer("lift", params["amount"] * colour)
        elif name == "grain":  # the runtime's field at this size, blurred and normalised as the torch twin does
            noise = torch.from_numpy(look_ops.grain_noise(*size, params["size"], seed)).view(1, 1, *size)
            with torch.no_grad():
                field = recipe_ops.gaussian_blur(noise.float(), params["size"] / 2.0)
                field = (field - field.mean()) / (field.std(unbiased=False) + 1e-6)
            self.register_buffer("field", params["amount"] * field)
        elif name != "colour_lut":
            raise RecipeGraphError(f"no graph for look operator {name!r}")

    def delta(self, lum: Tensor) -> Tensor:  # a luma-only step: lum [1, 1, H, W] -> d, its output is x + d
        p, name = self.p, self.name
        if name == "clarity":
            base = self.blur(lum)
            return p["amount"] * _midtones(base) * (lum - base)
        if name == "detail":  # fine (lum - b0) + medium (b0 - b1) + coarse (b1 - b2), one product per field
            pyramid = [lum]
            b0, b1, b2 = (band(lum, pyramid) for band in self.bands)
            fine, medium, coarse = p["fine"], p["medium"], p["coarse"]
            return fine * lum + (medium - fine) * b0 + (coarse - medium) * b1 - coarse * b2
        if name == "smooth_skin":  # statistics on the blur's level, one 2-field Resize to full size
            moments = self.blur.at_level(self.blur.pooled(torch.cat([lum, lum * lum], dim=1)))
            mean = moments[:, 0:1]
            # r = eps / (var + eps) written 1 - a, a = var / (var + eps), for int8: eps / (var + eps)
            # failed TFLite's DIV (a divisor quantised to its zero point), 1 / (1 + var / eps) gave
            # 25 dB (var / eps spans 0-40: coarse steps where r is near 1); this form 40 dB
            var = (moments[:, 1:2] - mean * mean).clamp(min=0.0)
            r = 1.0 - var / (var + p["edge"] * p["edge"])
            fields = self.spread.upsample(self.spread.at_level(torch.cat([r, mean * r], dim=1)))
            return fields[:, 1:2] - fields[:, 0:1] * lum  # amount (B - R L): amount is in the taps
        if name == "sharpen":
            return p["amount"] * (lum - self.blur(lum))
        if name == "grain":
            k = p["luma_dependence"]
            return ((1.0 - k) + k * _midtones(lum)) * self.field
        raise AssertionError(name)

    def forward(self, x: Tensor, lum: Optional[Tensor]) -> Tensor:  # a colour step: x [1, 3, H, W] -> the same
        p, name = self.p, self.name
        if name == "bloom":  # lum = luma(x) [1, 1, H, W]
            knee, threshold = look_ops.BLOOM_KNEE, p["threshold"]  # scaled before the clamp, for int8
            gate = torch.sigmoid((lum / knee - threshold / knee).clamp(-threshold / knee, (1.0 - threshold) / knee))
            # clip(x, 0, 1) * gate as min(max(x * gate, 0), gate) (gate > 0): x, used unclipped
            # below, keeps its own int8 range (see _midtones)
            lit = torch.minimum((x * gate).clamp(min=0.0), gate)
            glow = self.blur(lit)  # the blur's taps carry the strength
            return x + (glow if self.tint is None else glow * self.tint) * (1.0 - x)
        if name == "vignette":
            return x * self.scale + self.offset
        if name == "fade":  # not x (1 - lift) + lift: onnxsim would fold vignette's [1, 1, H, W] scale
            return x + self.lift * (1.0 - x)  # into a [1, 3, H, W] constant (+2 MB at 512x512)
        raise AssertionError(name)


class GatherLut(nn.Module):
    """Trilinear 3D LUT of ``[1, 3, H, W]`` in [0, 1] (clamped) by index arithmetic + one ``Gather``
    of each lattice cell's trilinear polynomial (:func:`styleforge.export.lut_graph.gather_cell`,
    a ``[(S-1)^3, 24]`` float32 table), with the lattice coordinate scaled *before* the clamp:
    TFLite's int8 quantiser gave a clamp followed by ``* (S - 1)`` the product's scale, which left
    17 input levels (nearest-node lookups: 29-33 dB for the LUT alone in int8, 37-39 dB this way).

    The earlier 8-gather form (8 Gathers ``[1, H, W, 3]`` of the cell's corners, each permuted to
    NCHW and weighted) was about 40 % of a four-operator
    recipe's ONNX Runtime time. An earlier one-gather
    table of each cell's 8 corners, weighted in the 4-D image layout, made onnx2tf lose track of
    the layout (wrong TFLite graphs, fp32 included). Done in a flat 2-D layout (``[N, 24]``
    gathered, ``[24, N]`` interpolated, ``N = H W``) it converts correctly (fp32 100 dB, fp16
    and int8 as before) where a 4-D convolution follows it, as the recipe graph's luma or its
    final ``2 u - 1`` does (and the LUT's own graphs' final 1x1 convolution,
    :func:`~styleforge.export.lut_graph.lut_module`); where only element-wise ops follow, onnx2tf
    leaves the output NCHW. The table is ``(S-1)^3 / S^3 * 8`` times the 8-gather
    one (6.7x: 393 KB for 17 nodes, 3.1 MB for 33)."""

    def __init__(self, table: np.ndarray, size: tuple[int, int]):  # [S, S, S, 3] indexed [r, g, b]; (H, W)
        super().__init__()
        self.lut_size, self.size = int(table.shape[0]), size
        self.register_buffer("cells", torch.from_numpy(cell_coefficients(table)))  # [(S-1)^3, 24]

    def forward(self, x: Tensor) -> Tensor:  # [1, 3, H, W] -> [1, 3, H, W]
        s = self.lut_size
        u = (x * float(s - 1)).clamp(0.0, float(s - 1))
        base = torch.clamp(torch.floor(u), max=float(s - 2))
        return gather_cell(self.cells, u, base, s, self.size)


class RecipeGraph(nn.Module):
    """The recipe of ``generator`` at ``size`` (H, W), for export:
    ``forward(x [1, 3, H, W] in [-1, 1]) -> [1, 3, H, W] in [-1, 1]``, as ``generator`` computes it.
    ``tflite``: the graph converted to TFLite, its reflect pads ``Slice``s + ``Concat`` (no
    ``MIRROR_PAD``, which XNNPACK does not take) and its blurs of 2 or 3 channels (smooth skin's
    fields, bloom) in the folded layout XNNPACK runs fast (:func:`_blur_along`). Without (the ONNX
    and Core ML graphs), reflect ``Pad``s and depthwise 2-D convolutions: ONNX Runtime ran the
    folded graph 3-6 % slower, and the same numbers either way."""

    arch_name = "recipe-graph"

    def __init__(self, generator: RecipeGenerator, size: tuple[int, int], tflite: bool = False):
        super().__init__()
        self.size = (int(size[0]), int(size[1]))
        self.names = [op.name for op in generator.stack.ops]
        steps = []
        for op in generator.stack.ops:
            if op.name == "colour_lut":
                steps.append(GatherLut(op.table.detach().clamp(0.0, 1.0).numpy(), self.size))
            else:
                steps.append(_Step(op.name, op.params(), self.size, int(op.seed), tflite))
        self.steps = nn.ModuleList(steps)
        self.register_buffer("luma_weight", torch.tensor(look_blur.LUMA, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("out_weight", signed_image_weight())

    def forward(self, x: Tensor) -> Tensor:
        u = (x + 1.0) * 0.5
        lum = pending = None  # luma(u + pending) [1, 1, H, W] once a step needed it; the sum of luma steps
        for name, step in zip(self.names, self.steps):
            if lum is None and name in NEEDS_LUMA:
                lum = F.conv2d(u if pending is None else u + pending, self.luma_weight)
            if name in LUMA_ONLY:  # x + d moves the luma by d too (the weights sum to 1): no convolution
                d = step.delta(lum)
                pending = d if pending is None else pending + d
                lum = lum + d
                continue
            if pending is not None:
                u, pending = u + pending, None
            u = step(u) if name == "colour_lut" else step(u, lum)
            lum = None
        if pending is not None:
            u = u + pending
        # scaled before the clamp (one more bit in int8); the 1x1 convolution keeps TFLite's output NHWC
        return to_signed_image(u, self.out_weight).clamp(-1.0, 1.0)


# ------------------------------------------------------------------------------ bundle artifacts


def write_recipe_graphs(bundle: Path, generator: RecipeGenerator, heldout_images: Sequence[Path],
                        options: GraphOptions, show: bool = True) -> dict[str, Artifact]:
    """Write the recipe's graphs into ``bundle`` (``recipe.onnx`` as ``onnx``, ``recipe_fp32.tflite``
    ... as ``tflite_fp32`` ..., ``recipe_fp32.mlpackage`` ... as ``coreml_fp32`` ...) at
    ``options.size``, each gated against ``generator`` on centre crops of ``heldout_images`` at that
    size (Core ML only on macOS; elsewhere marked not verified). Returns the artifacts (not yet
    hashed: the bundle writer does that). Raises :class:`RecipeGraphError` when a conversion fails
    (or coremltools is not usable here), the graph holds a refused op or any artifact falls below
    its bound (all are tried first)."""
    bundle, size = Path(bundle), (int(options.size[0]), int(options.size[1]))
    unknown = set(options.formats) - set(GRAPH_FORMATS) or set(options.variants) - set(TFLITE_VARIANTS)
    if unknown:
        raise RecipeGraphError(f"recipe graphs are {', '.join(GRAPH_FORMATS)} ({', '.join(TFLITE_VARIANTS)}); "
                               f"not {', '.join(sorted(unknown))}")
    if min(size) < 2 * look_blur.MIN_LEVEL_SIDE:
        raise RecipeGraphError(f"a recipe graph needs at least {2 * look_blur.MIN_LEVEL_SIDE}x"
                               f"{2 * look_blur.MIN_LEVEL_SIDE} px, got {size[0]}x{size[1]}")

    def say(text: str) -> None:
        if show:
            print(f"[export] recipe graph {size[0]}x{size[1]}: {text}", file=sys.stderr, flush=True)

    if "tflite" in options.formats and "tflite_int8" in options.variants \
            and options.calibration_count < cal.MIN_CALIBRATION_CROPS:
        raise RecipeGraphError(f"int8 needs at least {cal.MIN_CALIBRATION_CROPS} calibration crops, "
                               f"got {options.calibration_count}")
    if "coreml" in options.formats:
        if reason := cm.coreml_available():
            raise RecipeGraphError(f"Core ML export is not possible here: {reason}")
    bounds = {**verify.DEFAULT_BOUNDS_DB, **(options.bounds or {})}
    model = generator.eval()
    heldout_u8 = cal.heldout_crops(list(heldout_images), size)
    reference = verify.reference_pixels(model, heldout_u8)  # PyTorch fp32 recipe, [N, H, W, 3] 0-255
    failures: list[str] = []
    facts = {"graph": "pyramid (AveragePool, depthwise Gaussian Conv, bilinear Resize) + LUT gathers",
             "whole_photo": True, "size": list(size), "steps": [op.name for op in model.stack.ops],
             "why_whole_photo": "radii are fractions of the photo's short side and the vignette spans the "
                                "frame: the graph runs on photos of exactly its size, never in tiles"}

    def gate(art: Artifact, tflite: bool) -> Artifact:
        try:
            pixels, art = verify.artifact_pixels(bundle / art.file, art, heldout_u8, derive_specs=tflite,
                                                 list_ops=tflite)
        except verify.GateError as err:
            raise RecipeGraphError(str(err)) from None
        figures = verify.fidelity(reference, pixels)
        try:
            figures["bound_psnr"] = verify.check_bound(art.key, art.precision, figures, bounds)
        except verify.FidelityError as err:
            failures.append(str(err))
            figures["bound_psnr"] = bounds.get(art.key, bounds.get(art.precision))
        figures.update(verified=True, compared_with="pytorch_fp32 (the torch recipe)")
        return dataclasses.replace(art, fidelity=figures)

    with torch.no_grad():
        graph = RecipeGraph(model, size).eval()
    artifacts: dict[str, Artifact] = {}
    if "onnx" in options.formats or "tflite" in options.formats:  # ONNX is also TFLite's source
        onnx_path = bundle / ONNX_FILE
        say("ONNX export + onnxsim + checker")
        export_onnx(graph, onnx_path, size)
        ops = onnx_ops(onnx_path)
        refused = sorted(REFUSED_OPS & set(ops))
        if refused:
            raise RecipeGraphError(f"the recipe graph holds {', '.join(refused)}, which mobile delegates refuse")
        nchw_in, nchw_out = (TensorSpec(n, (1, 3, *size), layout="NCHW") for n in (INPUT_NAME, OUTPUT_NAME))
        artifacts["onnx"] = gate(Artifact(
            key="onnx", file=ONNX_FILE, format="onnx", precision="fp32", input=nchw_in, output=nchw_out, ops=ops,
            compatibility=ops_report.onnx_compatibility(ops, None), extra={**facts, "opset": ONNX_OPSET}), False)
        say(f"ONNX Runtime {artifacts['onnx'].fidelity['psnr']:.2f} dB vs PyTorch")
        if "tflite" in options.formats:
            artifacts.update(_tflite(bundle, model, size, options, facts, gate, say))
        if "onnx" not in options.formats:
            onnx_path.unlink()
            del artifacts["onnx"]
        shutil.rmtree(bundle / WORK_DIR, ignore_errors=True)
    if "coreml" in options.formats:
        artifacts.update(_coreml(bundle, graph, size, facts, bounds, gate, say))
        if "onnx" in artifacts:
            artifacts["onnx"].compatibility["coreml"] = {
                "verdict": "converted (from the TorchScript trace)", "unsupported_ops": [], "notes": []}
    if failures:
        raise RecipeGraphError("recipe graph gate failed; nothing was written:\n  " + "\n  ".join(failures))
    return artifacts


def _tflite(bundle: Path, model: RecipeGenerator, size: tuple[int, int], options: GraphOptions, facts: dict,
            gate, say) -> dict[str, Artifact]:
    """The TFLite variants, converted by onnx2tf (int8: calibrated on the calibration photos' crops) from
    an ONNX graph of their own (``RecipeGraph(tflite=True)``), made
    :func:`ready_for_tflite`."""
    variants = [v for v in TFLITE_VARIANTS if v in options.variants]
    calib_paths = list(options.calibration_images or cal.split_default_photos()[0])
    count = options.calibration_count if "tflite_int8" in variants else 20  # onnx2tf's sample inference
    calib_u8 = cal.calibration_crops(calib_paths, size, count, 0, show_progress=False)
    say(f"onnx2tf -> TFLite ({', '.join(v.split('_', 1)[1] for v in variants)}), {count} calibration crops")
    work = bundle / WORK_DIR
    work.mkdir(exist_ok=True)
    source = work / "recipe_tflite.onnx"
    with torch.no_grad():
        export_onnx(RecipeGraph(model, size, tflite=True).eval(), source, size)
    ready_for_tflite(source)
    try:
        written = convert_tflite(source, work, cal.to_model_range(calib_u8), tuple(variants))
    except TFLiteConversionError as err:
        raise RecipeGraphError(str(err)) from None
    info = work / "int8_info.json"
    float_fallback = bool(json.loads(info.read_text()).get("float_fallback")) if info.is_file() else False
    artifacts = {}
    for key in variants:
        precision = key.split("_", 1)[1]
        path = bundle / TFLITE_FILES[key]
        os.replace(written[key], path)
        nhwc = TensorSpec(INPUT_NAME, (1, *size, 3), layout="NHWC")
        checked = gate(Artifact(key=key, file=path.name, format="tflite", precision=precision, input=nhwc,
                                output=TensorSpec(OUTPUT_NAME, (1, *size, 3), layout="NHWC")), True)
        leftovers = checked.extra.get("float_leftovers") if precision == "int8" else None
        extra = {**facts, "converter": "onnx2tf"}
        if precision == "int8":
            extra.update(calibration_crops=count, float_fallback=float_fallback, float_leftovers=leftovers)
        artifacts[key] = dataclasses.replace(
            checked, extra=extra,
            compatibility=ops_report.tflite_compatibility(checked.ops, precision, True, leftovers))
        say(f"{key} {checked.fidelity['psnr']:.2f} dB vs PyTorch (bound {checked.fidelity['bound_psnr']:g})")
    return artifacts


def _coreml(bundle: Path, graph: RecipeGraph, size: tuple[int, int], facts: dict, bounds: dict[str, float],
            gate, say) -> dict[str, Artifact]:
    """``recipe_fp32.mlpackage`` and ``recipe_fp16.mlpackage`` (ML programs, iOS 16+), converted by
    coremltools from a TorchScript trace of ``graph``. Each is read back as a spec: its input and
    output must be ``[1, 3, H, W]`` at ``size`` and its MIL program free of :data:`REFUSED_MIL_OPS`.
    On macOS each then passes the gate; elsewhere its fidelity says it was not verified."""
    ct = cm.import_coremltools()

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: the graph is static by construction
        traced = torch.jit.trace(graph, torch.zeros(1, 3, *size))
    nchw_in, nchw_out = (TensorSpec(n, (1, 3, *size), layout="NCHW") for n in (INPUT_NAME, OUTPUT_NAME))
    artifacts = {}
    for key, file in COREML_FILES.items():
        precision = key.split("_", 1)[1]
        say(f"coremltools -> Core ML {precision}")
        path = bundle / file
        try:
            cm.export_coreml(traced, path, size, precision)
        except cm.CoreMLExportError as err:
            raise RecipeGraphError(str(err)) from None
        ops = cm.coreml_ops(path)
        refused = sorted(REFUSED_MIL_OPS & set(ops))
        if refused:
            raise RecipeGraphError(f"the recipe's Core ML program holds {', '.join(refused)}, which mobile "
                                   f"delegates refuse")
        io = coreml_io(path)
        wrong = [f"{name} {spec['shape']}" for name, spec in io.items() if spec["shape"] != [1, 3, *size]]
        if wrong:
            raise RecipeGraphError(f"{file}: Core ML {' and '.join(wrong)}, expected [1, 3, {size[0]}, {size[1]}]")
        notes = [] if cm.can_predict() else [verify.NOT_VERIFIED_COREML]
        art = Artifact(key=key, file=file, format="coreml", precision=precision, input=nchw_in, output=nchw_out,
                       ops=ops, compatibility={"coreml": {"verdict": "converted (ML program, iOS 16+)",
                                                          "unsupported_ops": [], "notes": notes}},
                       extra={**facts, "converter": f"coremltools {ct.__version__}", "compute_precision": precision,
                              "coreml_io": io})
        if cm.can_predict():
            art = gate(art, False)
            say(f"{key} {art.fidelity['psnr']:.2f} dB vs PyTorch (bound {art.fidelity['bound_psnr']:g})")
        else:
            art = dataclasses.replace(art, fidelity={"verified": verify.NOT_VERIFIED_COREML,
                                                     "bound_psnr": bounds.get(key, bounds.get(precision))})
            say(f"{key}: {sum(ops.values()) - ops.get('const', 0)} MIL ops, {verify.NOT_VERIFIED_COREML}")
        artifacts[key] = art
    return artifacts


def coreml_io(path: Path) -> dict[str, dict]:
    """A Core ML package's input and output as its spec states them: ``{"input": {"name", "shape",
    "dtype"}, "output": {...}}`` (dtype as the spec names it, lower case: coremltools gives an fp16
    ML program for iOS 16+ ``float16`` I/O)."""
    ct = cm.import_coremltools()

    description = ct.utils.load_spec(str(path)).description
    names = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType
    out = {}
    for role, feature in (("input", description.input[0]), ("output", description.output[0])):
        array = feature.type.multiArrayType
        out[role] = {"name": feature.name, "shape": [int(v) for v in array.shape],
                     "dtype": names.Name(array.dataType).lower()}
    return out
