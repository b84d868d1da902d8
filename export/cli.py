"""``styleforge export``: a trained run (or any generator) -> one verified model bundle.

argparse only at import time; torch, onnx and friends are imported inside :func:`run_export`.

Examples::

    styleforge export runs/film-warm --out dist/film-warm
    styleforge export runs/film-warm --formats onnx,tflite --size 512x512 --calib ~/photos \\
        --int8-io uint8 --bound tflite_int8=28 --out dist/film-warm --force
    styleforge export --model my_pkg.nets:build_generator --weights g.safetensors --out dist/mine
    styleforge export --look film-warm --formats cube --lut-size 33 --out dist/film-warm-lut
    styleforge export --recipe ~/Downloads/recipe.json --bundle dist/glow --out dist/glow-softer
"""

from __future__ import annotations

import sys
from pathlib import Path

from styleforge.cli_options import SIZE_HELP, parse_size
from styleforge.errors import CLIError

TFLITE_SHORT = ("fp32", "fp16", "dynamic_int8", "int8")


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    p = subparsers.add_parser(
        "export",
        help="export a generator to ONNX / TFLite / Core ML as one verified bundle",
        description="Export a trained generator (run folder, checkpoint folder or .safetensors) or "
        "your own (--model module:factory --weights FILE) to a bundle folder: the artifacts, "
        "manifest.json (I/O contract, provenance, sizes, sha256, ops, fidelity, delegate "
        "compatibility) and reference input/output pairs. Every artifact that runs on this OS is "
        "compared with PyTorch fp32 on held-out photos; below its PSNR bound the export fails "
        "and writes nothing.",
    )
    p.add_argument("source", nargs="?", metavar="CHECKPOINT_OR_RUN",
                   help="run folder, checkpoint folder or generator .safetensors (omit with --model)")
    p.add_argument("--model", metavar="MODULE:FACTORY",
                   help="your own generator: FACTORY() in MODULE (dotted name or file.py) returns an nn.Module")
    p.add_argument("--weights", metavar="FILE", help="weights for --model (.safetensors, or a .pt state dict)")
    p.add_argument("--out", metavar="DIR", help="bundle folder (default dist/<style or run name>)")
    p.add_argument("--formats", default=None,
                   help="comma list of onnx, tflite, coreml, cube (cube: the model's colour part as "
                        "look.cube + a HALD CLUT PNG, gated with colour-science's reader). A colour "
                        "generator whose colour part is its look always ships look.cube, and its "
                        "onnx/tflite/coreml are that LUT as gather graphs (default onnx,tflite,coreml,"
                        "cube for it; onnx,tflite,coreml for other models). A look recipe run always "
                        "ships recipe.json + look.cube; onnx,tflite,coreml add its graphs at --size (whole "
                        "photos of that size only; TFLite fp32, fp16, int8; Core ML fp32, fp16)")
    p.add_argument("--look", metavar="NAME",
                   help="export a built-in tone look (styleforge looks) as a LUT bundle: --formats cube")
    p.add_argument("--recipe", metavar="FILE",
                   help="a look recipe edited by hand (the preview page's 'save recipe') -> a recipe bundle; "
                        "needs --bundle. Its colour_lut steps name .cube files: their tables are the .cube "
                        "artifacts of that name in --bundle, hash-checked and copied. No PyTorch model is behind "
                        "an edited recipe, so the gate is the runtime's: the new bundle must open as stylize opens "
                        "it and give finite, full-size output on the held-out photos (--heldout) at short sides "
                        "256 and 640; the manifest records how far the edit moved the look from --bundle's. The "
                        "bundle holds recipe.json, those .cube files and look.ffmpeg.txt (the recipe as an ffmpeg "
                        "filtergraph for 1920x1080, checked with ffmpeg against the runtime; below 35 dB or without "
                        "ffmpeg it is marked unverified and the bundle still ships)")
    p.add_argument("--bundle", metavar="SRC",
                   help="with --recipe: the bundle the recipe was edited from (read only; its .cube files are the "
                        "recipe's tables; default --out: dist/<SRC name>-edited)")
    p.add_argument("--lut-size", type=int, choices=(17, 33, 65), default=33,
                   help="nodes per axis of look.cube (default 33)")
    p.add_argument("--tflite-variants", default=",".join(TFLITE_SHORT),
                   help="comma list of fp32, fp16, dynamic_int8, int8 (default all)")
    p.add_argument("--size", default="512x512", help=f"model input size: {SIZE_HELP} (default 512x512)")
    p.add_argument("--dynamic", action="store_true", help="ONNX with free H x W (TFLite/Core ML stay at --size)")
    p.add_argument("--calib", metavar="DIR", help="photos for int8 calibration (default: the album's photos outside the held-out scenes)")
    p.add_argument("--calib-count", type=int, default=100, help="calibration crops (>= 100, default 100)")
    p.add_argument("--heldout", metavar="DIR", help="photos for the fidelity gate (default: held-out scene groups of the album)")
    p.add_argument("--int8-io", choices=("float", "int8", "uint8"), default="float",
                   help="input/output type of the full-int8 TFLite model (default float)")
    p.add_argument("--bound", action="append", default=[], metavar="KEY=DB",
                   help="PSNR floor for an artifact key or precision, e.g. tflite_int8=28 or fp16=45")
    p.add_argument("--coreml-quantize", choices=("none", "int8", "palettize4", "palettize6"), default="none",
                   help="Core ML weight compression (coremltools.optimize)")
    p.add_argument("--coreml-image-input", action="store_true", help="Core ML input as an RGB ImageType")
    p.add_argument("--style", help="style name recorded in the manifest (default: from the checkpoint)")
    p.add_argument("--name", help="bundle name (default: the --out folder name)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator weights, not the EMA copy")
    p.add_argument("--force", action="store_true", help="replace an existing bundle (atomically)")
    p.add_argument("--allow-degenerate", action="store_true",
                   help="export a model that failed the degeneracy checks (collapse, lost structure, "
                        "does nothing) anyway; by default it is refused")
    p.add_argument("--quiet", action="store_true", help="no stage lines or progress bars")
    p.set_defaults(func=run_export)


def parse_bounds(items: list[str]) -> dict[str, float]:
    bounds = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            bounds[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise CLIError(f"--bound must look like KEY=DB (e.g. tflite_int8=28), got {item!r}")
    return bounds


def _split(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise CLIError(f"{option}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(allowed)}")
    return items


def load_user_model(spec: str, weights: str | None):
    """``module:factory`` (dotted module or path to a .py file) -> an nn.Module in eval mode.

    Importing the factory and reading the weights (safetensors, or a state dict loaded with
    ``weights_only=True``) are the same as for a bring-your-own distillation teacher.
    """
    from styleforge.train.teachers import TeacherError, import_factory, load_weights

    try:
        model = import_factory(spec)()
        state = load_weights(weights) if weights else None
    except TeacherError as err:
        raise CLIError(f"--model/--weights: {err}") from None
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise CLIError(f"--weights {weights} do not fit {spec}: {str(err).splitlines()[0]}") from None
    return model.eval()


def run_export(args) -> int:
    if args.recipe or args.bundle:  # torch-free: the numpy runtime is an edited recipe's reference
        return _export_edited_recipe(args)
    from styleforge.export import calibration as cal
    from styleforge.export.bundle import ExportOptions, export_bundle

    size = parse_size(args.size)
    bounds = parse_bounds(args.bound)
    formats = _split(args.formats or "onnx,tflite,coreml", ("onnx", "tflite", "coreml", "cube"), "--formats")
    if args.look:
        return _export_look(args, formats if args.formats else ("cube",))
    lut = True if "cube" in formats else None  # None: the LUT when the model's colour part is its look
    formats = tuple(f for f in formats if f != "cube")
    variants = tuple(f"tflite_{v}" for v in _split(args.tflite_variants, TFLITE_SHORT, "--tflite-variants"))

    if args.model:
        if args.source:
            raise CLIError("give either CHECKPOINT_OR_RUN or --model, not both")
        model = load_user_model(args.model, args.weights)
        info = {"arch": type(model).__name__, "model": args.model, "weights": args.weights}
        default_name = args.model.rpartition(":")[2]
    elif args.source:
        if args.weights:
            raise CLIError("--weights goes with --model; a checkpoint already has its weights")
        from styleforge.train.checkpoint import load_generator

        recipe_run = Path(args.source) / "recipe"  # an unpaired run's look recipe (model.colour.recipe=auto)
        if (recipe_run / "checkpoints").is_dir():
            print(f"[export] {args.source} learned a look recipe: exporting {recipe_run}", file=sys.stderr)
            args.source = str(recipe_run)
        try:
            model, info = load_generator(args.source, use_ema=not args.no_ema)
        except (OSError, ValueError) as err:  # CheckpointError is a ValueError/OSError subclass
            raise CLIError(str(err)) from None
        default_name = info.get("style") or Path(args.source).resolve().name
        if info.get("arch") == "recipe":
            return _export_recipe(args, model, info, default_name)
    else:
        raise CLIError("nothing to export: give CHECKPOINT_OR_RUN or --model MODULE:FACTORY")

    style = args.style or info.get("style", "") or ""
    out = Path(args.out) if args.out else Path("dist") / default_name
    calib = cal.photos_in(args.calib) if args.calib else None
    heldout = cal.photos_in(args.heldout) if args.heldout else None
    if calib and not heldout:
        _, heldout = cal.split_default_photos()
    from styleforge.train.degeneracy import check_generator

    verdict = check_generator(model, heldout or cal.split_default_photos()[1],
                              run=Path(args.source) if args.source else None,
                              weights_file=Path(info["path"]) / info["weights"] if args.source else None,
                              allow=args.allow_degenerate, where=str(args.source or args.model))
    info = {**info, "verdict": verdict.to_dict()}
    if heldout and not calib and "tflite_int8" in variants and "tflite" in formats:
        calib, _ = cal.split_default_photos()
    provenance = {"source": str(args.source or args.model), **_jsonable(info)}
    options = ExportOptions(
        formats=formats, size=size, calibration_images=calib, heldout_images=heldout, style=style,
        name=args.name, provenance=provenance, bounds=bounds, dynamic=args.dynamic, int8_io=args.int8_io,
        progress=not args.quiet, force=args.force, tflite_variants=variants, calibration_count=args.calib_count,
        coreml_quantize=args.coreml_quantize, coreml_image_input=args.coreml_image_input,
        lut_size=args.lut_size, lut=lut,
    )
    manifest = export_bundle(model, out, options)
    print(f"{out}: {len(manifest.artifacts)} artifacts ({', '.join(manifest.artifacts)})")
    return 0


def _export_look(args, formats: tuple[str, ...]) -> int:
    """``--look NAME``: a bundle with the look's colour function as look.cube + HALD CLUT."""
    from styleforge.export import calibration as cal
    from styleforge.export.lut_export import LutExportError, export_lut_bundle, look_colour_fn

    if args.source or args.model:
        raise CLIError("give --look alone, not with CHECKPOINT_OR_RUN or --model")
    if "cube" not in formats:
        raise CLIError("--look exports a LUT: use --formats cube (plus onnx, tflite, coreml for the LUT as mobile graphs)")
    out = Path(args.out) if args.out else Path("dist") / f"{args.look}-lut"
    bound = parse_bounds(args.bound).get("lut_cube")
    try:
        colour_fn = look_colour_fn(args.look)
        heldout = cal.photos_in(args.heldout) if args.heldout else None
        manifest = export_lut_bundle(
            colour_fn, out, size=args.lut_size, heldout_images=heldout, style=args.style or args.look,
            name=args.name, provenance={"source": f"look:{args.look}"}, force=args.force,
            progress=not args.quiet, **({"bound_db": bound} if bound is not None else {}),
            graph_formats=tuple(f for f in formats if f != "cube"), graph_size=parse_size(args.size),
        )
    except (LutExportError, ValueError, cal.CalibrationError, RuntimeError) as err:
        raise CLIError(str(err)) from None  # RuntimeError: ONNX / TFLite / Core ML converter errors
    print(f"{out}: {len(manifest.artifacts)} artifacts ({', '.join(manifest.artifacts)})")
    return 0


def _export_edited_recipe(args) -> int:
    """``--recipe FILE --bundle SRC``: a hand-edited recipe with SRC's tables, gated by the runtime."""
    from styleforge.export import calibration as cal
    from styleforge.export.recipe_edit import export_edited_recipe

    if not (args.recipe and args.bundle):
        raise CLIError("--recipe FILE and --bundle SRC go together: the recipe, and the bundle its .cube tables come from")
    if args.source or args.model or args.look or args.formats:
        raise CLIError("give --recipe and --bundle without CHECKPOINT_OR_RUN, --model, --look or --formats "
                       "(an edited recipe exports as recipe.json with its .cube files and ffmpeg chain)")
    out = Path(args.out) if args.out else Path("dist") / f"{Path(args.bundle).resolve().name}-edited"
    heldout = cal.photos_in(args.heldout) if args.heldout else None
    manifest = export_edited_recipe(args.recipe, args.bundle, out, heldout_images=heldout, name=args.name,
                                    style=args.style, force=args.force, progress=not args.quiet)
    print(f"{out}: {len(manifest.artifacts)} artifacts ({', '.join(manifest.artifacts)})")
    return 0


def _export_recipe(args, model, info: dict, default_name: str) -> int:
    """A look recipe run (``train --paired``): ``recipe.json`` + ``look.cube``, gated against PyTorch;
    with ``--formats onnx,tflite,coreml`` also its graphs at ``--size`` (export/recipe_graph.py)."""
    from styleforge.export import calibration as cal
    from styleforge.export.lut_export import LutExportError
    from styleforge.export.recipe_export import export_recipe_bundle
    from styleforge.export.recipe_graph import TFLITE_VARIANTS, GraphOptions, RecipeGraphError

    formats = set(_split(args.formats, ("onnx", "tflite", "coreml", "cube"), "--formats")) if args.formats else set()
    if "coreml" in formats and (args.coreml_quantize != "none" or args.coreml_image_input):
        raise CLIError("a recipe's Core ML graphs take and give float tensors, uncompressed; "
                       "--coreml-quantize and --coreml-image-input are for model bundles")
    graphs = None
    if formats - {"cube"}:
        asked = _split(args.tflite_variants, TFLITE_SHORT, "--tflite-variants")
        variants = tuple(f"tflite_{v}" for v in asked if f"tflite_{v}" in TFLITE_VARIANTS)
        if "tflite" in formats and args.int8_io != "float":
            raise CLIError("recipe graphs have float input and output; --int8-io is for model bundles")
        if "tflite" in formats and not variants:
            raise CLIError(f"recipe graphs are TFLite {', '.join(v.split('_', 1)[1] for v in TFLITE_VARIANTS)}; "
                           f"--tflite-variants {args.tflite_variants} asks for none of them")
        graphs = GraphOptions(formats=tuple(sorted(formats - {"cube"})), size=parse_size(args.size), variants=variants,
                              calibration_images=cal.photos_in(args.calib) if args.calib else None,
                              calibration_count=args.calib_count, bounds=parse_bounds(args.bound))
    out = Path(args.out) if args.out else Path("dist") / default_name
    bound = parse_bounds(args.bound).get("recipe")
    try:
        heldout = cal.photos_in(args.heldout) if args.heldout else None
        manifest = export_recipe_bundle(
            model, out, heldout_images=heldout, style=args.style or info.get("style", "") or "",
            name=args.name, provenance={"source": str(args.source), **_jsonable(info)}, force=args.force,
            progress=not args.quiet, **({"bound_db": bound} if bound is not None else {}), graphs=graphs,
        )
    except (LutExportError, cal.CalibrationError, RecipeGraphError, RuntimeError) as err:
        raise CLIError(str(err)) from None  # RuntimeError: the ONNX exporter's errors
    print(f"{out}: {len(manifest.artifacts)} artifacts ({', '.join(manifest.artifacts)})")
    return 0


def _jsonable(d: dict) -> dict:
    """Drop what json cannot store (paths become strings)."""
    import json

    out = {}
    for k, v in d.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = str(v)
    return out
