"""Subcommands of this area (argparse only; heavy imports happen inside the run functions).

``styleforge looks``: list the built-in looks (or apply one to a photo with ``--apply``).
``styleforge make-dataset``: write a dataset for a look from the shipped photo album (or your
photos), split by scene group.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    looks = subparsers.add_parser(
        "looks",
        help="list the built-in looks (demo styles and ground truth)",
        description="List the built-in looks, or apply one to a photo.",
    )
    looks.add_argument("--apply", metavar="NAME", help="apply this look to --input and write --out")
    looks.add_argument("--input", type=Path, help="photo to apply the look to")
    looks.add_argument("--out", "--output", dest="output", type=Path,
                       help="where to write the result (PNG/JPEG by suffix)")
    looks.set_defaults(func=run_looks)

    make = subparsers.add_parser(
        "make-dataset",
        help="write a content/style/paired/test/val dataset for a look, split by scene group",
        description=(
            "Build an unpaired (content/ + style/), paired (paired/A + paired/B), held-out test "
            "(test/input + test/target) and validation (val/content + val/style) dataset for a "
            "built-in look, from the photo album that ships with styleforge (KPhotoAlbum's demo "
            "album, CC-BY-SA-4.0) or from --photos DIR. Whole scene groups are dealt to the sides, "
            "so no scene is on two sides; each photo is stored once, short side --size."
        ),
    )
    make.add_argument("--look", required=True, help="built-in look (see `styleforge looks`)")
    make.add_argument("--out", required=True, type=Path, help="output folder (created atomically)")
    make.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    make.add_argument("--size", type=int, default=320, help="short side of the stored photos in pixels (default 320)")
    make.add_argument(
        "--val-groups", type=int, default=1,
        help="scene groups per validation side, val/content and val/style (default 1; 0: none)",
    )
    make.add_argument(
        "--photos", type=Path, default=None,
        help=(
            "folder of your own photos (default: the shipped album). Scene groups come from "
            "DIR/groups.json ({\"groups\": {\"name\": [files]}, \"people\": {\"name\": true}}) or "
            "EXIF DateTimeOriginal (within 30 min); needs 3+ groups"
        ),
    )
    make.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.set_defaults(func=run_make_dataset)


def run_looks(args) -> int:
    from styleforge.errors import CLIError
    from styleforge.photo.looks import LOOKS

    if args.apply is None:
        if args.input or args.output:
            raise CLIError("--input/--out need --apply NAME")
        width = max(len(name) for name in LOOKS)
        for look in LOOKS.values():
            print(f"{look.name:<{width}}  {look.description}")
        print(f"{'random-tone-N':<{width}}  a seeded random tone look (channel mix, curves, hue shift, split tone); any N")
        print(f"{'random-local-N':<{width}}  a seeded random look with 1-3 local operators (smoothing, clarity, bloom, "
              "haze, vignette, sharpening); any N")
        return 0
    return _apply(args)


def _apply(args) -> int:
    from PIL import Image

    from styleforge.errors import CLIError
    from styleforge.photo.looks import apply_look, get_look
    from styleforge.runtime.imageio import ImageError, open_image, to_uint8_array

    if args.input is None or args.output is None:
        raise CLIError("--apply needs --input PHOTO and --out FILE")
    try:
        get_look(args.apply)
        loaded = open_image(args.input)
    except (ValueError, ImageError) as err:
        raise CLIError(str(err)) from None
    if args.output.resolve() == args.input.resolve():
        raise CLIError("--out must differ from --input (inputs are never overwritten)")
    result = Image.fromarray(apply_look(args.apply, to_uint8_array(loaded.rgb)))
    from styleforge.atomic import replacing

    fmt = Image.registered_extensions().get(args.output.suffix.lower())
    if fmt is None:
        raise CLIError(f"{args.output}: unknown image suffix {args.output.suffix!r}")
    with replacing(args.output) as tmp:
        result.save(tmp, format=fmt, **({"icc_profile": loaded.icc_profile} if loaded.icc_profile else {}))
    print(args.output)
    return 0


def run_make_dataset(args) -> int:
    import json

    from styleforge.errors import CLIError
    from styleforge.photo.dataset import DatasetError, make_dataset
    from styleforge.runtime.imageio import ImageError, list_images

    photos = None
    if args.photos is not None:
        if not args.photos.is_dir():
            raise CLIError(f"--photos {args.photos} is not a folder")
        photos = list_images(args.photos)
    try:
        out = make_dataset(
            args.look,
            args.out,
            seed=args.seed,
            size=args.size,
            photos=photos,
            photos_dir=args.photos,
            val_groups=args.val_groups,
            force=args.force,
            show_progress=not args.quiet,
        )
    except (DatasetError, ImageError, ValueError) as err:
        raise CLIError(str(err)) from None
    meta = json.loads((out / "dataset.json").read_text())
    split = meta["split"]
    print(f"{out}: look {meta['look']}, seed {meta['seed']}, photos with short side <= {meta['size']}px, "
          f"scene groups by {split['grouping']}")
    for side, info in split["sides"].items():
        if info["photos"]:
            members = "; ".join(f"{g}: {', '.join(files)}" for g, files in info["members"].items())
            print(f"  {side:<11} {info['photos']:>2} photos, {info['groups']} groups ({members})")
    for note in split["notes"]:
        print(f"  note: {note}")
    return 0
