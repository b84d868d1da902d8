"""``styleforge train``: parse the flags into a config and call the trainer (argparse only; torch
is imported on run). ``--dry-run`` prints the resolved config and does nothing else.

The same arguments serve ``torchrun --nproc_per_node=N -m styleforge.train ...`` (see
``train/__main__.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from styleforge.train.config import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (one of: --content + --style, --paired, --style + --model dcgan)")
    data.add_argument("--content", type=Path, help="folder of photos (domain A, unpaired mode)")
    data.add_argument("--style", type=Path, help="folder of styled images (domain B / dcgan images)")
    data.add_argument("--paired", type=Path, help="folder with A/ and B/ of matching images (a before/after pair per file name)")
    parser.add_argument("--model", choices=("colour", "resnet", "mobile", "dcgan"),
                        help="generator: colour (default for unpaired looks: curves + matrix + 3D LUT, "
                             "anchored to classical colour transfer; with --paired it is the "
                             "closed-form fit of the pairs), resnet (CycleGAN; pix2pix with --paired), "
                             "mobile, or dcgan (noise -> image on --style). --paired without --model is "
                             "model.generator=auto: the run (not --dry-run) learns a look recipe from the "
                             "pairs (colour LUT + smoothing, clarity, sharpening, bloom, fade, vignette, "
                             "fitted by gradient descent) and keeps the operators that help on held-out "
                             "pairs; a look no local operator helps trains the colour generator. It says "
                             "what each operator is worth and saves the choice in the run")
    parser.add_argument("--recipe", action="store_true",
                        help="unpaired, colour generator: then learn a look recipe around its LUT from the same "
                             "folders (smoothing, clarity, sharpening, bloom, fade, vignette: a statistics start, "
                             "then an adversarial step on crops), keep the operators that bring a held-out half of "
                             "the photos closer to the style, and write it to OUT/recipe, which export OUT ships; "
                             "a look no operator helps stays the colour generator (model.colour.recipe=auto)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, samples)")
    add_config_arguments(parser, example="loss.gan=hinge")
    parser.add_argument("--steps", type=int, help="total training steps (a resumed run trains up to this); a paired "
                        "colour generator takes 0 by default (the closed-form fit of the pairs is the model) and "
                        "N refines it")
    parser.add_argument("--seed", type=int, help="random seed (data order, init, noise)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: auto (CUDA if present)")
    parser.add_argument("--resume", action="store_true", help="continue the newest checkpoint in --out")
    parser.add_argument("--force", action="store_true", help="start over in a run folder that has checkpoints")
    parser.add_argument("--allow-degenerate", action="store_true",
                        help="finish with a warning, not an error, when the trained model fails the "
                             "degeneracy checks (the verdict is written to RUN/verdict.json either way)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add ``styleforge train`` to the ``styleforge`` parser."""
    parser = subparsers.add_parser(
        "train", help="learn a look: colour generator (default), CycleGAN, pix2pix or DCGAN",
        description="Learn a look. Unpaired: --content A --style B trains the colour generator "
                    "(curves + matrix + 3D LUT) from the evidence of the two folders: a colour matrix fitted so "
                    "the content photos reach as far as the style photos in 26 colour directions (each "
                    "scene group's reach medianed, and the pooled extremes), every statistic weighed by how "
                    "well bootstrap resamples of the scene groups agree (DIR/groups.json, else EXIF time), "
                    "around the levels fit; then tone curves kept as far as the groups agree. More photos of "
                    "more scenes pin more of it: the start improves with the folders. It then trains "
                    "adversarially and ships the share of that change the curves' evidence allows "
                    "(--set model.colour.init=levels --set model.colour.freedom=fixed: the old fixed start "
                    "and quarter); a degeneracy check judges it at the end. --model resnet "
                    "trains a CycleGAN. Paired: --paired DIR with A/ and B/: a look recipe (the colour LUT in "
                    "closed form, then local photographic operators in units of the photo, kept where they "
                    "help on held-out pairs: it runs at any size); a tone look stays the colour generator "
                    "(--model colour|resnet overrides). --style DIR "
                    "--model dcgan (noise -> image). Under torchrun it trains with DistributedDataParallel. "
                    "A collapsed, structure-destroying or do-nothing model ends with an error "
                    "(the run is kept, with RUN/verdict.json).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_train)


def _resolve(args: argparse.Namespace, model: Optional[str] = None):
    """The preset of ``model`` (default ``--model``; the run's saved config on --resume), YAML,
    --set, then the shortcut flags (:func:`styleforge.train.config.resolve_config`, the path
    ``distill`` and ``eval-looks`` take). ``--paired`` without ``--model`` resolves to
    ``model.generator=auto``: no work here, the run chooses (see :func:`run_train`)."""
    from styleforge.train.config import (
        AUTO,
        TrainConfig,
        config_from_dict,
        preset_config,
        read_yaml,
        resolve_config,
    )

    saved = args.out / "config.yaml"
    if args.resume and saved.is_file():
        base = config_from_dict(read_yaml(saved), base=TrainConfig())
    else:
        model = model or args.model or (AUTO if args.paired else None)
        base = preset_config(args.preset, model, paired=bool(args.paired))
    config = resolve_config(base, args.config, args.overrides)
    return resolve_config(config, shortcuts=_shortcuts(args, config))


def _shortcuts(args: argparse.Namespace, config) -> dict:
    """The flags as a partial config: mode and folders, --steps/--seed/--device, --model."""
    mode = config.mode
    if args.model == "dcgan" or (args.style and not args.content and not args.paired and mode == "dcgan"):
        mode = "dcgan"
    elif args.paired:
        mode = "paired"
    elif args.content or (args.style and args.model != "dcgan"):
        mode = "unpaired"
    folders = {"paired_dir": args.paired, "content_dir": args.content, "style_dir": args.style}
    patch: dict = {"mode": mode, "data": {key: str(path.resolve()) for key, path in folders.items() if path}}
    for key in ("steps", "seed", "device"):
        if getattr(args, key) is not None:
            patch[key] = getattr(args, key)
    if args.model is not None:
        model = {"generator": args.model}
        if args.model != config.model.generator:
            model["generator_kwargs"] = {}  # the preset's kwargs belong to another architecture
        if args.model == "dcgan":
            model["discriminator"] = "dcgan"
            model["discriminator_kwargs"] = {}
        patch["model"] = model
    if getattr(args, "recipe", False):
        patch.setdefault("model", {})["colour"] = {"recipe": "auto"}
    return patch


def run_train(args: argparse.Namespace) -> int:
    from styleforge.errors import CLIError
    from styleforge.train.config import AUTO, config_to_yaml

    if args.paired and (args.content or args.style):
        raise CLIError("give either --paired DIR or --content/--style, not both")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out} is a file, not a run folder")
    config = _resolve(args)
    auto = config.model.generator == AUTO
    if args.recipe and (config.mode != "unpaired" or config.model.generator != "colour"):
        raise CLIError("--recipe learns a look recipe around an unpaired colour generator: give --content and "
                       "--style (--paired already learns a recipe from the pairs)")
    if auto and config.mode != "paired":
        raise CLIError("model.generator=auto chooses the model for before/after pairs: give --paired DIR")
    if args.dry_run:
        if auto:
            print("model.generator: auto: the run fits a look recipe to the pairs and ships it when a local "
                  "operator helps on held-out pairs, else trains the colour generator (these settings)",
                  file=sys.stderr)
        sys.stdout.write(config_to_yaml(config))
        return 0
    for name in ("content_dir", "style_dir", "paired_dir"):
        folder = getattr(config.data, name)
        if folder and not Path(folder).is_dir():
            raise CLIError(f"{name.replace('_dir', '')} folder not found: {folder}")

    from styleforge.photo.verdict import DegenerateModelError
    from styleforge.train.trainer import AUTO_CANDIDATES, train

    try:
        # model.generator=auto: each candidate resolved the way an explicit --model is
        candidates = {model: _resolve(args, model) for model in AUTO_CANDIDATES} if auto else None
        summary = train(config, args.out, resume=args.resume, force=args.force, preset=args.preset,
                        show_progress=not args.quiet, candidates=candidates)
    except DegenerateModelError as err:
        if not args.allow_degenerate:
            raise CLIError(str(err)) from None
        print(f"warning: {err} (--allow-degenerate given)", file=sys.stderr)
        return 0
    if "checkpoint" in summary:
        print(f"checkpoint: {summary['checkpoint']}")
        evaluation = summary.get("eval")
        if evaluation:
            ident = evaluation["identity"]
            print(f"held-out PSNR {evaluation['psnr']:.2f} dB (identity baseline {ident['psnr']:.2f} dB), "
                  f"SSIM {evaluation['ssim']:.4f} ({ident['ssim']:.4f}), "
                  f"CIEDE2000 {evaluation['delta_e2000']:.2f} ({ident['delta_e2000']:.2f})")
    recipe = summary.get("recipe")
    if recipe:
        print(f"look recipe: {recipe['run']}" if recipe.get("run") else
              "look recipe: no local operator earned its place; the colour generator is the look")
    return 0
