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
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
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
from styleforge.export.bundle_writer import (
    export_versions,
    package_version,
    with_file_facts,
    write_references,
    writing_bundle,
)
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

FORMATS = ("onnx", "tflite", "coreml")
TFLITE_PRECISION = {
    "tflite_fp32": "fp32",
    "tflite_fp16": "fp16",
    "tflite_dynamic_int8": "dynamic_int8",
    "tflite_int8": "int8",
}
DEFAULT_LUT_SIZE = 33


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
    formats, size, force, int8_io = opts.formats, opts.size, opts.force, opts.int8_io
    calibration_count, tflite_variants, heldout_images = opts.calibration_count, opts.tflite_variants, opts.heldout_images
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ExportError(f"{out_dir} already exists; pass --force to replace it")
    size = (int(size[0]), int(size[1]))
    stride = int(getattr(generator, "stride", 1) or 1)
    if size[0] % stride or size[1] % stride:
        raise ExportError(f"size {size[0]}x{size[1]} must be a multiple of the model stride {stride}")
    if int8_io not in ("float", "int8", "uint8"):
        raise ExportError(f"int8_io must be float, int8 or uint8, got {int8_io!r}")
    if calibration_count < cal.MIN_CALIBRATION_CROPS:
        raise ExportError(f"use at least {cal.MIN_CALIBRATION_CROPS} calibration crops")
    variants = tuple(tflite_variants) if tflite_variants is not None else tuple(TFLITE_PRECISION)
    bad = set(variants) - set(TFLITE_PRECISION)
    if bad:
        raise ExportError(f"unknown TFLite variant(s) {sorted(bad)}")
    lut = _wants_lut(generator, opts.lut, heldout_images)
    lut_size = opts.lut_size or DEFAULT_LUT_SIZE
    # A colour generator's look is its colour function: onnx/tflite/coreml become that LUT's
    # gather graphs (lut_graph.py), beside look.cube; only the TorchScript is of the model itself.
    model_formats = () if lut else tuple(formats)
    if "coreml" in formats:
        from styleforge.export.coreml_export import coreml_available

        reason = coreml_available()
        if reason:
            raise ExportError(f"Core ML export is not possible here: {reason}")

    with writing_bundle(out_dir, force, ExportError) as tmp:
        try:
            manifest = _build(
                generator, tmp, opts, formats=model_formats, size=size, name=opts.name or out_dir.name,
                bounds={**verify.DEFAULT_BOUNDS_DB, **(opts.bounds or {})}, variants=variants,
            )
        except verify.GateError as err:  # an artifact the runtime cannot run (or a diverged model)
            raise ExportError(str(err)) from None
        except ONNXExportError as err:
            if not callable(getattr(generator, "colour", None)):
                raise
            raise ExportError(_no_graph_message(generator, err, heldout_images)) from None
        if lut:
            manifest = add_lut_to_bundle(tmp, manifest, generator, lut_size, heldout_images,
                                         graph_formats=formats, graph_size=size)
    if opts.progress:
        print(ops_report.format_table(manifest.artifacts), file=sys.stderr)
        print(f"[export] bundle written to {out_dir}", file=sys.stderr)
    return manifest


def _wants_lut(generator, lut: Optional[bool], heldout_images) -> bool:
    """Resolve ``lut``: ``None`` (auto) ships the LUT when the model has a colour part that
    reproduces it (lut_export.COLOUR_AGREEMENT_DB on the held-out photos)."""
    if lut is not None:
        return bool(lut)
    if not callable(getattr(generator, "colour", None)):
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


def _build(generator, bundle: Path, opts: ExportOptions, *, formats, size, name, bounds, variants) -> Manifest:
    """Every requested model artifact of ``generator`` into ``bundle``, each through its gate."""
    calibration_images, heldout_images, style = opts.calibration_images, opts.heldout_images, opts.style
    provenance, dynamic, int8_io, show = opts.provenance or {}, opts.dynamic, opts.int8_io, opts.progress
    calibration_count, coreml_quantize = opts.calibration_count, opts.coreml_quantize
    coreml_image_input = opts.coreml_image_input
    stages = _Stages(show)
    model = generator.eval().cpu()
    default_calib, default_heldout = cal.split_default_photos() if not (calibration_images and heldout_images) else ([], [])
    heldout_paths = list(heldout_images or default_heldout)
    heldout_u8 = stages.run("held-out photos", cal.heldout_crops, heldout_paths, size)
    reference = stages.run("PyTorch fp32 reference", verify.reference_pixels, model, heldout_u8)  # [N,H,W,3] 0-255
    stride = int(getattr(model, "stride", 1) or 1)

    h, w = size
    onnx_hw = (None, None) if dynamic else (h, w)  # None marks a free dimension
    nchw_in = TensorSpec(INPUT_NAME, (1, 3, *onnx_hw), layout="NCHW")
    nchw_out = TensorSpec(OUTPUT_NAME, nchw_in.shape, layout="NCHW")
    static_in = TensorSpec(INPUT_NAME, (1, 3, h, w), layout="NCHW")
    static_out = TensorSpec(OUTPUT_NAME, (1, 3, h, w), layout="NCHW")
    artifacts: dict[str, Artifact] = {}
    failures: list[str] = []

    def gate(key: str, precision: str, output: np.ndarray) -> dict[str, Any]:
        figures = verify.fidelity(reference, output)
        try:
            figures["bound_psnr"] = verify.check_bound(key, precision, figures, bounds)
        except verify.FidelityError as err:
            failures.append(str(err))
            figures["bound_psnr"] = bounds.get(key, bounds.get(precision))
        figures["verified"] = True
        figures["compared_with"] = "pytorch_fp32"
        return figures

    def check(art: Artifact, label: str, tflite: bool = False) -> Artifact:
        """Stylize the held-out crops with ``art`` through the runtime, in a child process; gate it.

        ``tflite``: take the I/O specs and op lists from the child too (LiteRT is never loaded here).
        """
        out, art = stages.run(label, verify.artifact_pixels, bundle / art.file, art, heldout_u8,
                              stride=stride, derive_specs=tflite, list_ops=tflite)
        return dataclasses.replace(art, fidelity=gate(art.key, art.precision, out))

    # TorchScript: always; the runtime's torch backend loads it, Core ML converts from it.
    traced = stages.run("TorchScript trace", export_torchscript, model, bundle / "model.pt", size)
    artifacts["torchscript"] = check(Artifact(
        key="torchscript", file="model.pt", format="torchscript", precision="fp32",
        input=static_in, output=static_out,
        compatibility={"torch": {"verdict": "full", "unsupported_ops": [], "notes": []}},
    ), "TorchScript check")

    # ONNX (also the source for TFLite, which then needs a static graph).
    onnx_path = None
    if "onnx" in formats or "tflite" in formats:
        onnx_path = bundle / "model.onnx"
        stages.run("ONNX export + onnxsim + checker", export_onnx, model, onnx_path, size, dynamic)
        ops = onnx_ops(onnx_path)
        artifacts["onnx"] = check(Artifact(
            key="onnx", file="model.onnx", format="onnx", precision="fp32", input=nchw_in,
            output=nchw_out, ops=ops, compatibility=ops_report.onnx_compatibility(ops, None),
            extra={"opset": 17, "dynamic_hw": dynamic},
        ), "ONNX Runtime check")

    work = bundle / ".work"
    if "tflite" in formats:
        # Real photo crops even without int8: onnx2tf runs sample images through the model to
        # choose between layout permutations, and with blank images it can choose wrongly (we
        # saw a ResNet generator convert to 16 dB garbage when fed constant images).
        calib_paths = list(calibration_images or default_calib or heldout_paths)
        n_crops = calibration_count if "tflite_int8" in variants else 20
        calib_u8 = stages.run(
            f"calibration crops ({n_crops})", cal.calibration_crops, calib_paths, size, n_crops, 0, show,
        )
        calib = cal.to_model_range(calib_u8)
        tflite_source = onnx_path
        if dynamic:  # TFLite artifacts stay static at `size`: convert a static copy of the graph
            work.mkdir(exist_ok=True)
            tflite_source = stages.run("static ONNX for TFLite", export_onnx, model, work / "static.onnx", size)
        try:
            written = stages.run(
                f"onnx2tf -> TFLite ({', '.join(v.split('_', 1)[1] for v in variants)})",
                convert_tflite, tflite_source, work, calib, variants, int8_io,
            )
        except TFLiteConversionError as err:
            raise ExportError(str(err)) from None
        int8_info = {}
        if (work / "int8_info.json").is_file():
            import json

            int8_info = json.loads((work / "int8_info.json").read_text())
        for key in variants:
            path = bundle / TFLITE_FILES[key]
            os.replace(written[key], path)
            precision = TFLITE_PRECISION[key]
            # Specs (int8 scales exist only once converted) and ops come from the interpreter in
            # the gate's child: a model that crashes LiteRT fails the export with a message
            # instead of killing it.
            nhwc = TensorSpec(INPUT_NAME, (1, h, w, 3), layout="NHWC")
            checked = check(Artifact(key=key, file=path.name, format="tflite", precision=precision,
                                     input=nhwc, output=nhwc), f"LiteRT check {key}", tflite=True)
            ops = checked.ops
            leftovers = checked.extra.get("float_leftovers") if precision == "int8" else None
            extra: dict[str, Any] = {"converter": "onnx2tf"}
            if precision == "int8":
                extra.update(int8_io=int8_io, calibration_crops=calibration_count,
                             float_fallback=bool(int8_info.get("float_fallback")), float_leftovers=leftovers)
            artifacts[key] = dataclasses.replace(
                checked, compatibility=ops_report.tflite_compatibility(ops, precision, True, leftovers),
                extra=extra,
            )
    if "onnx" not in formats and onnx_path is not None:
        onnx_path.unlink()
        artifacts.pop("onnx", None)

    if "coreml" in formats:
        from styleforge.export import coreml_export as cm

        for precision in ("fp32", "fp16"):
            key = f"coreml_{precision}"
            path = bundle / f"model_{precision}.mlpackage"
            try:
                stages.run(f"Core ML {precision}", cm.export_coreml, traced, path, size, precision,
                           coreml_quantize, coreml_image_input)
            except cm.CoreMLExportError as err:
                raise ExportError(str(err)) from None
            if cm.can_predict():
                fid = {}  # measured below through the runtime's coreml backend, once the artifact exists
            else:
                fid = {"verified": verify.NOT_VERIFIED_COREML, "bound_psnr": bounds.get(key, bounds.get(precision))}
            spec_in = static_in
            if coreml_image_input:
                spec_in = TensorSpec(INPUT_NAME, (1, h, w, 3), dtype="uint8", layout="NHWC", value_range=(0.0, 255.0))
            ops = cm.coreml_ops(path)
            artifacts[key] = Artifact(
                key=key, file=path.name, format="coreml", precision=precision, input=spec_in,
                output=static_out, ops=ops, fidelity=fid,
                compatibility={"coreml": {"verdict": "converted (ML program, iOS 16+)", "unsupported_ops": [],
                                          "notes": [] if cm.can_predict() else [verify.NOT_VERIFIED_COREML]}},
                extra={"compute_precision": precision, "quantize": coreml_quantize,
                       "input_type": "image" if coreml_image_input else "tensor",
                       **({"palette": cm.palettize_mode()} if coreml_quantize.startswith("palettize") else {})},
            )
            if cm.can_predict():
                artifacts[key] = check(artifacts[key], f"Core ML check {key}")
        if "onnx" in artifacts:
            artifacts["onnx"].compatibility["coreml"] = {
                "verdict": "converted (from the TorchScript trace)", "unsupported_ops": [], "notes": []}

    if failures:
        raise verify.FidelityError("fidelity gate failed:\n  " + "\n  ".join(failures))
    shutil.rmtree(work, ignore_errors=True)

    references = write_references(bundle, heldout_u8, to_uint8(reference))
    artifacts = {k: with_file_facts(bundle, a) for k, a in artifacts.items()}
    manifest = Manifest(
        name=name,
        style=style,
        artifacts=artifacts,
        references=references,
        provenance={**provenance, "export": {"size": [h, w], "dynamic_hw": dynamic,
                                             "stage_seconds": stages.times, "versions": export_versions(),
                                             "heldout_images": [p.name for p in heldout_paths]}},
        model=_model_facts(model, size),
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        styleforge_version=package_version("styleforge"),
    )
    manifest.save(bundle)
    return manifest


def _model_facts(model, size: tuple[int, int]) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "arch": getattr(model, "arch_name", type(model).__name__),
        "config": dict(getattr(model, "config", {}) or {}),
        "params": int(sum(p.numel() for p in model.parameters())),
        "stride": int(getattr(model, "stride", 1) or 1),
        "input_range": [-1.0, 1.0],
    }
    try:
        from styleforge.train.models.profile import count_macs

        facts["macs"] = int(count_macs(model, size=size))
    except Exception:  # profile module not available, or the model has ops it cannot count
        pass
    return facts
