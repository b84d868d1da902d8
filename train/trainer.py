"""``styleforge train``: one GAN or paired run, set up for the engine, then judged and evaluated.

:func:`train` builds the objective of a :class:`~styleforge.train.config.TrainConfig` (the GAN
objectives of :mod:`styleforge.train.objectives`) and the dataset of its mode
(:func:`styleforge.train.data.build_dataset`), runs them through the one training loop
(:func:`styleforge.train.engine.run_loop`), then writes the verdict (``RUN/verdict.json``) and
the held-out evaluation (``RUN/eval.json``) when the data came from ``make-dataset``.

The data stream is what makes resume bit-exact: sample ``k`` of step ``s`` is cut by
``ds.get(i, numpy.random.default_rng([seed, s, slot]))`` with ``slot = rank * local_batch + k``,
so it is a pure function of ``(seed, step)`` and does not depend on the world size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from styleforge.atomic import write_text
from styleforge.photo.verdict import DegenerateModelError, write_verdict
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.runtime.metrics import all_metrics
from styleforge.train import distributed
from styleforge.train.checkpoint import generator_weights_file, latest_checkpoint, list_checkpoints
from styleforge.train.config import AUTO, TrainConfig, config_to_dict, config_to_yaml
from styleforge.train.data import DatasetError, build_dataset
from styleforge.train.engine import (
    Loop,
    TrainError,
    git_commit,
    load_networks,
    prepare_run_dir,
    resolve_device,
    run_loop,
    versions,
)
from styleforge.train.models.colour import ColourGenerator
from styleforge.train.models.recipe import RecipeGenerator
from styleforge.train.objectives import Objective, build_objective
from styleforge.train.recipe_fit import LUT_SIZE as RECIPE_LUT_SIZE
from styleforge.train.recipe_fit import STEPS as RECIPE_STEPS
from styleforge.train.recipe_fit import RecipeFit
from styleforge.train.recipe_run import (
    ADVERSARIAL_STEPS,
    RECIPE_SUBDIR,
    UNPAIRED_STEPS,
    choice_record,
    fit_paired_recipe,
    fit_unpaired_run,
    save_recipe_run,
    say_choice,
    unpaired_choice,
)
from styleforge.train.whole_photo import stylize_array

SAMPLE_KEY = 2**31 - 1  # rng key of the fixed sample-grid batch (never a training step)
AUTO_CANDIDATES = ("colour",)  # model.generator=auto: a recipe with local operators, else this config


# ---------------------------------------------------------------------------------------------
# the data stream (the datasets themselves: styleforge.train.data)


class StepSamples(torch.utils.data.Dataset):
    """Map-style view of the training stream: item ``j`` is sample ``j % local_batch`` of step
    ``first_step + j // local_batch`` for this rank, computed from ``(seed, step, slot)`` only."""

    def __init__(self, dataset, seed: int, first_step: int, last_step: int, local_batch: int, rank: int):
        self.dataset, self.seed, self.first_step = dataset, seed, first_step
        self.local_batch, self.rank = local_batch, rank
        self.length = max(0, last_step - first_step + 1) * local_batch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        step = self.first_step + j // self.local_batch
        slot = self.rank * self.local_batch + j % self.local_batch
        rng = np.random.default_rng([self.seed, step, slot])
        return self.dataset.get(int(rng.integers(len(self.dataset))), rng)


def fixed_batch(dataset, seed: int, count: int) -> dict[str, torch.Tensor]:
    """The same few samples every time (for the sample grids)."""
    items = []
    for slot in range(count):
        rng = np.random.default_rng([seed, SAMPLE_KEY, slot])
        items.append(dataset.get(int(rng.integers(len(dataset))), rng))
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# ---------------------------------------------------------------------------------------------
# run facts


def style_name(config: TrainConfig) -> str:
    """The look in ``dataset.json`` beside the data (written by make-dataset), else a folder name."""
    d = config.data
    data_dir = Path(d.paired_dir or d.content_dir or d.style_dir or ".")
    for candidate in (data_dir.parent / "dataset.json", data_dir / "dataset.json"):
        if candidate.is_file():
            try:
                info = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(info, dict) and (info.get("look") or info.get("style")):
                return str(info.get("look") or info.get("style"))
    style_dir = Path(d.style_dir or d.paired_dir)
    return style_dir.parent.name if style_dir.name in ("style", "B", "paired") else style_dir.name


def test_split(config: TrainConfig) -> Optional[tuple[Path, Path]]:
    """``DATA/test/input`` and ``DATA/test/target`` when the training data came from make-dataset."""
    source = config.data.paired_dir or config.data.content_dir
    if config.mode == "dcgan" or not source:
        return None
    test = Path(source).parent / "test"
    if (test / "input").is_dir() and (test / "target").is_dir():
        return test / "input", test / "target"
    return None


# ---------------------------------------------------------------------------------------------
# evaluation


def evaluate_on_folder(
    generator: nn.Module,
    input_dir: Union[str, Path],
    target_dir: Union[str, Path],
    device="cpu",
    max_images: Optional[int] = None,
) -> dict[str, Any]:
    """Mean PSNR / SSIM / CIEDE2000 of ``generator(input)`` vs ``target`` over matching files.

    Files are matched by stem (``x.jpg`` with ``x.png``). Returns ``{"psnr", "ssim", "delta_e2000",
    "count", "identity": {...}}`` where ``identity`` is the same metrics for the input itself
    against the target (the do-nothing baseline a style model has to beat).
    """

    targets = {p.stem: p for p in list_images(target_dir)}
    pairs = [(p, targets[p.stem]) for p in list_images(input_dir) if p.stem in targets]
    if max_images:
        pairs = pairs[:max_images]
    if not pairs:
        raise TrainError(f"no matching images in {input_dir} and {target_dir}")
    was_training = generator.training
    generator.eval()
    model_rows, identity_rows = [], []
    for input_path, target_path in pairs:
        rgb = to_uint8_array(open_image(input_path).rgb)
        target = to_uint8_array(open_image(target_path).rgb)
        if target.shape != rgb.shape:
            raise TrainError(f"{target_path} is {target.shape[:2]}, {input_path} is {rgb.shape[:2]}")
        model_rows.append(all_metrics(stylize_array(generator, rgb, device), target))
        identity_rows.append(all_metrics(rgb, target))
    generator.train(was_training)

    def mean(rows):
        return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "delta_e2000")}

    return {**mean(model_rows), "count": len(pairs), "identity": mean(identity_rows)}


# ---------------------------------------------------------------------------------------------
# the run


def train(
    config: TrainConfig,
    run_dir: Union[str, Path],
    *,
    resume: bool = False,
    force: bool = False,
    preset: Optional[str] = None,
    show_progress: bool = True,
    candidates: Optional[Mapping[str, TrainConfig]] = None,
) -> dict[str, Any]:
    """Train (or resume) a run into ``run_dir``; returns a summary dict (also on every rank).

    ``config.model.generator == "auto"`` (paired): the run fits the pairs and trains
    ``candidates["colour"]`` or ``candidates["resnet"]`` (see :func:`resolve_auto_generator`);
    the chosen config is the one saved. Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the
    process group and trains with DistributedDataParallel; only rank 0 writes files.
    """
    run_dir = Path(run_dir)
    dist = distributed.init_from_env(config.device)
    try:
        return _train(config, run_dir, dist, resume=resume, force=force, preset=preset,
                      show_progress=show_progress, candidates=candidates)
    finally:
        distributed.cleanup(dist)


def resolve_auto_generator(config: TrainConfig, candidates: Optional[Mapping[str, TrainConfig]],
                           say: bool = True, show_progress: bool = True
                           ) -> tuple[TrainConfig, Optional[dict[str, Any]], Optional[RecipeFit]]:
    """``(config to train, the choice, the recipe)`` for ``model.generator=auto`` (paired): the pairs'
    look recipe is fitted (:func:`styleforge.train.recipe_run.fit_paired_recipe`; at most
    ``config.steps`` steps); when a local operator earns its place on held-out pairs the run ships
    that recipe (returned third), else the look is a colour function and the run trains the colour
    generator's config. The fit's log goes to stderr (``say``). Any other generator:
    ``(config, None, None)``. Pairs that cannot be read train the colour config, whose dataset then
    reports what is wrong with the folder. ``config.steps`` caps the recipe's steps (0, the paired
    colour preset's default, leaves them at the recipe's own count)."""
    if config.model.generator != AUTO:
        return config, None, None
    if config.mode != "paired" or not candidates or set(candidates) != set(AUTO_CANDIDATES):
        raise TrainError("model.generator=auto needs paired mode and the colour config to fall back on "
                         "(styleforge train --paired DIR without --model)")
    try:
        steps = min(config.steps, RECIPE_STEPS) if config.steps > 0 else RECIPE_STEPS
        fit = fit_paired_recipe(Path(config.data.paired_dir), steps=steps,
                                seed=config.seed, show_progress=show_progress)
    except (DatasetError, ValueError):
        return candidates["colour"], None, None
    if say:
        say_choice(fit)
    return candidates["colour"], choice_record(fit), (fit if fit.local_ops else None)


def _train(config, run_dir, dist, *, resume, force, preset, show_progress, candidates):
    device = resolve_device(config.device, dist.local_rank)
    resume_from = prepare_run_dir(run_dir, resume, force)
    if resume_from is not None and _is_recipe_checkpoint(resume_from):  # a recipe run is done once fitted
        return {"run": str(run_dir), "step": 0, "world_size": 1, "seconds": 0.0, "checkpoint": str(resume_from)}
    config, choice, recipe = resolve_auto_generator(config, candidates, show_progress=show_progress)
    if recipe is not None:
        return _recipe_run(config, run_dir, recipe, choice, preset)
    if config.data.batch_size % dist.world_size:
        raise TrainError(f"data.batch_size={config.data.batch_size} is not divisible by the "
                         f"world size {dist.world_size}")
    local_batch = config.data.batch_size // dist.world_size
    distributed.barrier(dist)  # every rank has checked the folder before rank 0 writes to it

    # Networks: the same seed on every rank (DDP also broadcasts rank 0's weights).
    torch.manual_seed(config.seed)
    objective: Objective = build_objective(config)
    resumed = load_networks(objective, resume_from) if resume_from is not None else None
    generator = objective.networks["generator"]
    image_size = config.data.patch_size
    if config.mode == "dcgan":  # the dataset is resized to what the generator draws
        with torch.no_grad():
            image_size = int(generator.eval()(objective.noise(1, None, "cpu")).shape[-1])
        generator.train()
    try:
        dataset = build_dataset(config, image_size)
    except DatasetError as err:
        raise TrainError(str(err)) from None
    if resumed is not None:
        objective.load_extra_state(resumed[2].get("objective", {}))
    objective.prepare(dataset, fresh=resume_from is None)  # e.g. the colour generator's classical init

    def stream(first: int, last: int):
        return torch.utils.data.DataLoader(
            StepSamples(dataset, config.seed, first, last, local_batch, dist.rank),
            batch_size=local_batch, shuffle=False, num_workers=config.data.num_workers,
            pin_memory=device.type == "cuda", drop_last=False, persistent_workers=False,
        )

    if dist.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", config_to_yaml(config))
    sample_batch = fixed_batch(dataset, config.seed, 4 if config.mode != "dcgan" else 1)
    if config.mode == "dcgan":
        sample_batch = {"noise": objective.noise(16, torch.Generator().manual_seed(config.seed), device)}
    log = config.log
    loop = Loop(seed=config.seed, steps=config.steps, log_every=log.log_every, sample_every=log.sample_every,
                checkpoint_every=log.checkpoint_every, keep=log.keep, ema_decay=config.optim.ema_decay,
                grad_clip=config.optim.grad_clip, amp=config.amp, channels_last=config.channels_last,
                compile=config.compile, desc=f"train {config.mode}")
    done = run_loop(objective, loop, run_dir, stream=stream, sample_batch=sample_batch,
                    meta=_meta(config, generator, dist, preset, len(dataset), style_name(config), choice),
                    device=device, dist=dist, resumed=resumed, force=force, show_progress=show_progress)
    step, ema_model = done.step, done.ema_model

    main = dist.rank == 0
    summary: dict[str, Any] = {"run": str(run_dir), "step": step, "world_size": dist.world_size,
                               "seconds": done.seconds}
    verdict = None
    failure: Optional[Exception] = None
    try:  # rank 0 judges, evaluates and writes while the other ranks wait at the barrier below
        if main and done.ran:
            finished = objective.finish(run_dir, ema_model, step)
            if finished is not None:
                verdict = finished.pop("verdict")
                judged = [generator_weights_file(run_dir)] if latest_checkpoint(run_dir) is not None else []
                write_verdict(run_dir, verdict, weights=judged, step=step, **finished)  # bound to the file's sha256
                summary["verdict"] = verdict.to_dict()
        split = test_split(config)
        if main and split is not None and done.ran:
            candidates = [("generator_ema", ema_model), ("generator", generator)]
            if "generator_selected" in objective.networks:
                candidates.insert(0, ("generator_selected", objective.networks["generator_selected"]))
                candidates.append(("generator_init", objective.networks["generator_init"]))
            report = held_out_report(split, step, candidates, device, config.log.eval_max_images)
            write_text(run_dir / "eval.json", json.dumps(report, indent=2))
            summary["eval"] = report
        if main and latest_checkpoint(run_dir) is not None:
            summary["checkpoint"] = str(latest_checkpoint(run_dir))
            summary["checkpoints"] = [p.name for p in list_checkpoints(run_dir)]
        if verdict is not None and not verdict.ok:
            raise DegenerateModelError(verdict, where=f"{run_dir} (step {step})")
        if main and done.ran and _wants_unpaired_recipe(config, generator):
            shipped = objective.networks.get("generator_selected", ema_model)
            summary["recipe"] = _unpaired_recipe_run(config, run_dir, shipped, preset, show_progress)
    except Exception as exc:  # re-raised after the barrier
        failure = exc
    # No rank leaves (and destroys the process group) while rank 0 still works: a rank that left
    # early was aborted by gloo at exit ("terminate called without an active exception").
    distributed.barrier(dist)
    if failure is not None:
        raise failure
    return summary


def _wants_unpaired_recipe(config: TrainConfig, generator: nn.Module) -> bool:
    return (config.mode == "unpaired" and config.model.colour.recipe == "auto"
            and isinstance(generator, ColourGenerator))


def _unpaired_recipe_run(config: TrainConfig, run_dir: Path, colour_model: nn.Module, preset,
                         show_progress: bool) -> dict[str, Any]:
    """``model.colour.recipe=auto``: the look recipe of the run's folders around the shipped colour
    generator; written as the run ``RUN/recipe`` (what ``export RUN`` then ships) when a local
    operator earns its place, else the colour generator stays the run's look. Returns the choice."""
    fit = fit_unpaired_run(Path(config.data.content_dir), Path(config.data.style_dir), colour_model.eval(),
                           seed=config.seed, steps=max(1, min(config.steps, UNPAIRED_STEPS)),
                           adversarial_steps=max(1, min(config.steps, ADVERSARIAL_STEPS)), show_progress=show_progress)
    for line in fit.log:
        print(f"unpaired: {line}", file=sys.stderr)
    choice = unpaired_choice(fit)
    write_text(run_dir / "recipe_choice.json", json.dumps(choice, indent=2) + "\n")
    if not fit.local_ops:
        print("unpaired: the look is a colour function: the colour generator is the run's look", file=sys.stderr)
        return choice
    recipe_dir = run_dir / RECIPE_SUBDIR
    generator = RecipeGenerator.from_steps(fit.steps, lut_size=RECIPE_LUT_SIZE, seed=config.seed)
    meta = _meta(config, generator, distributed.DistInfo(), preset, len(fit.content), style_name(config))
    meta["mode"] = "unpaired-recipe"
    meta["run"]["unpaired_choice"] = {k: v for k, v in choice.items() if k != "log"}
    save_recipe_run(generator, recipe_dir, meta, config_to_yaml(config))
    split = test_split(config)
    if split is not None:
        report = held_out_report(split, 0, [("generator", generator)], "cpu", config.log.eval_max_images)
        write_text(recipe_dir / "eval.json", json.dumps(report, indent=2))
    print(f"unpaired: the look recipe ({' -> '.join(op for op, _ in fit.steps)}) is in {recipe_dir}; "
          f"styleforge export {run_dir} ships it", file=sys.stderr)
    return {**choice, "run": str(recipe_dir)}


def held_out_report(split: tuple[Path, Path], step: int, candidates: list[tuple[str, nn.Module]], device,
                    max_images: Optional[int]) -> dict[str, Any]:
    """``RUN/eval.json``: each ``(name, model)`` of ``candidates`` scored on the held-out ``split``
    (:func:`evaluate_on_folder`); the first is the product (what ``load_generator(run)`` returns),
    whose figures and identity baseline are repeated at the top."""
    report: dict[str, Any] = {"step": step, "input_dir": str(split[0]), "target_dir": str(split[1])}
    for name, model in candidates:
        report[name] = evaluate_on_folder(model, *split, device=device, max_images=max_images)
    product = candidates[0][0]
    report.update({k: report[product][k] for k in ("psnr", "ssim", "delta_e2000", "identity")})
    report["product"] = product
    return report


def _recipe_run(config: TrainConfig, run_dir: Path, fit: RecipeFit, choice: dict[str, Any], preset) -> dict[str, Any]:
    """The run of a paired look recipe: its checkpoint, config and held-out evaluation (no GAN)."""
    generator = RecipeGenerator.from_steps(fit.steps, lut_size=RECIPE_LUT_SIZE, seed=config.seed)
    meta = _meta(config, generator, distributed.DistInfo(), preset, fit.pairs, style_name(config), choice)
    meta["mode"] = "paired-recipe"
    summary = save_recipe_run(generator, run_dir, meta, config_to_yaml(config))
    split = test_split(config)
    if split is not None:
        summary["eval"] = held_out_report(split, 0, [("generator", generator)], "cpu", config.log.eval_max_images)
        write_text(run_dir / "eval.json", json.dumps(summary["eval"], indent=2))
    return summary


def _is_recipe_checkpoint(checkpoint: Path) -> bool:
    try:
        meta = json.loads((Path(checkpoint) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("generator", {}).get("arch") == RecipeGenerator.arch_name


def _meta(config: TrainConfig, generator: nn.Module, dist, preset, dataset_size: int, style: str,
          choice: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    meta = {
        "mode": config.mode,
        # build_generator(arch, **config) rebuilds it (the registry's contract)
        "generator": {"arch": generator.arch_name, "config": dict(generator.config)},
        "style": style,
        "input_range": [-1.0, 1.0],
        "config": config_to_dict(config),
        "run": {
            "mode": config.mode,
            "preset": preset,
            "seed": config.seed,
            "steps": config.steps,
            "content_dir": config.data.content_dir,
            "style_dir": config.data.style_dir,
            "paired_dir": config.data.paired_dir,
            "dataset_size": dataset_size,
            "world_size": dist.world_size,
            "git_commit": git_commit(),
            "versions": versions(),
        },
    }
    if choice is not None:  # model.generator=auto: what the run chose, and why
        meta["run"]["paired_choice"] = choice
    return meta
