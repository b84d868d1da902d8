"""``styleforge train``: learn a style with a GAN (argparse only; torch is imported on run).

The same arguments serve ``torchrun --nproc_per_node=N -m styleforge.train ...`` (see
``train/__main__.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styleforge.train.config import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (one of: --content + --style, --paired, --style + --model dcgan)")
    data.add_argument("--content", type=Path, help="folder of photos (domain A, unpaired mode)")
    data.add_argument("--style", type=Path, help="folder of styled images (domain B / dcgan images)")
    data.add_argument("--paired", type=Path, help="folder with A/ and B/ of matching images (pix2pix)")
    parser.add_argument("--model", choices=("colour", "resnet", "mobile", "dcgan"),
                        help="generator: colour (default for unpaired looks: curves + matrix + 3D LUT, "
                             "anchored to classical colour transfer; with --paired it starts from the "
                             "closed-form fit of the pairs), resnet (CycleGAN; pix2pix with --paired), "
                             "mobile, or dcgan (noise -> image on --style). --paired without --model picks "
                             "colour when a closed-form colour fit reproduces the pairs at >= 32 dB (a tone "
                             "look), else resnet, and says which")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, samples)")
    add_config_arguments(parser, example="loss.gan=hinge")
    parser.add_argument("--steps", type=int, help="total training steps (a resumed run trains up to this)")
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
                    "(--set model.init=levels --set model.freedom=fixed: the old fixed start "
                    "and quarter); a degeneracy check judges it at the end. --model resnet "
                    "trains a CycleGAN. Paired: --paired DIR with A/ and B/: a tone look (a colour function "
                    "of the pairs) trains the colour generator from its closed-form fit, any other "
                    "look pix2pix (--model overrides). --style DIR "
                    "--model dcgan (noise -> image). Under torchrun it trains with DistributedDataParallel. "
                    "A collapsed, structure-destroying or do-nothing model ends with an error "
                    "(the run is kept, with RUN/verdict.json).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_train)


def _paired_model(args: argparse.Namespace) -> str:
    """``--paired`` without ``--model``: the colour generator when the closed-form colour fit
    reproduces the pairs well (the look is a colour function), else the ResNet (pix2pix)."""
    from styleforge.train.data import DatasetError
    from styleforge.train.paired_fit import COLOUR_LOOK_DB, choose_paired_generator

    try:
        model, db = choose_paired_generator(args.paired)
    except (DatasetError, ValueError):
        return "resnet"  # the dataset reports what is wrong with the folder
    if model == "colour":
        verdict, chosen, other = f"a colour function: >= {COLOUR_LOOK_DB:.0f} dB", "the colour generator", "--model resnet for pix2pix"
    else:
        verdict, chosen, other = f"not a colour function: < {COLOUR_LOOK_DB:.0f} dB", "the ResNet (pix2pix)", "--model colour for the colour generator"
    print(f"paired: a closed-form colour fit reproduces the pairs at {db:.1f} dB ({verdict}): training {chosen} "
          f"({other})", file=sys.stderr)
    return model


def _resolve(args: argparse.Namespace):
    """The preset (or the run's saved config on --resume), YAML, --set, then the shortcut flags
    (:func:`styleforge.train.config.resolve_config`, the path ``distill`` and ``eval-looks`` take)."""
    from styleforge.train.config import (
        TrainConfig,
        config_from_dict,
        preset_config,
        read_yaml,
        resolve_config,
        validate,
    )

    saved = args.out / "config.yaml"
    if args.resume and saved.is_file():
        base = config_from_dict(read_yaml(saved), base=TrainConfig())
    else:
        model = args.model
        if args.paired and model is None:
            model = _paired_model(args)
        base = preset_config(args.preset, model, paired=bool(args.paired))
    config = resolve_config(base, args.config, args.overrides)

    mode = config.mode
    data = {}
    if args.model == "dcgan" or (args.style and not args.content and not args.paired and mode == "dcgan"):
        mode = "dcgan"
    elif args.paired:
        mode = "paired"
    elif args.content or (args.style and args.model != "dcgan"):
        mode = "unpaired"
    if args.paired:
        data["paired_dir"] = str(args.paired.resolve())
    if args.content:
        data["content_dir"] = str(args.content.resolve())
    if args.style:
        data["style_dir"] = str(args.style.resolve())
    patch: dict = {"mode": mode, "data": data}
    if args.steps is not None:
        patch["steps"] = args.steps
    if args.seed is not None:
        patch["seed"] = args.seed
    if args.device is not None:
        patch["device"] = args.device
    if args.model is not None:
        model = {"generator": args.model}
        if args.model != config.model.generator:
            model["generator_kwargs"] = {}  # the preset's kwargs belong to another architecture
        if args.model == "dcgan":
            model["discriminator"] = "dcgan"
            model["discriminator_kwargs"] = {}
        patch["model"] = model
    config = config_from_dict(patch, base=config)
    validate(config)
    return config


def run_train(args: argparse.Namespace) -> int:
    from styleforge.errors import CLIError
    from styleforge.train.config import config_to_yaml

    if args.paired and (args.content or args.style):
        raise CLIError("give either --paired DIR or --content/--style, not both")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out} is a file, not a run folder")
    config = _resolve(args)
    if args.dry_run:
        sys.stdout.write(config_to_yaml(config))
        return 0
    for name in ("content_dir", "style_dir", "paired_dir"):
        folder = getattr(config.data, name)
        if folder and not Path(folder).is_dir():
            raise CLIError(f"{name.replace('_dir', '')} folder not found: {folder}")

    from styleforge.photo.verdict import DegenerateModelError
    from styleforge.train.trainer import train

    try:
        summary = train(config, args.out, resume=args.resume, force=args.force, preset=args.preset,
                        show_progress=not args.quiet)
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
    return 0
