"""Ship a look as a 3D LUT: bake any colour function, write ``look.cube`` + a HALD CLUT, verify.

A *colour function* maps float RGB ``[M, 3]`` in [0, 1] (sRGB-encoded) to RGB ``[M, 3]`` in
[0, 1]. It may be a numpy callable, or a torch callable (an ``nn.Module`` or one of its bound
methods, e.g. ``ColourGenerator.colour``; run under ``no_grad`` on CPU tensors).

The gate does not trust our own reader: it reads ``look.cube`` back with colour-science
(``colour.read_LUT``, a maintained reader of the Iridas/Resolve ``.cube`` format), applies it
with colour-science's trilinear ``LUT3D.apply`` to held-out photos and compares with the colour
function evaluated on the same pixels (PSNR on unrounded [0, 255] values). The runtime's own
8-bit LUT path is scored against the same reference.

A full model that is more than its colour part (a local branch) ships a ``.cube`` only when the
full model and its colour part agree within :data:`COLOUR_AGREEMENT_DB` on the held-out photos;
below that, nothing is written and the figure is in the error.

An image-adaptive model's ``.cube`` holds the mix for the median of the held-out photos'
parameters; beside it :mod:`styleforge.export.adaptive_lut` writes ``look_adaptive.npz``, from
which the runtime bakes a LUT per photo (gated against torch too).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from PIL import Image

from styleforge.export import adaptive_lut as eal
from styleforge.export import calibration as cal
from styleforge.export import ops_report
from styleforge.export.bundle_writer import (
    N_REFERENCES,
    add_artifacts,
    build_manifest,
    with_file_facts,
    write_references,
    writing_bundle,
)
from styleforge.export.lut_common import LutExportError, lut_tensor_spec, score  # noqa: F401  (re-exported)
from styleforge.export.lut_graph import write_lut_graphs
from styleforge.photo.looks import get_look
from styleforge.runtime import lut as rlut
from styleforge.runtime.contract import Artifact, Manifest
from styleforge.train.models.protocols import has_colour_part, is_adaptive

COLOUR_AGREEMENT_DB = rlut.COLOUR_AGREEMENT_DB  # full model vs its colour part: below this a LUT is not the look
CUBE_BOUND_DB = 40.0  # .cube (read by colour-science) vs the colour function
HELDOUT_SIZE = (384, 384)
CUBE_FILE, HALD_FILE = "look.cube", "look_hald.png"
EVAL_CHUNK = 1 << 16  # rows per colour-function call: bounds memory for torch and numpy alike

ColourFn = Callable[[Any], Any]


# ------------------------------------------------------------------------------ baking


def _torch_callable(fn) -> bool:
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    if isinstance(fn, functools.partial):  # e.g. partial(model.colour, params=...)
        return _torch_callable(fn.func)
    owner = getattr(fn, "__self__", None)
    return isinstance(fn, torch.nn.Module) or isinstance(owner, torch.nn.Module)


def evaluate_colour(colour_fn: ColourFn, rgb01: np.ndarray) -> np.ndarray:
    """``colour_fn`` on float32 ``[M, 3]`` in [0, 1] -> float32 ``[M, 3]``, in chunks."""
    rgb01 = np.ascontiguousarray(rgb01, dtype=np.float32).reshape(-1, 3)
    use_torch = _torch_callable(colour_fn)
    outs = []
    for start in range(0, len(rgb01), EVAL_CHUNK):
        chunk = rgb01[start : start + EVAL_CHUNK]
        if use_torch:
            import torch

            with torch.no_grad():
                y = colour_fn(torch.from_numpy(chunk))
        else:
            y = colour_fn(chunk)
        if hasattr(y, "detach"):  # a torch tensor from a plain callable
            y = y.detach().cpu().numpy()
        y = np.asarray(y, dtype=np.float32).reshape(-1, 3)
        if len(y) != len(chunk):
            raise LutExportError(f"the colour function returned {len(y)} rows for {len(chunk)}")
        outs.append(y)
    out = np.concatenate(outs) if outs else np.zeros((0, 3), np.float32)
    if not np.all(np.isfinite(out)):
        raise LutExportError("the colour function returned non-finite values")
    return out


def bake_lut(colour_fn: ColourFn, size: int = rlut.DEFAULT_CUBE_SIZE, title: str = "") -> rlut.Lut3D:
    """Sample ``colour_fn`` on the ``size^3`` lattice: ``table[r, g, b] = f((r, g, b) / (S - 1))``,
    clipped to [0, 1]."""
    if int(size) < 2:
        raise LutExportError(f"LUT size must be at least 2, got {size}")
    grid = rlut.identity_table(int(size)).reshape(-1, 3)
    values = np.clip(evaluate_colour(colour_fn, grid), 0.0, 1.0)
    return rlut.Lut3D(values.reshape(size, size, size, 3), title)


def look_colour_fn(name: str) -> ColourFn:
    """The colour function of a built-in *tone* look (``styleforge looks``); local looks refuse."""
    look = get_look(name)
    if look.kind != "tone":
        raise LutExportError(
            f"look {name!r} is a {look.kind} look (each output pixel depends on its neighbours): "
            f"it is not a colour transform, so no .cube"
        )

    def colour(rgb01: np.ndarray) -> np.ndarray:
        return np.clip(look.fn(np.asarray(rgb01, np.float32).reshape(-1, 1, 3)), 0.0, 1.0).reshape(-1, 3)

    colour.__name__ = f"look:{name}"
    return colour


# ------------------------------------------------------------------------------ checks


def _full_model_output(full_model, photos01: np.ndarray) -> np.ndarray:
    """``full_model`` on float ``[N, H, W, 3]`` in [0, 1] -> the same. An ``nn.Module`` is a
    styleforge generator (NCHW ``[-1, 1]`` both ways); anything else a numpy HWC [0, 1] callable."""
    if _torch_callable(full_model):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(photos01.transpose(0, 3, 1, 2) * 2.0 - 1.0, np.float32))
        with torch.no_grad():
            y = torch.cat([full_model(x[i : i + 1]) for i in range(len(x))])
        return np.clip((y.permute(0, 2, 3, 1).numpy() + 1.0) / 2.0, 0.0, 1.0)
    return np.clip(np.stack([np.asarray(full_model(p), np.float32) for p in photos01]), 0.0, 1.0)


def colour_agreement(full_model, colour_fn: ColourFn, photos_u8: np.ndarray,
                     per_photo: Optional[Sequence[ColourFn]] = None) -> dict[str, float]:
    """How well the colour part alone reproduces ``full_model`` on photos (uint8 ``[N, H, W, 3]``).

    ``per_photo``: one colour function per photo (an image-adaptive model's colour part with that
    photo's predicted parameters); else ``colour_fn`` for all."""
    x = photos_u8.astype(np.float32) / 255.0
    full = _full_model_output(full_model, x)
    fns = list(per_photo) if per_photo is not None else [colour_fn] * len(x)
    colour = np.stack([np.clip(evaluate_colour(fn, p), 0.0, 1.0).reshape(p.shape) for fn, p in zip(fns, x)])
    return score(full, colour)


def verify_cube(cube_path: Path, colour_fn: ColourFn, photos_u8: np.ndarray) -> dict[str, Any]:
    """Read ``cube_path`` with colour-science, apply it (trilinear) to the photos and compare with
    ``colour_fn`` on the same pixels. Returns the figures (``psnr``, ``psnr_min``, ``max_abs``)."""
    try:
        import colour
    except ImportError:
        raise LutExportError("the .cube gate reads the LUT back with colour-science: "
                             "pip install colour-science (it is in styleforge[export])") from None
    read = colour.read_LUT(str(cube_path))
    if not isinstance(read, colour.LUT3D):
        raise LutExportError(f"{cube_path}: colour-science read a {type(read).__name__}, not a LUT3D")
    x = photos_u8.astype(np.float32) / 255.0
    reference = np.clip(evaluate_colour(colour_fn, x), 0.0, 1.0).reshape(x.shape)
    applied = np.clip(read.apply(x.astype(np.float64)), 0.0, 1.0).astype(np.float32)
    figures = score(reference, applied)
    import importlib.metadata as md

    figures.update(reader=f"colour-science {md.version('colour-science')} read_LUT + LUT3D.apply (trilinear)",
                   compared_with="colour function (float32)")
    return figures


def runtime_fidelity(lut: rlut.Lut3D, colour_fn: ColourFn, photos_u8: np.ndarray) -> dict[str, Any]:
    """The runtime's 8-bit LUT path (rounded uint8 output) vs the colour function."""
    applier = rlut.LutApplier(lut, threads=1)
    try:
        out = np.stack([applier.apply(p) for p in photos_u8]).astype(np.float32) / 255.0
    finally:
        applier.close()
    reference = np.clip(evaluate_colour(colour_fn, photos_u8.astype(np.float32) / 255.0), 0.0, 1.0)
    return {**score(reference.reshape(out.shape), out), "compared_with": "colour function (float32)"}


# ------------------------------------------------------------------------------ writing


def write_lut_artifacts(
    bundle: Path,
    colour_fn: ColourFn,
    *,
    size: int = rlut.DEFAULT_CUBE_SIZE,
    heldout_u8: np.ndarray,
    full_model=None,
    title: str = "",
    bound_db: float = CUBE_BOUND_DB,
    agreement_db: float = COLOUR_AGREEMENT_DB,
    per_photo: Optional[Sequence[ColourFn]] = None,
    adaptive: Optional[dict[str, Any]] = None,
) -> dict[str, Artifact]:
    """Bake, write ``look.cube`` + ``look_hald.png`` into ``bundle``, verify; returns the artifacts
    (``lut_cube``, ``lut_hald``) with size and sha256. Raises :class:`LutExportError` (having
    written nothing that stays) when the full model is not a colour transform or the gate fails."""
    if size not in rlut.CUBE_SIZES:
        raise LutExportError(f"--lut-size must be one of {', '.join(map(str, rlut.CUBE_SIZES))}, got {size}")
    agreement = None
    if full_model is not None:
        agreement = colour_agreement(full_model, colour_fn, heldout_u8, per_photo)
        if agreement["psnr"] < agreement_db:
            raise LutExportError(
                f"the full model matches its colour part at only {agreement['psnr']:.2f} dB PSNR on "
                f"{agreement['images']} held-out photos (needs >= {agreement_db:g} dB): its local branch "
                f"matters, so a LUT would not be this look; no .cube written"
            )
    lut = bake_lut(colour_fn, size, title)
    cube = bundle / CUBE_FILE
    rlut.write_cube(lut, cube, comments=(
        "styleforge 3D LUT: sRGB-encoded RGB in and out, trilinear, red index changes fastest",))
    hald_lut = bake_lut(colour_fn, rlut.HALD_LEVEL**2, title)
    hald = bundle / HALD_FILE
    Image.fromarray(rlut.hald_image(hald_lut, rlut.HALD_LEVEL), "RGB").save(hald)
    try:
        figures = verify_cube(cube, colour_fn, heldout_u8)
        figures["bound_psnr"] = bound_db
        if figures["psnr"] < bound_db:
            raise LutExportError(
                f"lut_cube: {figures['psnr']:.2f} dB vs the colour function (read back with colour-science) is "
                f"below its bound of {bound_db:g} dB (max abs {figures['max_abs']:.1f}/255); nothing was written"
            )
        figures["verified"] = True
        runtime = runtime_fidelity(lut, colour_fn, heldout_u8)
    except BaseException:
        cube.unlink(missing_ok=True)
        hald.unlink(missing_ok=True)
        raise
    extra = {"lut_size": size, "order": "red fastest (cube rows r + S*g + S*S*b); table[r, g, b]",
             "encoding": "sRGB in, sRGB out", "interpolation": "trilinear", "runtime_fidelity": runtime,
             "adaptive": adaptive or False}
    if agreement is not None:
        extra["full_vs_colour_part"] = {**agreement, "bound_psnr": agreement_db}
    spec_in, spec_out = lut_tensor_spec("rgb"), lut_tensor_spec("styled")
    artifacts = {
        "lut_cube": Artifact(key="lut_cube", file=CUBE_FILE, format="cube", precision="fp32", input=spec_in,
                             output=spec_out, fidelity=figures, extra=extra,
                             compatibility=_cube_compatibility()),
        "lut_hald": Artifact(key="lut_hald", file=HALD_FILE, format="hald", precision="uint8", input=spec_in,
                             output=spec_out, fidelity={"verified": "not gated (8-bit PNG, 64^3 lattice)"},
                             extra={"hald_level": rlut.HALD_LEVEL, "lattice": rlut.HALD_LEVEL**2,
                                    "image": [rlut.HALD_LEVEL**3, rlut.HALD_LEVEL**3]}),
    }
    return {k: with_file_facts(bundle, a) for k, a in artifacts.items()}


def _cube_compatibility() -> dict[str, Any]:
    note = {"unsupported_ops": [], "notes": []}
    return {name: {"verdict": "reads .cube", **note} for name in
            ("davinci_resolve", "photoshop", "ffmpeg_lut3d", "obs", "colour_science", "styleforge_runtime")}


def export_lut_bundle(
    colour_fn: ColourFn,
    out_dir: str | Path,
    *,
    size: int = rlut.DEFAULT_CUBE_SIZE,
    heldout_images: Optional[Sequence[Path]] = None,
    full_model=None,
    style: str = "",
    name: Optional[str] = None,
    provenance: Optional[dict[str, Any]] = None,
    bound_db: float = CUBE_BOUND_DB,
    force: bool = False,
    progress: bool = True,
    graph_formats: Sequence[str] = (),
    graph_size: tuple[int, int] = (512, 512),
) -> Manifest:
    """A bundle holding only the LUT artifacts of ``colour_fn`` (built in a temp folder, renamed in).

    ``graph_formats`` (``onnx``, ``tflite``, ``coreml``): also the LUT as mobile graphs at
    ``graph_size`` (:mod:`styleforge.export.lut_graph`), gated against the runtime's LUT path."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise LutExportError(f"{out_dir} already exists; pass --force to replace it")
    paths = list(heldout_images or cal.split_default_photos()[1])
    heldout_u8 = cal.heldout_crops(paths, HELDOUT_SIZE)
    with writing_bundle(out_dir, force, LutExportError) as tmp:
        artifacts = write_lut_artifacts(tmp, colour_fn, size=size, heldout_u8=heldout_u8, full_model=full_model,
                                        title=style or out_dir.name, bound_db=bound_db)
        if graph_formats:
            graphs, failures = write_lut_graphs(tmp, rlut.read_cube(tmp / CUBE_FILE),
                                                cal.heldout_crops(paths, graph_size), graph_formats, show=progress)
            if failures:
                raise LutExportError("LUT graph gate failed; nothing was written:\n  " + "\n  ".join(failures))
            artifacts.update(graphs)
        manifest = build_manifest(
            tmp, name=name or out_dir.name, style=style, artifacts=artifacts,
            references=_write_references(tmp, heldout_u8, colour_fn),
            model={"arch": "lut3d", "kind": "colour", "lut_size": size, "stride": 1},
            heldout_images=paths, provenance=provenance,
        )
    if progress:
        graphs = {k: a for k, a in manifest.artifacts.items() if a.format not in ("cube", "hald", "adaptive-lut")}
        if graphs:
            print(ops_report.format_table(graphs), file=sys.stderr)
        print(format_summary(manifest), file=sys.stderr)
    return manifest


def _write_references(bundle: Path, inputs_u8: np.ndarray, colour_fn: ColourFn) -> list[dict[str, str]]:
    """The reference pairs of a LUT bundle: held-out crops and the colour function's outputs."""
    outputs = []
    for photo in inputs_u8[:N_REFERENCES]:
        y = np.clip(evaluate_colour(colour_fn, photo.astype(np.float32) / 255.0), 0.0, 1.0)
        outputs.append(np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8).reshape(photo.shape))
    return write_references(bundle, inputs_u8, np.stack(outputs) if outputs else inputs_u8[:0])


def format_summary(manifest: Manifest) -> str:
    lines = []
    for key in ("lut_cube", "lut_hald", "lut_adaptive"):
        art = manifest.artifacts.get(key)
        if art is None:
            continue
        fid = art.fidelity
        if key == "lut_cube":
            rt = art.extra.get("runtime_fidelity", {})
            lines.append(f"[export] {art.file}: {art.extra['lut_size']}^3, {art.size_bytes / 1024:.0f} KiB, "
                         f"{fid['psnr']:.2f} dB vs the colour function via colour-science (bound {fid['bound_psnr']:g}), "
                         f"runtime 8-bit path {rt.get('psnr', float('nan')):.2f} dB")
            agree = art.extra.get("full_vs_colour_part")
            if agree:
                lines.append(f"[export] full model vs its colour part: {agree['psnr']:.2f} dB (bound {agree['bound_psnr']:g})")
        elif key == "lut_adaptive":
            lines.append(f"[export] {art.file}: a {art.extra['bake_size']}^3 LUT per photo in the runtime, "
                         f"{fid['psnr']:.2f} dB vs torch's per-photo colour (bound {fid['bound_psnr']:g}), "
                         f"numpy colour function {fid['numpy_vs_torch']['psnr']:.2f} dB")
        else:
            lines.append(f"[export] {art.file}: HALD level {art.extra['hald_level']} "
                         f"({art.extra['lattice']}^3), {art.size_bytes / 1024:.0f} KiB")
    return "\n".join(lines)


def colour_part_agreement(model, heldout_images: Optional[Sequence[Path]] = None) -> dict[str, float]:
    """How well ``model.colour`` alone reproduces ``model`` on the held-out photos (an
    image-adaptive model with each photo's own parameters): the figures of :func:`_score`."""
    paths = list(heldout_images or cal.split_default_photos()[1])
    heldout_u8 = cal.heldout_crops(paths, HELDOUT_SIZE)
    colour_fn, per_photo = model.colour, None
    if is_adaptive(model):
        colour_fn, per_photo, _ = _median_mix(model, heldout_u8)
    return colour_agreement(model, colour_fn, heldout_u8, per_photo)


def add_lut_to_bundle(bundle: Path, manifest: Manifest, model, size: int = rlut.DEFAULT_CUBE_SIZE,
                      heldout_images: Optional[Sequence[Path]] = None, bound_db: float = CUBE_BOUND_DB,
                      graph_formats: Sequence[str] = (), graph_size: tuple[int, int] = (512, 512)) -> Manifest:
    """Add ``lut_cube`` + ``lut_hald`` of ``model.colour`` to a bundle being built (``export_bundle``
    with ``lut_size``): ``model`` is a styleforge generator (NCHW ``[-1, 1]``) whose ``colour``
    method maps ``[M, 3]`` RGB in [0, 1] to the same; the full model must match it within
    :data:`COLOUR_AGREEMENT_DB` on the held-out photos. ``graph_formats`` (of ``onnx``, ``tflite``,
    ``coreml``): the baked LUT also as gather graphs at ``graph_size`` (``lut_onnx``, ...).
    Saves and returns the new manifest."""
    if not has_colour_part(model):
        raise LutExportError(
            f"{type(model).__name__} has no colour part (a `colour(rgb)` method mapping [M, 3] RGB in "
            f"[0, 1] to [0, 1]), so it cannot ship as a .cube; export a colour generator, or a look "
            f"with --look")
    colour_fn = model.colour
    paths = list(heldout_images or cal.split_default_photos()[1])
    heldout_u8 = cal.heldout_crops(paths, HELDOUT_SIZE)
    per_photo, adaptive, adaptive_art = None, None, None
    if is_adaptive(model):
        colour_fn, per_photo, adaptive = _median_mix(model, heldout_u8)
        try:  # the per-photo LUTs for the runtime (look_adaptive.npz), gated against torch
            adaptive_art = eal.write_adaptive_artifact(bundle, model, heldout_u8, lut_size=size)
            adaptive.update(eal.note_for(adaptive_art))
        except eal.NotExportable as why:
            adaptive.update(eal.note_for(None, str(why)))
    try:
        luts = write_lut_artifacts(bundle, colour_fn, size=size, heldout_u8=heldout_u8, full_model=model,
                                   title=manifest.style or manifest.name, bound_db=bound_db, per_photo=per_photo,
                                   adaptive=adaptive)
    except BaseException:
        if adaptive_art is not None:
            (bundle / adaptive_art.file).unlink(missing_ok=True)
        raise
    if adaptive_art is not None:
        luts[adaptive_art.key] = adaptive_art
    graph_formats = [f for f in graph_formats if f in ("onnx", "tflite", "coreml")]
    if graph_formats:
        graphs, failures = write_lut_graphs(bundle, rlut.read_cube(bundle / CUBE_FILE),
                                            cal.heldout_crops(paths, graph_size), graph_formats)
        if failures:
            raise LutExportError("LUT graph gate failed; nothing was written:\n  " + "\n  ".join(failures))
        luts.update(graphs)
    manifest = add_artifacts(bundle, manifest, luts)
    print(format_summary(manifest), file=sys.stderr)
    return manifest


def _median_mix(model, photos_u8: np.ndarray):
    """An image-adaptive model (``adaptive_params(u [N, 3, H, W]) -> [N, K]``, ``colour(rgb, params)``):
    one .cube can hold one mix only, so it holds the mix for the per-parameter median of the
    held-out photos' predictions. Returns (that colour function, per-photo colour functions for
    the 35 dB check, what the manifest says about it)."""
    import torch

    u = torch.from_numpy(np.ascontiguousarray(photos_u8.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0)
    with torch.no_grad():
        params = model.adaptive_params(u)  # [N, K]
        median = params.median(dim=0, keepdim=True).values
    baked = functools.partial(model.colour, params=median)
    per_photo = [functools.partial(model.colour, params=params[i : i + 1]) for i in range(len(params))]
    x = photos_u8.astype(np.float32) / 255.0
    single = np.stack([np.clip(evaluate_colour(baked, p), 0.0, 1.0).reshape(p.shape) for p in x])
    adapted = np.stack([np.clip(evaluate_colour(fn, p), 0.0, 1.0).reshape(p.shape) for fn, p in zip(per_photo, x)])
    note = {
        "baked": "the mix for the per-parameter median of the held-out photos' predicted parameters",
        "median_params": [round(float(v), 6) for v in median[0]],
        "median_mix_vs_per_photo": score(adapted, single),
    }
    return baked, per_photo, note
