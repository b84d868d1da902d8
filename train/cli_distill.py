"""``styleforge distill``: teach a mobile student a teacher's look (argparse only; torch is imported in run).

Its config is resolved like ``train``'s and ``eval-looks``' (:func:`styleforge.train.config.resolve_config`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.train.config import add_config_arguments


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
    p = subparsers.add_parser(
        "distill",
        help="distill a teacher generator into a tiny mobile student",
        description=(
            "The teacher labels your photos on the fly; a MobileGenerator student learns to match it "
            "(L1 + SSIM + GAN-Compression feature loss through 1x1 adapters, optional PatchGAN). "
            "Writes a run folder like `styleforge train` (checkpoints, log.jsonl, loss.png, samples/) "
            "and RUN/report.json: params/MACs at 512x512 and student-vs-teacher PSNR/SSIM/CIEDE2000 "
            "on held-out photos."
        ),
    )
    p.add_argument("--teacher", help="styleforge run/checkpoint/.safetensors, a TorchScript file, or module:factory "
                   "(file.py:factory works too); on --resume defaults to the run's teacher")
    p.add_argument("--teacher-weights", type=Path, help="weights for a module:factory teacher (.safetensors, .pt, .pth)")
    p.add_argument("--teacher-range", default=None,
                   help="value range of the teacher's input and output: -1,1 (default) or 0,1")
    p.add_argument("--content", type=Path, help="folder of photos to distill on (on --resume defaults to the run's)")
    p.add_argument("--out", type=Path, required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--student", choices=("nano", "small", "medium", "lut"),
                   help="MobileGenerator preset (default: preset's), or lut: fit curves + matrix + 3D LUT "
                        "to the teacher and report how much of its look is a colour function")
    add_config_arguments(p, example="feature_weight=0.5", section="distill")
    p.add_argument("--steps", type=int, help="training steps (--student lut: the fit's, lut.steps)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate (--student lut: lut.lr)")
    p.add_argument("--seed", type=int, help="random seed (data order, init)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 is often fastest "
                   "on a busy machine, where OpenMP threads wait on each other)")
    p.add_argument("--heldout", type=Path, help="held-out photos for the report (default: the dataset's test/input, "
                   "else the album's scene groups not trained on)")
    p.add_argument("--resume", action="store_true", help="continue the newest checkpoint of --out")
    p.add_argument("--stop-at", type=int, help="stop after this step (leaving a checkpoint to --resume)")
    p.add_argument("--force", action="store_true", help="start over in a run folder that has checkpoints")
    p.add_argument("--allow-degenerate", action="store_true",
                   help="distill a teacher that failed the degeneracy checks (collapse, lost structure, "
                        "does nothing) anyway; by default it is refused")
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_distill)


def _resolve(args: argparse.Namespace):
    """The preset (or, on --resume, the run's saved config), --config, --set, then the shortcut flags."""
    from styleforge.train.config import DISTILL_PRESETS, preset, resolve_config
    from styleforge.train.distill import read_run_config

    saved = read_run_config(args.out) if args.resume else None
    base = saved if saved is not None else preset(DISTILL_PRESETS, args.preset)
    lut = args.student == "lut" or (args.student is None and base.student == "lut")
    flags = dict(student=args.student, seed=args.seed, device=args.device)
    if lut:  # --steps and --lr set the LUT fit's
        flags["lut"] = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v is not None}
    else:
        flags.update(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr)
    shortcuts = {k: v for k, v in flags.items() if v is not None and v != {}}
    return resolve_config(base, args.config, args.overrides, shortcuts, section="distill")


def _saved_teacher(out: Path) -> dict:
    """Teacher and content folder recorded in a run's newest checkpoint (for --resume)."""
    from styleforge.train.checkpoint import latest_checkpoint, load_checkpoint

    checkpoint = latest_checkpoint(out)
    if checkpoint is None:
        return {}
    run = load_checkpoint(checkpoint)[1].get("run", {})
    return {**(run.get("teacher") or {}), "content_dir": run.get("content_dir")}


def _check_teacher(teacher, spec, content: Path, args: argparse.Namespace):
    """The teacher's stored verdict, or one measured on the content photos; refuses a degenerate one."""
    from styleforge.runtime.imageio import list_images
    from styleforge.train.degeneracy import check_generator

    run = Path(spec) if ":" not in str(spec) or Path(spec).exists() else None
    return check_generator(teacher, list_images(content), run=run, weights_file=_weights_file(run),
                           allow=args.allow_degenerate, where=f"teacher {spec}")


def _weights_file(run):
    """The weights file a styleforge run/checkpoint teacher (or the student in ``run``) was loaded
    from; the file itself for a TorchScript teacher; None when there is none."""
    from styleforge.train.checkpoint import CheckpointError, generator_weights_file

    if run is None or not Path(run).exists():
        return None
    if Path(run).is_file():
        return Path(run)
    try:
        return generator_weights_file(run)
    except CheckpointError:
        return None


def _write_student_verdict(out: Path, verdict, spec) -> None:
    """The teacher's verdict, copied into the student's run and bound to the student's weights."""
    from styleforge.photo.verdict import write_verdict

    student = _weights_file(out)
    write_verdict(out, verdict, weights=[student] if student else [],
                  source=f"teacher {spec} (the student copies it)")


def _run_lut_student(args: argparse.Namespace, cfg) -> int:
    """``--student lut``: one pass, no checkpoints to resume (it takes seconds to a minute)."""
    from styleforge.errors import CLIError
    from styleforge.photo.verdict import DegenerateModelError
    from styleforge.runtime.lut import COLOUR_AGREEMENT_DB
    from styleforge.train.lut_student import fit_lut_student
    from styleforge.train.teachers import TeacherError, load_teacher

    if args.resume or not args.teacher or args.content is None:
        raise CLIError("--student lut needs --teacher and --content (and does not --resume: rerun it)")
    if not args.content.is_dir():
        raise CLIError(f"{args.content}: no such content folder")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise CLIError(f"{args.out} exists and is not empty (use --force to replace it)")
    try:
        teacher, teacher_info = load_teacher(args.teacher, args.teacher_weights, args.teacher_range or "-1,1")
        verdict = _check_teacher(teacher, args.teacher, args.content, args)
        report = fit_lut_student(teacher, teacher_info, args.content, args.out, cfg, heldout=args.heldout,
                                 show_progress=not args.quiet)
    except (TeacherError, DegenerateModelError, ValueError) as err:
        raise CLIError(str(err)) from None
    _write_student_verdict(args.out, verdict, args.teacher)
    share = report["colour_function_share_db"]
    print(f"LUT student vs teacher on {report['heldout']['images']} held-out photos: {share:.2f} dB PSNR "
          f"(SSIM {report['heldout'].get('ssim', float('nan')):.4f})")
    if share >= COLOUR_AGREEMENT_DB:
        print(f"the look is a colour function: ship it as a .cube with "
              f"`styleforge export {args.out} --formats cube`")
    else:
        print(f"below {COLOUR_AGREEMENT_DB:g} dB the teacher's look is not a colour function (local effects): "
              "distill a conv student (--student small) for it")
    print(f"report: {args.out / 'report.json'}")
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from styleforge.errors import CLIError
    from styleforge.train.config import config_to_yaml
    from styleforge.train.distill import run_distillation
    from styleforge.train.distill_report import format_report

    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {args.out} is a file, not a run folder")
    from styleforge.train.teachers import load_teacher

    cfg = _resolve(args)
    saved = _saved_teacher(args.out) if args.resume else {}
    teacher_spec = args.teacher or saved.get("spec")
    weights = args.teacher_weights or (saved.get("weights") if not args.teacher else None)
    value_range = args.teacher_range or (",".join(str(v) for v in saved["input_range"])
                                         if saved.get("input_range") and not args.teacher else "-1,1")
    content = args.content or (Path(saved["content_dir"]) if saved.get("content_dir") else None)
    if not teacher_spec or content is None:
        raise CLIError("--teacher and --content are required (on --resume they default to the run's own)")
    if args.dry_run:
        context = {"teacher": str(teacher_spec), "teacher_weights": str(weights) if weights else None,
                   "teacher_range": value_range, "content": str(content), "out": str(args.out)}
        print(config_to_yaml(cfg, section="distill", context=context), end="")
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if cfg.student == "lut":
        return _run_lut_student(args, cfg)
    if not Path(content).is_dir():
        raise CLIError(f"{content}: no such content folder")
    if args.heldout is not None and not args.heldout.is_dir():
        raise CLIError(f"{args.heldout}: no such held-out folder")
    teacher, teacher_info = load_teacher(teacher_spec, weights, value_range)
    verdict = _check_teacher(teacher, teacher_spec, content, args)
    report = run_distillation(teacher, teacher_info, content, args.out, cfg, resume=args.resume, force=args.force,
                              stop_at=args.stop_at, heldout=args.heldout, show_progress=not args.quiet)
    _write_student_verdict(args.out, verdict, teacher_spec)
    if report is None:
        print(f"stopped at step {args.stop_at}; continue with: styleforge distill --out {args.out} --resume")
        return 0
    print(format_report(report))
    print(f"report: {args.out / 'report.json'}")
    return 0
