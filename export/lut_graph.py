"""A 3D LUT as a mobile graph (ONNX opset 17, TFLite fp32/fp16, Core ML) built from gathers.

Why gathers: ONNX's 5-D ``GridSample`` needs opset 20 (bundles use 17), onnx2tf converts only
the 2-D bilinear one, TFLite has no grid sampling at all, and a convolution-only 33^3 LUT would
cost ~10^5 MAC per pixel. Trilinear interpolation as index arithmetic + one ``Gather`` of a
``[(S-1)^3, 24]`` table of each cell's trilinear polynomial (:func:`gather_cell`) costs a few
dozen element-wise ops per pixel (the earlier form, 8 ``Gather``s of a ``[S^3, 3]`` table of the
cell's corners, each permuted to NCHW and weighted, took about twice the time). Index arithmetic
needs exact integers, so these graphs are fp32/fp16 only (int8 would quantise the indices).

Contract (the same as every styleforge image artifact): NCHW float32 ``[1, 3, H, W]`` in
``[-1, 1]`` both ways (sRGB-encoded values), so the runtime's backends, tiler and benchmark run
them unchanged (a LUT is per pixel, so tiles blend without seams).
"""

from __future__ import annotations

import numpy as np

from styleforge.export import calibration as cal
from styleforge.export import ops_report
from styleforge.export.bundle_writer import with_file_facts
from styleforge.export.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx, onnx_ops
from styleforge.runtime.backends import load_backend
from styleforge.runtime.contract import Artifact, TensorSpec
from styleforge.runtime.lut import Lut3D
from styleforge.runtime.metrics import max_abs_error, psnr
from styleforge.runtime.tensors import range_to_pixels


def cell_coefficients(table: np.ndarray) -> np.ndarray:
    """Each lattice cell's trilinear polynomial, for :func:`gather_cell`: ``table`` ``[S, S, S, 3]``
    (indexed ``[r, g, b]``) -> float32 ``[(S - 1)^3, 24]``, row ``r (S-1)^2 + g (S-1) + b`` for the
    cell whose lowest corner is ``(r, g, b)``. Its 8 coefficients ``k`` of ``fr^i fg^j fb^k``
    (finite differences of the cell's 8 corners, in float64) lie at columns
    ``12 k + 6 j + 3 i + channel``, so that the nested halves of :func:`gather_cell` are slices."""
    s = table.shape[0]
    t = np.asarray(table, np.float64)
    c = np.stack([np.stack([np.stack([t[dr:s - 1 + dr, dg:s - 1 + dg, db:s - 1 + db] for db in (0, 1)], 3)
                            for dg in (0, 1)], 3) for dr in (0, 1)], 3)  # [S-1]*3 + [dr, dg, db, 3]
    for axis in (3, 4, 5):  # (v0, v1) -> (v0, v1 - v0) along each corner axis
        low, high = np.take(c, 0, axis), np.take(c, 1, axis)
        c = np.stack([low, high - low], axis)
    return np.ascontiguousarray(c.transpose(0, 1, 2, 5, 4, 3, 6).reshape(-1, 24), np.float32)


def gather_cell(cells, u, base, size: int, image_size: tuple[int, int]):
    """Trilinear interpolation as one gather: ``cells`` ``[(S-1)^3, 24]`` of :func:`cell_coefficients`,
    ``u`` ``[1, 3, H, W]`` in lattice units ``[0, S - 1]``, ``base`` its cell's corner (``floor``, at
    most ``S - 2``), ``image_size`` (H, W) as Python ints (a traced ``u.shape`` would put ``int``
    ops in the graph, which coremltools refuses) -> ``[1, 3, H, W]``. Flat 2-D layout throughout:
    the fractions ``[3, N]`` (``N = H W``), one Gather (int32 indices: fp16, as in Core ML fp16 and
    GPU delegates, holds integers exactly only up to 2048, and a 33^3 LUT has 32768 cells) ``[N, 24]``, one Transpose to ``[24, N]``, then ``a + f b`` three times on row halves (b, g,
    r), each a slice of contiguous rows times a ``[1, N]`` fraction, and a Reshape back to
    ``[1, 3, H, W]``.

    ONNX Runtime (2 threads, 512x512, one 17^3 LUT): 0.55-0.65x the time of 8 gathers of the
    cell's corners (the earlier form), whose ``[1, H, W, 3]`` corners each need a permute and a weight; TFLite fp32 0.65x.
    onnx2tf converts it correctly (fp32 100 dB, fp16 and int8 as the 8-gather form) when a 4-D
    convolution follows it: a recipe graph (:class:`~styleforge.export.recipe_graph.RecipeGraph`)
    and :func:`lut_module` both end in a 1x1 one for that reason. With only element-wise ops
    after the Reshape, the TFLite output stayed ``[1, 3, H, W]`` (nothing told onnx2tf it is an
    image)."""
    import torch

    s = size
    height, width = image_size
    n = height * width
    frac = (u - base).reshape(3, n)
    node = base.to(torch.int32).reshape(3, n)
    index = (node[0] * ((s - 1) * (s - 1)) + node[1] * (s - 1)) + node[2]  # [N]
    c = cells[index].transpose(0, 1)  # Gather [N, 24] -> [24, N]
    c = c[:12] + frac[2:3] * c[12:]  # b: [12, N]
    c = c[:6] + frac[1:2] * c[6:]  # g: [6, N]
    c = c[:3] + frac[0:1] * c[3:]  # r: [3, N]
    return c.reshape(1, 3, height, width)


def signed_image_weight():
    """The ``[3, 3, 1, 1]`` weight of ``2 u`` as a 1x1 convolution, for :func:`to_signed_image`
    (a buffer of the graph module that uses it)."""
    import torch

    return (2.0 * torch.eye(3)).view(3, 3, 1, 1)


def to_signed_image(u, weight):
    """``[1, 3, H, W]`` in [0, 1] -> ``2 u - 1`` in [-1, 1], the ``2 u`` as a 3->3 1x1 convolution by
    ``weight`` (:func:`signed_image_weight`): a 4-D op at a graph's end tells onnx2tf the output is
    an image (NHWC in TFLite), also after :func:`gather_cell`'s flat layout, which onnx2tf would
    otherwise leave NCHW. (A depthwise 1x1 with bias made onnx2tf fail on an op name, hence the
    full 3x3 weight.)"""
    import torch.nn.functional as F

    return F.conv2d(u, weight) - 1.0


def lut_module(lut: Lut3D, size: tuple[int, int]):
    """An ``nn.Module`` applying ``lut`` trilinearly to ``[1, 3, H, W]`` in [-1, 1] at ``size`` (H, W)
    (matches ``Lut3D.__call__`` to float rounding): one Gather of :func:`cell_coefficients`
    (:func:`gather_cell`), then :func:`to_signed_image` (``2 u - 1`` with the ``2 u`` a 1x1
    convolution, which keeps the TFLite output NHWC).

    At 512x512, 2 threads (shared machine), 0.50-0.59x the time of the earlier 8-gather form in
    ONNX Runtime and 0.53-0.65x in TFLite fp32/fp16, 17^3 and 33^3."""
    import torch
    from torch import nn

    class LutGraph(nn.Module):
        arch_name = "lut3d-gather"
        stride = 1

        def __init__(self, table: np.ndarray, image_size: tuple[int, int]):
            super().__init__()
            lut_size = table.shape[0]
            self.lut_size = lut_size
            self.image_size = (int(image_size[0]), int(image_size[1]))  # Python ints: no traced int ops
            self.config = {"lut_size": lut_size}
            self.register_buffer("cells", torch.from_numpy(cell_coefficients(table)))  # [(S-1)^3, 24]
            self.register_buffer("out_weight", signed_image_weight())

        def forward(self, x):  # [1, 3, H, W] in [-1, 1]
            s = self.lut_size
            u = torch.clamp((x + 1.0) * 0.5, 0.0, 1.0) * float(s - 1)
            base = torch.clamp(torch.floor(u), max=float(s - 2))  # [1, 3, H, W], small integers
            out = gather_cell(self.cells, u, base, s, self.image_size)  # [1, 3, H, W] in [0, 1]
            return to_signed_image(out, self.out_weight)

    return LutGraph(lut.table, size).eval()


# ------------------------------------------------------------------------------ bundle artifacts

GRAPH_FORMATS = ("onnx", "tflite", "coreml")
GRAPH_BOUNDS_DB = {"fp32": 40.0, "fp16": 35.0}  # vs the runtime's LUT path (float trilinear)


def write_lut_graphs(bundle, lut: Lut3D, heldout_u8: np.ndarray, formats=GRAPH_FORMATS,
                     bounds: dict | None = None, show: bool = True) -> tuple[dict, list[str]]:
    """Write ``lut_onnx``, ``lut_tflite_fp32/fp16`` and ``lut_coreml_fp32/fp16`` into ``bundle`` at
    the size of ``heldout_u8`` (uint8 ``[N, H, W, 3]``), each run through the runtime's own
    backend on those photos and compared with the runtime's LUT path before rounding (float32
    trilinear of the same table). Returns ``(artifacts, failures)``; a failure names the artifact,
    its PSNR and its bound (the caller refuses the bundle)."""
    import shutil
    import sys
    import warnings
    from pathlib import Path

    import torch


    bundle = Path(bundle)
    bounds = {**GRAPH_BOUNDS_DB, **(bounds or {})}
    size = heldout_u8.shape[1:3]
    model = lut_module(lut, tuple(size))
    x = cal.to_model_range(heldout_u8)  # NHWC [-1, 1]
    reference = lut(heldout_u8.astype(np.float32) / 255.0) * 255.0  # the runtime LUT path, unrounded
    artifacts: dict[str, Artifact] = {}
    failures: list[str] = []

    def say(text: str) -> None:
        if show:
            print(f"[export] {text}", file=sys.stderr, flush=True)

    def gate(key: str, precision: str, backend: str, path: Path, layout: str) -> dict:
        runner = load_backend(backend, path)
        try:
            outs = []
            for img in x:
                tensor = img.transpose(2, 0, 1)[None] if layout == "NCHW" else img[None]
                y = np.asarray(runner.run(np.ascontiguousarray(tensor, np.float32)))[0]
                outs.append(y.transpose(1, 2, 0) if layout == "NCHW" else y)
        finally:
            runner.close()
        out = range_to_pixels(np.stack(outs))
        scores = [psnr(a, b, 255.0) for a, b in zip(reference, out)]
        figures = {"psnr": round(float(np.mean(scores)), 2), "psnr_min": round(float(np.min(scores)), 2),
                   "max_abs": round(max(max_abs_error(a, b) for a, b in zip(reference, out)), 3),
                   "images": len(scores), "bound_psnr": bounds[precision], "verified": True,
                   "compared_with": "runtime LUT path (float32 trilinear, unrounded)"}
        if figures["psnr"] < bounds[precision]:
            failures.append(f"{key}: {figures['psnr']:.2f} dB vs the runtime's LUT path is below its bound "
                            f"of {bounds[precision]:g} dB (max abs {figures['max_abs']:.1f}/255)")
        return figures

    nchw = TensorSpec(INPUT_NAME, (1, 3, *size), layout="NCHW")
    nchw_out = TensorSpec(OUTPUT_NAME, (1, 3, *size), layout="NCHW")
    nhwc = TensorSpec(INPUT_NAME, (1, *size, 3), layout="NHWC")
    nhwc_out = TensorSpec(OUTPUT_NAME, (1, *size, 3), layout="NHWC")
    extra = {"lut_size": lut.size, "graph": "index arithmetic + 1 Gather of each cell's trilinear coefficients (int32 indices) + 1x1 Conv",
             "why_not_gridsample": "5-D GridSample needs ONNX opset 20; onnx2tf and TFLite have none"}
    onnx_path = bundle / "lut.onnx"
    if "onnx" in formats or "tflite" in formats:
        say("LUT graph: ONNX export + ONNX Runtime check")
        export_onnx(model, onnx_path, tuple(size))
        ops = onnx_ops(onnx_path)
        artifacts["lut_onnx"] = Artifact(
            key="lut_onnx", file=onnx_path.name, format="onnx", precision="fp32", input=nchw, output=nchw_out,
            ops=ops, fidelity=gate("lut_onnx", "fp32", "onnxruntime", onnx_path, "NCHW"),
            compatibility=ops_report.onnx_compatibility(ops, None), extra={**extra, "opset": 17})
    if "tflite" in formats:
        from styleforge.export.tflite_convert import convert_tflite

        say("LUT graph: onnx2tf -> TFLite (fp32, fp16)")
        work = bundle / ".lut-work"
        written = convert_tflite(onnx_path, work, x, ("tflite_fp32", "tflite_fp16"))
        for variant, precision in (("tflite_fp32", "fp32"), ("tflite_fp16", "fp16")):
            key, path = f"lut_{variant}", bundle / f"lut_{precision}.tflite"
            shutil.move(str(written[variant]), path)
            ops = ops_report.tflite_ops(path)
            compat = ops_report.tflite_compatibility(ops, precision, True, None)
            compat["int8_npu"] = {"verdict": "no", "unsupported_ops": sorted(ops),
                                  "notes": ["int8 would quantise the LUT indices: fp32/fp16 only"]}
            artifacts[key] = Artifact(
                key=key, file=path.name, format="tflite", precision=precision, input=nhwc, output=nhwc_out,
                ops=ops, fidelity=gate(key, precision, "litert", path, "NHWC"), compatibility=compat,
                extra={**extra, "converter": "onnx2tf"})
        shutil.rmtree(work, ignore_errors=True)
    if "onnx" not in formats and onnx_path.exists():
        onnx_path.unlink()
        artifacts.pop("lut_onnx", None)
    if "coreml" in formats:
        from styleforge.export import coreml_export as cm
        from styleforge.export.verify import NOT_VERIFIED_COREML

        if cm.coreml_available() is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(model, torch.zeros(1, 3, *size))
            for precision in ("fp32", "fp16"):
                say(f"LUT graph: Core ML {precision}")
                key, path = f"lut_coreml_{precision}", bundle / f"lut_{precision}.mlpackage"
                cm.export_coreml(traced, path, tuple(size), precision)
                fid = {"verified": NOT_VERIFIED_COREML, "bound_psnr": bounds[precision]}
                predict = getattr(cm, "predict_coreml", None)
                if cm.can_predict() and predict is not None:
                    out = predict(path, x)
                    fid = {"verified": True, "psnr": psnr(reference[0], range_to_pixels(out[0]))}
                artifacts[key] = Artifact(
                    key=key, file=path.name, format="coreml", precision=precision, input=nchw, output=nchw_out,
                    ops=cm.coreml_ops(path), fidelity=fid,
                    compatibility={"coreml": {"verdict": "converted (ML program, iOS 16+)", "unsupported_ops": [],
                                              "notes": ["indices in int32, so fp16 compute keeps them exact"]}},
                    extra={**extra, "compute_precision": precision})
        else:
            say(f"LUT graph: Core ML skipped ({cm.coreml_available()})")
    return {k: with_file_facts(bundle, a) for k, a in artifacts.items()}, failures
