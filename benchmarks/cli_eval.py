"""``styleforge eval-looks``: the style-fidelity benchmark (argparse only; heavy imports inside)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-looks",
        help="train/distill/export each built-in look and score it against ground truth",
        description=(
            "For each look and scene split of the shipped photo album: train the unpaired colour "
            "generator and score PSNR/SSIM/CIEDE2000 on held-out scene groups against the look's "
            "ground truth, beside identity and six classical transfers (Reinhard, histogram matching, "
            "MKL, sliced OT); on the first --full-splits splits also the unpaired ResNet, the student "
            "distilled from the colour generator and its int8 TFLite export, and a paired teacher. "
            "Reports mean ± sd over the splits, model-selection and degeneracy-check statistics. "
            "Stages are resumable: rerunning reuses finished ones."
        ),
    )
    p.add_argument("--looks", default="film-warm,noir,teal-orange,sky-teal,bleach-bypass,glow,toon",
                   help="comma-separated look names")
    p.add_argument("--preset", default="cpu", help="training preset for teacher and student (tiny|cpu|gpu)")
    p.add_argument("--student", default="small", help="student size preset (nano|small|medium)")
    p.add_argument("--export-size", type=int, default=256, help="square export size in pixels")
    p.add_argument("--steps", type=int, default=None, help="override the preset's training steps")
    p.add_argument("--no-paired", action="store_true", help="skip the paired-training run per look")
    p.add_argument("--seed", type=int, default=0, help="training seed, and the scene-split seed by default")
    p.add_argument(
        "--split-seeds", default=None, metavar="0,1,2",
        help="repeat every look on these scene splits of the album and report mean ± sd over them",
    )
    p.add_argument("--full-splits", type=int, default=1, metavar="N",
                   help="run the ResNet, student, export and paired teacher on the first N splits only "
                        "(default 1; the colour generator and classical baselines run on every split)")
    p.add_argument("--out", type=Path, default=Path("evals/looks"), help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from styleforge.benchmarks.eval_looks import run_all
    from styleforge.errors import CLIError
    from styleforge.stages import StageError

    looks = [name.strip() for name in args.looks.split(",") if name.strip()]
    if not looks:
        raise CLIError("--looks is empty")
    try:
        split_seeds = [int(s) for s in args.split_seeds.split(",") if s.strip()] if args.split_seeds else None
    except ValueError:
        raise CLIError(f"--split-seeds takes comma-separated integers, got {args.split_seeds!r}") from None
    try:
        report = run_all(
            looks, args.out, args.preset, args.student, args.export_size, args.steps,
            not args.no_paired, args.seed, split_seeds=split_seeds, full_splits=args.full_splits,
        )
    except StageError as err:
        raise CLIError(str(err)) from None
    print((args.out / "results.md").read_text())
    print(f"results: {args.out / 'results.json'} ({report['wall_seconds'] / 60:.1f} min)")
    return 0
