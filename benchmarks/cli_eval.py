"""``styleforge eval-looks``: the style-fidelity benchmark (argparse only; heavy imports inside).

Its config is an :class:`EvalLooksConfig`, resolved like ``train``'s and ``distill``'s
(:func:`styleforge.train.config.resolve_config`: preset, ``--config`` YAML, ``--set``, then the
shortcut flags; ``--dry-run`` prints it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from styleforge.photo.looks import LOOKS, get_look
from styleforge.train.config import PRESET_NAMES, add_config_arguments

STUDENT_SIZES = ("nano", "small", "medium")


def _is_look(name: str) -> bool:
    """A built-in look or a random one (``random-tone-N``, ``random-local-N``)."""
    try:
        get_look(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EvalLooksConfig:
    """What ``eval-looks`` runs (saved as ``OUT/config.yaml`` under ``eval_looks:``)."""

    looks: tuple[str, ...] = ("film-warm", "noir", "teal-orange", "sky-teal", "bleach-bypass", "glow", "toon")
    train_preset: str = "cpu"           # the train and distill preset of every stage: tiny | cpu | gpu
    student: str = "small"              # student size preset: nano | small | medium
    export_size: int = 256              # square export size in pixels
    steps: int = 0                      # training steps of every train/distill stage; 0: the preset's
    paired: bool = True                 # also train the paired teachers (on the full splits)
    seed: int = 0                       # training seed, and the scene-split seed by default
    split_seeds: tuple[int, ...] = ()   # repeat every look on these scene splits (empty: the seed's)
    full_splits: int = 1                # ResNet, student, export and paired teachers on the first N splits only
    train_set: tuple[str, ...] = ()     # KEY=VALUE overrides of the colour generator's training config
    per_side: tuple[int, ...] = ()      # learning curve: photos per side (empty: the album benchmark)
    photos: str = ""                    # learning curve: photo folder (empty: the corpus that ships)
    recipes: bool = True                # learning curve: also the look-recipe columns (paired, unpaired)

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (len(self.looks) >= 1, "looks is empty"),
            (not (unknown := [n for n in self.looks if not _is_look(n)]),
             f"unknown look(s) {', '.join(unknown)}; choose from {', '.join(LOOKS)}, random-tone-N or random-local-N"),
            (self.train_preset in PRESET_NAMES, f"train_preset must be one of {', '.join(PRESET_NAMES)}"),
            (self.student in STUDENT_SIZES, f"student must be one of {', '.join(STUDENT_SIZES)}"),
            (self.export_size >= 16, "export_size must be >= 16"),
            (self.steps >= 0 and self.full_splits >= 0, "steps and full_splits must be >= 0"),
            (all("=" in kv for kv in self.train_set), "train_set entries must be KEY=VALUE"),
            (all(n >= 2 for n in self.per_side), "per_side sizes must be >= 2"),
        ]


# What a stage's outputs depend on: an OUT folder holds one value of each (the looks and splits
# it covers may grow from run to run).
STAGE_SETTINGS = ("train_preset", "student", "export_size", "steps", "seed", "train_set", "photos", "recipes")


# ``--preset X`` runs every stage with the train/distill preset X.
EVAL_LOOKS_PRESETS = {name: EvalLooksConfig(train_preset=name) for name in PRESET_NAMES}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-looks",
        help="train/distill/export each built-in look and score it against ground truth",
        description=(
            "For each look and scene split of the shipped photo album: train the unpaired colour "
            "generator and score PSNR/SSIM/CIEDE2000 on held-out scene groups against the look's "
            "ground truth, beside identity and seven classical transfers (Reinhard and histogram "
            "matching per photo and set to set, MKL, sliced OT, levels); on the first --full-splits "
            "splits also the unpaired ResNet, the student distilled from the colour generator and its "
            "int8 TFLite export, and two paired teachers (the pix2pix ResNet, and the generator "
            "train --paired picks by default). "
            "Reports mean ± sd over the splits, model-selection and degeneracy-check statistics. "
            "Stages are resumable: rerunning reuses finished ones."
        ),
    )
    add_config_arguments(p, example="steps=600", section="eval_looks",
                         preset_help="starting config, and the train and distill preset of every stage "
                                     "(default: cpu)")
    p.add_argument("--looks", help="comma-separated look names (default: all seven built-in looks)")
    p.add_argument("--student", choices=STUDENT_SIZES, help="student size preset (default: small)")
    p.add_argument("--export-size", type=int, help="square export size in pixels (default: 256)")
    p.add_argument("--steps", type=int, help="override the preset's training steps")
    p.add_argument("--no-paired", dest="paired", action="store_false", default=None,
                   help="skip the paired-training runs per look")
    p.add_argument("--seed", type=int, help="training seed, and the scene-split seed by default (default: 0)")
    p.add_argument(
        "--split-seeds", metavar="0,1,2",
        help="repeat every look on these scene splits of the album and report mean ± sd over them",
    )
    p.add_argument("--full-splits", type=int, metavar="N",
                   help="run the ResNet, student, export and paired teachers on the first N splits only "
                        "(default 1; the colour generator and classical baselines run on every split)")
    p.add_argument("--train-set", action="append", metavar="KEY=VALUE",
                   help="override one value of the colour generator's training config, e.g. "
                        "--train-set loss.gan=rahinge (repeatable; checked before anything runs)")
    p.add_argument(
        "--per-side", metavar="7,20,60",
        help="learning curve instead of the album benchmark: for each size, content and style of that many "
             "photos from distinct scene groups of --photos, tested on the album's portraits, every "
             "classical transfer and the paired ceiling as columns, mean ± sd over --split-seeds "
             "(default 0,1,2); writes OUT/curve.md, curve.json and curve.png",
    )
    p.add_argument("--no-recipes", dest="recipes", action="store_false", default=None,
                   help="learning curve: leave out the look-recipe columns (the paired recipe and the "
                        "unpaired recipe's two; about 3x faster a cell, for tone looks)")
    p.add_argument("--photos", type=Path,
                   help="learning curve: photo folder (default: the corpus that ships with styleforge; "
                        "scene groups from groups.json or EXIF time)")
    p.add_argument("--out", type=Path, default=Path("evals/looks"),
                   help="output folder; rerunning into it reuses finished stages, so it must hold "
                        "runs with the same preset, student, export size, steps, seed and --train-set")
    p.set_defaults(func=run)


def resolve(args) -> EvalLooksConfig:
    """The preset, --config (keys at the top level or under ``eval_looks:``), --set, then the flags."""
    from styleforge.train.config import ConfigError, preset, preset_config, resolve_config

    flags = {"looks": args.looks, "student": args.student, "export_size": args.export_size, "steps": args.steps,
             "paired": args.paired, "seed": args.seed, "split_seeds": args.split_seeds,
             "full_splits": args.full_splits, "train_set": args.train_set, "per_side": args.per_side,
             "recipes": args.recipes, "photos": str(args.photos) if args.photos is not None else None}
    shortcuts = {k: v for k, v in flags.items() if v is not None}
    cfg = resolve_config(preset(EVAL_LOOKS_PRESETS, args.preset), args.config, args.overrides, shortcuts,
                         section="eval_looks")
    # Fail now, not after an hour of other stages: the overrides must fit the colour training config.
    try:
        resolve_config(preset_config(cfg.train_preset), overrides=cfg.train_set)
    except ConfigError as err:
        raise ConfigError(f"--train-set: {err}") from None
    return cfg


def check_out_folder(out: Path, cfg: EvalLooksConfig) -> None:
    """Refuse an OUT folder whose finished stages were run with other :data:`STAGE_SETTINGS`
    (reusing them would mix two settings in one table)."""
    from styleforge.errors import CLIError
    from styleforge.train.config import config_from_dict, read_yaml

    saved = out / "config.yaml"
    if not saved.is_file() or not (any(out.glob("*/split-*/.stages")) or any(out.glob("*/n-*/split-*/.stages"))):
        return
    data = read_yaml(saved)
    before = config_from_dict(data.get("eval_looks", data), base=EvalLooksConfig())
    changed = [f"{name}: {getattr(before, name)!r} there, {getattr(cfg, name)!r} now"
               for name in STAGE_SETTINGS if getattr(before, name) != getattr(cfg, name)]
    if changed:
        raise CLIError(f"{out} holds eval-looks runs made with other settings ({'; '.join(changed)}); "
                       "its finished stages would be reused: choose another --out")


def run(args) -> int:
    from styleforge.atomic import write_text
    from styleforge.benchmarks.stages import StageError
    from styleforge.errors import CLIError
    from styleforge.train.config import config_to_yaml

    cfg = resolve(args)
    if args.dry_run:
        print(config_to_yaml(cfg, section="eval_looks", context={"out": str(args.out)}), end="")
        return 0

    from styleforge.benchmarks.eval_looks import run_all
    from styleforge.benchmarks.learning_curve import run_curve

    check_out_folder(args.out, cfg)
    write_text(args.out / "config.yaml", config_to_yaml(cfg, section="eval_looks"))
    if cfg.per_side:
        try:
            run_curve(list(cfg.looks), args.out, list(cfg.per_side), list(cfg.split_seeds) or [0, 1, 2],
                      Path(cfg.photos) if cfg.photos else None, cfg.train_preset, cfg.steps or None,
                      list(cfg.train_set), cfg.recipes)
        except (StageError, ValueError) as err:
            raise CLIError(str(err)) from None
        print((args.out / "curve.md").read_text())
        print(f"learning curve: {args.out / 'curve.md'}, {args.out / 'curve.png'}")
        return 0
    report = run_all(
        list(cfg.looks), args.out, cfg.train_preset, cfg.student, cfg.export_size, cfg.steps or None,
        cfg.paired, cfg.seed, split_seeds=list(cfg.split_seeds) or None, full_splits=cfg.full_splits,
        train_set=list(cfg.train_set),
    )
    print((args.out / "results.md").read_text())
    print(f"results: {args.out / 'results.json'} ({report['wall_seconds'] / 60:.1f} min)")
    return 0
