"""One verified model bundle: every artifact, its I/O contract, fidelity, ops and references.

Layout of a bundle folder::

    NAME/
      manifest.json            # styleforge.runtime.contract.Manifest
      model.pt                 # TorchScript trace (runtime's torch backend)
      model.onnx               # opset 17, simplified, checked
      model_fp32.tflite  model_fp16.tflite  model_dynamic_int8.tflite  model_int8.tflite
      model_fp32.mlpackage/  model_fp16.mlpackage/
      reference/input_000.png  reference/output_000.png  ...

The bundle is assembled in a hidden temporary folder next to the destination and renamed into
place only after every artifact that can run on this OS has passed its fidelity gate: a failed
or interrupted export leaves no half bundle, and an existing bundle is replaced only with
``force=True`` (and then atomically: the old one is moved aside, the new one renamed in, the old
one deleted).

Each format has its own builder (``_torchscript``, ``_onnx``, ``_tflite``, ``_coreml``) that writes
its files and returns its manifest entries, each through the same fidelity gate (``_Gate``);
``_build`` calls them in that order and hands the entries to
:func:`~styleforge.export.bundle_writer.build_manifest`, which LUT bundles use too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from styleforge.errors import StyleforgeError
from styleforge.export import calibration as cal
from styleforge.export import ops_report, verify
from styleforge.export.bundle_writer import build_manifest, write_references, writing_bundle
from styleforge.export.lut_export import (
    COLOUR_AGREEMENT_DB,
    add_lut_to_bundle,
    colour_part_agreement,
)
from styleforge.export.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    ONNXExportError,
    export_onnx,
    export_torchscript,
    onnx_ops,
)
from styleforge.export.tflite_convert import TFLITE_FILES, TFLiteConversionError, convert_tflite
from styleforge.runtime.contract import Artifact, Manifest, TensorSpec
from styleforge.runtime.tensors import to_uint8
from styleforge.train.models.protocols import has_colour_part, model_stride

FORMATS = ("onnx", "tflite", "coreml")
TFLITE_PRECISION = {
    "tflite_fp32": "fp32",
    "tflite_fp16": "fp16",
    "tflite_dynamic_int8": "dynamic_int8",
    "tflite_int8": "int8",
}
DEFAULT_LUT_SIZE = 33
WORK_DIR = ".work"  # onnx2tf's scratch folder inside the bundle being built, removed before the rename


class ExportError(StyleforgeError, RuntimeError):
    """The export could not be completed; nothing was written. The message says why."""


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Everything an export can be asked for besides the model and the folder (see :func:`export_bundle`).

    ``size`` = (H, W) of the artifacts (multiples of ``generator.stride`` when it has one).
    ``calibration_images``: photos cut into ``calibration_count`` (>= 100) random crops for full
    int8 calibration; ``heldout_images``: photos the gate compares on (centre crops). Both default
    to disjoint subsets of the sample photos. ``bounds``: PSNR floors in dB by artifact key or
    precision (see :data:`styleforge.export.verify.DEFAULT_BOUNDS_DB`). ``int8_io``: I/O type of
    ``tflite_int8`` (``float`` | ``int8`` | ``uint8``). ``tflite_variants``: subset of the four
    TFLite keys (default all). ``lut``: ship the generator's colour part as ``look.cube`` + HALD
    CLUT (:mod:`styleforge.export.lut_export`) with ``lut_size`` nodes (17, 33 or 65; default 33),
    and ``formats`` then as the LUT's gather graphs (``lut_onnx``, ...) instead of the model's:
    ``None`` (auto) does so when the generator has a colour part that reproduces it on the
    held-out photos, ``True`` requires it, ``False`` never.
    """

    formats: Sequence[str] = FORMATS
    size: tuple[int, int] = (512, 512)
    calibration_images: Optional[list[Path]] = None
    heldout_images: Optional[list[Path]] = None
    style: str = ""
    name: Optional[str] = None
    provenance: Optional[dict[str, Any]] = None
    bounds: Optional[dict[str, float]] = None
    dynamic: bool = False
    int8_io: str = "float"
    progress: bool = True
    force: bool = False
    tflite_variants: Optional[Sequence[str]] = None
    calibration_count: int = cal.MIN_CALIBRATION_CROPS
    coreml_quantize: str = "none"
    coreml_image_input: bool = False
    lut_size: Optional[int] = None
    lut: Optional[bool] = None


def export_bundle(
    generator,
    out_dir: str | os.PathLike,
    options: Optional[ExportOptions] = None,
    **overrides: Any,
) -> Manifest:
    """Export ``generator`` (an ``nn.Module``: float32 NCHW ``[1, 3, H, W]`` in ``[-1, 1]`` both
    ways) to a bundle at ``out_dir`` and return its manifest.

    ``options`` (an :class:`ExportOptions`, which documents each field), with any of its fields
    given as keywords on top (``export_bundle(model, out, formats=("onnx",), size=(256, 256))``).
    Raises :class:`ExportError` (or :class:`~styleforge.export.verify.FidelityError` for a failed
    gate) and writes nothing then.
    """
    try:
        opts = dataclasses.replace(options or ExportOptions(), **overrides)
    except TypeError as err:
        raise ExportError(f"export_bundle: {err}") from None
    out_dir = Path(out_dir)
    formats, size, variants = _checked_options(generator, out_dir, opts)
    lut = _wants_lut(generator, opts.lut, opts.heldout_images)
    # A colour generator's look is its colour function: onnx/tflite/coreml become that LUT's
    # gather graphs (lut_graph.py), beside look.cube; only the TorchScript is of the model itself.
    model_formats = () if lut else formats
    if "coreml" in formats:
        _require_coreml()
    with writing_bundle(out_dir, opts.force, ExportError) as tmp:
        try:
            manifest = _build(
                generator, tmp, opts, formats=model_formats, size=size, name=opts.name or out_dir.name,
                bounds={**verify.DEFAULT_BOUNDS_DB, **(opts.bounds or {})}, variants=variants,
            )
        except verify.GateError as err:  # an artifact the runtime cannot run (or a diverged model)
            raise ExportError(str(err)) from None
        except ONNXExportError as err:
            if not has_colour_part(generator):
                raise
            raise ExportError(_no_graph_message(generator, err, opts.heldout_images)) from None
        if lut:
            manifest = add_lut_to_bundle(tmp, manifest, generator, opts.lut_size or DEFAULT_LUT_SIZE,
                                         opts.heldout_images, graph_formats=formats, graph_size=size)
    if opts.progress:
        print(ops_report.format_table(manifest.artifacts), file=sys.stderr)
        print(f"[export] bundle written to {out_dir}", file=sys.stderr)
    return manifest


def _checked_options(generator, out_dir: Path, opts: ExportOptions):
    """(formats, (H, W), TFLite variants) of ``opts``, or :class:`ExportError` saying what is wrong."""
    formats = tuple(opts.formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    if out_dir.exists() and not opts.force:
        raise ExportError(f"{out_dir} already exists; pass --force to replace it")
    size = (int(opts.size[0]), int(opts.size[1]))
    stride = model_stride(generator)
    if size[0] % stride or size[1] % stride:
        raise ExportError(f"size {size[0]}x{size[1]} must be a multiple of the model stride {stride}")
    if opts.int8_io not in ("float", "int8", "uint8"):
        raise ExportError(f"int8_io must be float, int8 or uint8, got {opts.int8_io!r}")
    if opts.calibration_count < cal.MIN_CALIBRATION_CROPS:
        raise ExportError(f"use at least {cal.MIN_CALIBRATION_CROPS} calibration crops")
    variants = tuple(opts.tflite_variants) if opts.tflite_variants is not None else tuple(TFLITE_PRECISION)
    bad = set(variants) - set(TFLITE_PRECISION)
    if bad:
        raise ExportError(f"unknown TFLite variant(s) {sorted(bad)}")
    return formats, size, variants


def _require_coreml() -> None:
    from styleforge.export.coreml_export import coreml_available

    reason = coreml_available()
    if reason:
        raise ExportError(f"Core ML export is not possible here: {reason}")


def _wants_lut(generator, lut: Optional[bool], heldout_images) -> bool:
    """Resolve ``lut``: ``None`` (auto) ships the LUT when the model has a colour part that
    reproduces it (lut_export.COLOUR_AGREEMENT_DB on the held-out photos)."""
    if lut is not None:
        return bool(lut)
    if not has_colour_part(generator):
        return False

    return colour_part_agreement(generator, heldout_images)["psnr"] >= COLOUR_AGREEMENT_DB


def _no_graph_message(generator, err: Exception, heldout_images) -> str:
    """Why a colour generator whose colour part is not the look has no ONNX/TFLite/Core ML."""

    agreement = colour_part_agreement(generator.eval(), heldout_images)
    first = str(err).splitlines()[0][:160]
    return (f"no ONNX/TFLite/Core ML for this model: its full graph does not convert ({first}) and its "
            f"colour part alone matches it at only {agreement['psnr']:.2f} dB (the LUT graphs need >= "
            f"{COLOUR_AGREEMENT_DB:g} dB: its local branch matters); distill it into a conv student "
            f"(styleforge distill RUN --out runs/student) and export that")


class _Stages:
    """Prints which stage is running and how long each took."""

    def __init__(self, show: bool):
        self.show = show
        self.times: dict[str, float] = {}

    def run(self, label: str, fn, *args, **kwargs):
        if self.show:
            print(f"[export] {label} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.times[label] = round(time.perf_counter() - t0, 2)
        return result


@dataclasses.dataclass
class _Gate:
    """The fidelity gate every model artifact passes: the runtime stylizes the held-out crops with
    it (in a child process) and the result is scored against the PyTorch fp32 reference. A failed
    bound is collected in ``failures`` so every format is tried before the export fails."""

    bundle: Path
    heldout_u8: np.ndarray  # [N, H, W, 3] uint8 centre crops
    reference: np.ndarray  # [N, H, W, 3] PyTorch fp32 outputs, 0-255
    bounds: dict[str, float]
    stride: int
    stages: _Stages
    failures: list[str] = dataclasses.field(default_factory=list)

    def figures(self, key: str, precision: str, output: np.ndarray) -> dict[str, Any]:
        figures = verify.fidelity(self.reference, output)
        try:
            figures["bound_psnr"] = verify.check_bound(key, precision, figures, self.bounds)
        except verify.FidelityError as err:
            self.failures.append(str(err))
            figures["bound_psnr"] = self.bounds.get(key, self.bounds.get(precision))
        figures["verified"] = True
        figures["compared_with"] = "pytorch_fp32"
        return figures

    def check(self, art: Artifact, label: str, tflite: bool = False) -> Artifact:
        """``art`` with its fidelity; ``tflite``: the I/O specs and op lists come from the child
        too (LiteRT is never loaded here)."""
        out, art = self.stages.run(label, verify.artifact_pixels, self.bundle / art.file, art, self.heldout_u8,
                                   stride=self.stride, derive_specs=tflite, list_ops=tflite)
        return dataclasses.replace(art, fidelity=self.figures(art.key, art.precision, out))


def _nchw(name: str, h: Optional[int], w: Optional[int]) -> TensorSpec:
    return TensorSpec(name, (1, 3, h, w), layout="NCHW")  # None marks a free dimension


def _build(generator, bundle: Path, opts: ExportOptions, *, formats, size, name, bounds, variants) -> Manifest:
    """Every requested model artifact of ``generator`` into ``bundle``, each through its gate, and
    the manifest. ONNX is also the source of TFLite (then dropped unless asked for), the
    TorchScript trace the source of Core ML."""
    stages = _Stages(opts.progress)
    model = generator.eval().cpu()
    calib_paths, heldout_paths = _photo_paths(opts)
    heldout_u8 = stages.run("held-out photos", cal.heldout_crops, heldout_paths, size)
    reference = stages.run("PyTorch fp32 reference", verify.reference_pixels, model, heldout_u8)  # [N,H,W,3] 0-255
    gate = _Gate(bundle, heldout_u8, reference, bounds, model_stride(model), stages)

    artifacts, traced = _torchscript(model, gate, size)
    if "onnx" in formats or "tflite" in formats:
        artifacts.update(_onnx(model, gate, size, opts.dynamic))
    if "tflite" in formats:
        artifacts.update(_tflite(model, gate, opts, calib_paths, size, variants))
    if "onnx" not in formats and "onnx" in artifacts:
        (bundle / artifacts.pop("onnx").file).unlink()
    if "coreml" in formats:
        artifacts.update(_coreml(traced, gate, opts, size))
        if "onnx" in artifacts:
            artifacts["onnx"].compatibility["coreml"] = {
                "verdict": "converted (from the TorchScript trace)", "unsupported_ops": [], "notes": []}
    if gate.failures:
        raise verify.FidelityError("fidelity gate failed:\n  " + "\n  ".join(gate.failures))
    shutil.rmtree(bundle / WORK_DIR, ignore_errors=True)

    return build_manifest(
        bundle, name=name, style=opts.style, artifacts=artifacts,
        references=write_references(bundle, heldout_u8, to_uint8(reference)),
        model=_model_facts(model, size), heldout_images=heldout_paths, provenance=opts.provenance,
        export_facts={"size": list(size), "dynamic_hw": opts.dynamic, "stage_seconds": stages.times},
    )


def _photo_paths(opts: ExportOptions) -> tuple[list[Path], list[Path]]:
    """(calibration photos, held-out photos): the given ones, else disjoint halves of the sample
    photos; calibration falls back to the held-out photos."""
    given = opts.calibration_images and opts.heldout_images
    default_calib, default_heldout = ([], []) if given else cal.split_default_photos()
    heldout = list(opts.heldout_images or default_heldout)
    return list(opts.calibration_images or default_calib or heldout), heldout


def _torchscript(model, gate: _Gate, size: tuple[int, int]) -> tuple[dict[str, Artifact], Any]:
    """``model.pt``, always: the runtime's torch backend loads it, Core ML converts from it.
    Returns its artifact and the traced module."""
    traced = gate.stages.run("TorchScript trace", export_torchscript, model, gate.bundle / "model.pt", size)
    art = gate.check(Artifact(
        key="torchscript", file="model.pt", format="torchscript", precision="fp32",
        input=_nchw(INPUT_NAME, *size), output=_nchw(OUTPUT_NAME, *size),
        compatibility={"torch": {"verdict": "full", "unsupported_ops": [], "notes": []}},
    ), "TorchScript check")
    return {"torchscript": art}, traced


def _onnx(model, gate: _Gate, size: tuple[int, int], dynamic: bool) -> dict[str, Artifact]:
    """``model.onnx`` (opset 17, simplified, checked; free H and W with ``dynamic``)."""
    path = gate.bundle / "model.onnx"
    gate.stages.run("ONNX export + onnxsim + checker", export_onnx, model, path, size, dynamic)
    ops = onnx_ops(path)
    hw = (None, None) if dynamic else size
    return {"onnx": gate.check(Artifact(
        key="onnx", file=path.name, format="onnx", precision="fp32", input=_nchw(INPUT_NAME, *hw),
        output=_nchw(OUTPUT_NAME, *hw), ops=ops, compatibility=ops_report.onnx_compatibility(ops, None),
        extra={"opset": 17, "dynamic_hw": dynamic},
    ), "ONNX Runtime check")}


def _tflite(model, gate: _Gate, opts: ExportOptions, calib_paths: list[Path], size: tuple[int, int],
            variants: Sequence[str]) -> dict[str, Artifact]:
    """The TFLite ``variants``, converted by onnx2tf from ``model.onnx`` (already in the bundle;
    a static copy when that one is dynamic): TFLite artifacts are static at ``size``."""
    work = gate.bundle / WORK_DIR
    # Real photo crops even without int8: onnx2tf runs sample images through the model to
    # choose between layout permutations, and with blank images it can choose wrongly (we
    # saw a ResNet generator convert to 16 dB garbage when fed constant images).
    n_crops = opts.calibration_count if "tflite_int8" in variants else 20
    calib_u8 = gate.stages.run(f"calibration crops ({n_crops})", cal.calibration_crops, calib_paths, size,
                               n_crops, 0, opts.progress)
    source = gate.bundle / "model.onnx"
    if opts.dynamic:
        work.mkdir(exist_ok=True)
        source = gate.stages.run("static ONNX for TFLite", export_onnx, model, work / "static.onnx", size)
    try:
        written = gate.stages.run(
            f"onnx2tf -> TFLite ({', '.join(v.split('_', 1)[1] for v in variants)})",
            convert_tflite, source, work, cal.to_model_range(calib_u8), variants, opts.int8_io,
        )
    except TFLiteConversionError as err:
        raise ExportError(str(err)) from None
    info_file = work / "int8_info.json"
    float_fallback = bool(json.loads(info_file.read_text()).get("float_fallback")) if info_file.is_file() else False
    artifacts = {}
    for key in variants:
        path = gate.bundle / TFLITE_FILES[key]
        os.replace(written[key], path)
        precision = TFLITE_PRECISION[key]
        # Specs (int8 scales exist only once converted) and ops come from the interpreter in the
        # gate's child: a model that crashes LiteRT fails the export with a message instead of killing it.
        nhwc = TensorSpec(INPUT_NAME, (1, *size, 3), layout="NHWC")
        checked = gate.check(Artifact(key=key, file=path.name, format="tflite", precision=precision,
                                      input=nhwc, output=nhwc), f"LiteRT check {key}", tflite=True)
        leftovers = checked.extra.get("float_leftovers") if precision == "int8" else None
        extra: dict[str, Any] = {"converter": "onnx2tf"}
        if precision == "int8":
            extra.update(int8_io=opts.int8_io, calibration_crops=opts.calibration_count,
                         float_fallback=float_fallback, float_leftovers=leftovers)
        artifacts[key] = dataclasses.replace(
            checked, compatibility=ops_report.tflite_compatibility(checked.ops, precision, True, leftovers),
            extra=extra,
        )
    return artifacts


def _coreml(traced, gate: _Gate, opts: ExportOptions, size: tuple[int, int]) -> dict[str, Artifact]:
    """``model_fp32.mlpackage`` and ``model_fp16.mlpackage``, converted from the TorchScript trace;
    gated where Core ML can predict (macOS), else marked not verified."""
    from styleforge.export import coreml_export as cm

    artifacts = {}
    for precision in ("fp32", "fp16"):
        key = f"coreml_{precision}"
        path = gate.bundle / f"model_{precision}.mlpackage"
        try:
            gate.stages.run(f"Core ML {precision}", cm.export_coreml, traced, path, size, precision,
                            opts.coreml_quantize, opts.coreml_image_input)
        except cm.CoreMLExportError as err:
            raise ExportError(str(err)) from None
        if cm.can_predict():
            fid = {}  # measured below through the runtime's coreml backend, once the artifact exists
        else:
            fid = {"verified": verify.NOT_VERIFIED_COREML, "bound_psnr": gate.bounds.get(key, gate.bounds.get(precision))}
        spec_in = _nchw(INPUT_NAME, *size)
        if opts.coreml_image_input:
            spec_in = TensorSpec(INPUT_NAME, (1, *size, 3), dtype="uint8", layout="NHWC", value_range=(0.0, 255.0))
        art = Artifact(
            key=key, file=path.name, format="coreml", precision=precision, input=spec_in,
            output=_nchw(OUTPUT_NAME, *size), ops=cm.coreml_ops(path), fidelity=fid,
            compatibility={"coreml": {"verdict": "converted (ML program, iOS 16+)", "unsupported_ops": [],
                                      "notes": [] if cm.can_predict() else [verify.NOT_VERIFIED_COREML]}},
            extra={"compute_precision": precision, "quantize": opts.coreml_quantize,
                   "input_type": "image" if opts.coreml_image_input else "tensor",
                   **({"palette": cm.palettize_mode()} if opts.coreml_quantize.startswith("palettize") else {})},
        )
        artifacts[key] = gate.check(art, f"Core ML check {key}") if cm.can_predict() else art
    return artifacts


def _model_facts(model, size: tuple[int, int]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "arch": getattr(model, "arch_name", type(model).__name__),
        "config": dict(getattr(model, "config", {}) or {}),
        "params": int(sum(p.numel() for p in model.parameters())),
        "stride": model_stride(model),
        "input_range": [-1.0, 1.0],
    }
    try:
        from styleforge.train.models.profile import count_macs

        facts["macs"] = int(count_macs(model, size=size))
    except Exception:  # profile module not available, or the model has ops it cannot count
        pass
    return facts
