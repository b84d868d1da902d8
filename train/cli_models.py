"""``styleforge info``: parameters and MACs of a registered model or a trained run.

argparse only at import time; torch is imported inside :func:`run_info`.

MODEL syntax: ``NAME[:ITEM,ITEM,...]`` where NAME is a registry name and each ITEM is either a
``key=value`` constructor argument or, alone, a preset. Examples::

    styleforge info resnet                       # CycleGAN ResNet-9 teacher
    styleforge info resnet:ngf=32,n_blocks=6
    styleforge info mobile:small --size 512x768
    styleforge info patchgan --discriminator
    styleforge info runs/film-warm               # a run folder, checkpoint folder or .safetensors
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from styleforge.cli_options import SIZE_HELP, parse_size


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    parser = subparsers.add_parser(
        "info",
        help="parameters and MACs of a model or a trained run; what an exported bundle holds",
        description="Print parameters and multiply-accumulates (MACs) of a registered model "
        "(e.g. 'mobile:small', 'resnet:ngf=32,n_blocks=6') or of the generator in a run "
        "folder, checkpoint folder or .safetensors file; for a look recipe (a paired run, or a "
        "bundle folder made by export) also its steps. A bundle folder: its artifacts, their "
        "fidelity and, for a look recipe, the recipe a step a line.",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="NAME[:preset][,key=value...], a run/checkpoint path or a bundle folder")
    parser.add_argument("--size", default="512", help=f"input size: {SIZE_HELP} (default 512)")
    parser.add_argument("--preset", help="preset for models that have one (mobile: nano|small|medium)")
    parser.add_argument("--discriminator", action="store_true", help="look NAME up among the discriminators")
    parser.add_argument(
        "--convention", choices=("exact", "torchprofile"), default="exact",
        help="how transposed convs are counted: 'exact' multiply-adds, or 'torchprofile' as in "
        "GAN Compression's tables (default: exact)",
    )
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="write one JSON object to PATH (no PATH or '-': print it)")
    parser.set_defaults(func=run_info)


def parse_value(text: str) -> Any:
    """``"32"`` -> 32, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_model_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"resnet:ngf=32,n_blocks=6"`` -> ``("resnet", {"ngf": 32, "n_blocks": 6})``;
    ``"mobile:small"`` -> ``("mobile", {"preset": "small"})``."""
    from styleforge.errors import CLIError

    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            if "preset" in kwargs:
                raise CLIError(f"{spec!r}: more than one preset given")
            kwargs["preset"] = item
        elif not key.strip():
            raise CLIError(f"{spec!r}: empty argument name in {item!r}")
        else:
            kwargs[key.strip()] = parse_value(value)
    return name.strip(), kwargs


def _build(args) -> tuple[Any, dict[str, Any]]:
    """The model and a description of where it came from."""
    from styleforge.errors import CLIError
    from styleforge.train.models.registry import build_discriminator, build_generator

    if Path(args.model).exists() and not args.discriminator:
        from styleforge.train.checkpoint import load_generator

        try:
            model, info = load_generator(args.model)
        except (ValueError, KeyError, TypeError) as err:
            raise CLIError(str(err)) from None
        source = {"path": str(args.model), "style": info.get("style", ""), "step": info.get("step")}
        return model, source
    name, kwargs = parse_model_spec(args.model)
    if args.preset:
        kwargs["preset"] = args.preset
    build = build_discriminator if args.discriminator else build_generator
    try:
        return build(name, **kwargs), {}
    except KeyError as err:
        raise CLIError(err.args[0]) from None
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from None


def _emit_json(report: dict, target: str) -> None:
    text = json.dumps(report, indent=2)
    if target == "-":
        print(text)
        return
    from styleforge.atomic import write_text

    print(f"wrote {write_text(Path(target), text + chr(10))}")


def bundle_info(folder: Path, as_json: Optional[str]) -> int:
    """``styleforge info BUNDLE``: the manifest's artifacts and, for a look recipe, its steps."""
    from styleforge.runtime.lut_stylizer import RECIPE_KEY, read_recipe
    from styleforge.runtime.manifest import load_manifest

    manifest = load_manifest(folder)  # validated: a bundle is untrusted input
    recipe = read_recipe(folder, manifest)[0] if RECIPE_KEY in manifest.artifacts else None
    if as_json:
        _emit_json({"bundle": str(folder), "name": manifest.name, "style": manifest.style, "model": manifest.model,
                    "artifacts": {k: {"file": a.file, "format": a.format, "size_bytes": a.size_bytes,
                                      "fidelity": a.fidelity} for k, a in manifest.artifacts.items()},
                    "recipe": recipe.to_json() if recipe else None}, as_json)
        return 0
    print(f"bundle {manifest.name} (style {manifest.style or '-'}, {manifest.model.get('arch', '?')}), "
          f"made by styleforge {manifest.styleforge_version or '?'} on {manifest.created or '?'}")
    for key, art in manifest.artifacts.items():
        fid = art.fidelity or {}
        figure = f", {fid['psnr_min']:.2f} dB min vs {fid.get('compared_with', '?')}" if "psnr_min" in fid else ""
        print(f"  {key:<20} {art.file:<28} {art.format:<12} {art.size_bytes:>10,} B{figure}")
    if recipe is not None:
        print("recipe (lengths are fractions of the photo's short side: the same look at any size):")
        for line in recipe.describe():
            print(f"  {line}")
    return 0


def run_info(args) -> int:
    from styleforge.errors import CLIError
    from styleforge.train.models.profile import profile

    if Path(args.model).is_dir() and (Path(args.model) / "manifest.json").is_file():
        return bundle_info(Path(args.model), args.json)
    size = parse_size(args.size)
    model, source = _build(args)
    if getattr(model, "arch_name", "") == "recipe":
        return _recipe_run_info(model, source, args.json)
    try:
        stats = profile(model, size, convention=args.convention)
    except ValueError as err:  # e.g. a size that is not a multiple of the model's stride
        raise CLIError(str(err)) from None
    report = {
        "arch": getattr(model, "arch_name", type(model).__name__),
        "config": getattr(model, "config", {}),
        **({"resolved": model.resolved} if hasattr(model, "resolved") else {}),
        **source,
        **stats,
        "convention": args.convention,
        "stride": getattr(model, "stride", None),
        "distill_points": list(getattr(model, "distill_points", ())),
    }
    if getattr(model, "latent_dim", None):
        report["size"] = None  # noise-to-image: the input is a latent vector, not an image
    if args.json:
        _emit_json(report, args.json)
        return 0
    settings = ", ".join(f"{k}={v}" for k, v in report["config"].items() if v is not None)
    at = "from a latent vector" if report["size"] is None else f"at {size[0]}x{size[1]}"
    print(f"{report['arch']} ({settings})")
    if source:
        print(f"  from     {source['path']} (style {source['style'] or '-'}, step {source['step']})")
    print(f"  params   {report['params']:,} ({report['params'] / 1e6:.3f} M)")
    print(f"  MACs     {report['macs']:,} ({report['gmacs']:.3f} GMAC {at}, {args.convention})")
    if report["stride"]:
        print(f"  stride   {report['stride']} (H and W must be multiples)")
    if report["distill_points"]:
        print(f"  distill  {', '.join(report['distill_points'])}")
    return 0


def _recipe_run_info(model, source: dict[str, Any], as_json: Optional[str]) -> int:
    """A look recipe's run: its steps (a recipe has no fixed size, so no MAC count)."""
    from styleforge.runtime.recipe import parse_recipe

    recipe = parse_recipe(model.recipe())
    params = sum(p.numel() for p in model.parameters())
    if as_json:
        _emit_json({"arch": "recipe", "config": model.config, **source, "params": params,
                    "recipe": recipe.to_json()}, as_json)
        return 0
    print(f"recipe ({', '.join(model.config['ops'])})")
    if source:
        print(f"  from     {source['path']} (style {source['style'] or '-'}, step {source['step']})")
    print(f"  params   {params:,} (the LUT's table and each operator's parameters)")
    print("  steps (lengths are fractions of the photo's short side: the same look at any size):")
    for line in recipe.describe():
        print(f"    {line}")
    return 0
