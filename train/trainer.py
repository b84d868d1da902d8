"""The training engine: one loop (:func:`run_loop`) for every objective, and ``styleforge train``.

:func:`run_loop` drives any :class:`~styleforge.train.gan_steps.BaseObjective` (the GAN
objectives of ``gan_steps`` and ``colour_objective``, and distillation's ``DistillObjective``):
devices, AMP, DDP, EMA, the learning-rate schedule the objective states, logging, samples,
atomic checkpoints and resume. :func:`train` builds a GAN objective, its dataset and stream,
runs the loop, then evaluates; ``distill.run_distillation`` does the same for a student.

Determinism is the design constraint. Nothing in the loop uses an RNG whose state lives only in
memory: sample ``k`` of step ``s`` is cut by ``ds.get(i, numpy.random.default_rng([seed, s,
slot]))`` with ``slot = rank * local_batch + k`` (so the data stream does not depend on the
world size), the torch RNG is re-seeded from ``(seed, step, rank)`` before every step (dropout,
gradient-penalty mixing, DCGAN noise), and checkpoints hold weights, EMA weights and optimiser
state. A run stopped at step N and resumed therefore reaches step 2N with the same weights, bit
for bit on the CPU, as a run that was never stopped.
"""

from __future__ import annotations

import copy
import json
import platform
import shutil
import subprocess
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
import torch
from torch import nn

from styleforge.atomic import write_text
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.train import distributed
from styleforge.train.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from styleforge.train.config import TrainConfig, config_from_dict, config_to_dict, config_to_yaml
from styleforge.train.gan_steps import Objective, build_objective
from styleforge.train.runlog import RunLogger, plot_losses, save_image_grid
from styleforge.train.tensors import image_to_tensor, tensor_to_image
from styleforge.verdict import DegenerateModelError, write_verdict

SAMPLE_KEY = 2**31 - 1  # rng key of the fixed sample-grid batch (never a training step)


class TrainError(ValueError):
    """A user error detected before training starts (bad folders, occupied run folder...)."""


# ---------------------------------------------------------------------------------------------
# data


class StyleFolderDataset:
    """Whole images of one folder, centre-cropped square and resized to ``size`` (dcgan mode).

    ``get(i, rng) -> {"style": Tensor[3, size, size]}`` in ``[-1, 1]``, randomly mirrored.
    """

    def __init__(self, folder: Union[str, Path], size: int = 64):
        from PIL import Image

        folder = Path(folder)
        if not folder.is_dir():
            raise TrainError(f"style folder not found: {folder}")
        self.skipped: list[tuple[Path, str]] = []
        self.images: list[np.ndarray] = []
        for path in list_images(folder):
            try:
                img = open_image(path).rgb
            except ValueError as err:
                self.skipped.append((path, str(err)))
                continue
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
            self.images.append(np.asarray(img))
        if not self.images:
            raise TrainError(f"no readable images in {folder}")

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        rgb = self.images[i]
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        return {"style": image_to_tensor(np.ascontiguousarray(rgb))}


def build_dataset(config: TrainConfig, image_size: Optional[int] = None):
    """The dataset of a mode (H1's data module for the image-to-image modes)."""
    d = config.data
    if config.mode == "dcgan":
        if not d.style_dir:
            raise TrainError("dcgan mode needs --style DIR")
        return StyleFolderDataset(d.style_dir, image_size or d.patch_size)
    from styleforge.train.data import DatasetError, PairedDataset, UnpairedDataset

    try:
        if config.mode == "paired":
            if not d.paired_dir:
                raise TrainError("paired mode needs --paired DIR (a folder with A/ and B/)")
            return PairedDataset(d.paired_dir, patch_size=d.patch_size)
        if not d.content_dir or not d.style_dir:
            raise TrainError("unpaired mode needs --content DIR and --style DIR")
        return UnpairedDataset(d.content_dir, d.style_dir, patch_size=d.patch_size)
    except DatasetError as err:
        raise TrainError(str(err)) from None


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


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


# ---------------------------------------------------------------------------------------------
# EMA, devices, provenance


class EMA:
    """Exponential moving average of a module's weights (buffers are copied).

    The decay warms up as ``min(decay, (1 + t) / (10 + t))`` so short runs are not dominated by
    the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda was asked for but CUDA is not available")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


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


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return nn.functional.pad(x, (0, pw, 0, ph), mode=mode)


def pad_multiple(generator: nn.Module) -> int:
    """The size multiple a generator needs: its ``stride``, a wrapped teacher's (``.inner``), else 16."""
    for module in (generator, getattr(generator, "inner", None)):
        if module is not None and hasattr(module, "stride"):
            return int(module.stride)
    return 16


@torch.no_grad()
def stylize_array(generator: nn.Module, rgb: np.ndarray, device="cpu") -> np.ndarray:
    """Run an image generator on a uint8 ``[H, W, 3]`` array; returns uint8 ``[H, W, 3]``.

    The photo is padded to :func:`pad_multiple` (reflected) and cropped back, so any size works.
    """
    x = image_to_tensor(np.asarray(rgb, dtype=np.uint8))[None]  # [1,3,H,W] in [-1, 1]
    h, w = x.shape[-2:]
    y = generator(_pad_to_multiple(x.to(device), pad_multiple(generator)))[..., :h, :w]
    return tensor_to_image(y[0])


def evaluate_on_folder(
    generator: nn.Module,
    input_dir: Union[str, Path],
    target_dir: Union[str, Path],
    device="cpu",
    max_images: Optional[int] = None,
) -> dict[str, Any]:
    """Mean PSNR / SSIM / CIEDE2000 of ``generator(input)`` vs ``target`` over matching files.

    Files are matched by name (then by stem). Returns ``{"psnr", "ssim", "delta_e2000",
    "count", "identity": {...}}`` where ``identity`` is the same metrics for the input itself
    against the target (the do-nothing baseline a style model has to beat).
    """
    from styleforge.runtime.metrics import all_metrics

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
# the loop


def _amp(device: torch.device, enabled: bool):
    """(autocast factory, GradScaler or None): bf16 where supported, else fp16 with a scaler."""
    if device.type != "cuda" or not enabled:
        return nullcontext, None
    if torch.cuda.is_bf16_supported():
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> Optional[Path]:
    """Check the run folder; return the checkpoint to resume from (or None for a fresh run)."""
    existing = latest_checkpoint(run_dir)
    if resume:
        if existing is None:
            raise TrainError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
        return existing
    if existing is not None and not force:
        raise TrainError(
            f"{run_dir} already holds checkpoints (newest {existing.name}); "
            "pass --resume to continue it or --force to start over"
        )
    return None


def train(
    config: TrainConfig,
    run_dir: Union[str, Path],
    *,
    resume: bool = False,
    force: bool = False,
    preset: Optional[str] = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a run into ``run_dir``; returns a summary dict (also on every rank).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the process group and trains with
    DistributedDataParallel; only rank 0 writes files.
    """
    run_dir = Path(run_dir)
    dist = distributed.init_from_env(config.device)
    try:
        return _train(config, run_dir, dist, resume=resume, force=force, preset=preset,
                      show_progress=show_progress)
    finally:
        distributed.cleanup(dist)


def _train(config, run_dir, dist, *, resume, force, preset, show_progress):
    device = resolve_device(config.device, dist.local_rank)
    resume_from = prepare_run_dir(run_dir, resume, force)
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
    dataset = build_dataset(config, image_size)
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
                amp=config.amp, channels_last=config.channels_last, compile=config.compile,
                desc=f"train {config.mode}")
    done = run_loop(objective, loop, run_dir, stream=stream, sample_batch=sample_batch,
                    meta=_meta(config, generator, dist, preset, dataset, style_name(config)),
                    device=device, dist=dist, resumed=resumed, force=force, show_progress=show_progress)
    step, start, ema_model = done.step, done.start, done.ema_model

    main = dist.rank == 0
    summary: dict[str, Any] = {"run": str(run_dir), "step": step, "world_size": dist.world_size,
                               "seconds": done.seconds}
    verdict = None
    if main and start <= config.steps:
        finished = objective.finish(run_dir, ema_model, step)
        if finished is not None:
            verdict = finished.pop("verdict")
            write_verdict(run_dir, verdict, step=step, **finished)
            summary["verdict"] = verdict.to_dict()
    split = test_split(config)
    if main and split is not None and start <= config.steps:
        report = {"step": step, "input_dir": str(split[0]), "target_dir": str(split[1])}
        candidates = [("generator_ema", ema_model), ("generator", generator)]
        if "generator_selected" in objective.networks:
            candidates.insert(0, ("generator_selected", objective.networks["generator_selected"]))
            candidates.append(("generator_init", objective.networks["generator_init"]))
        for name, model in candidates:
            report[name] = evaluate_on_folder(model, *split, device=device,
                                              max_images=config.log.eval_max_images)
        product = candidates[0][0]  # what load_generator(run) returns
        report.update({k: report[product][k] for k in ("psnr", "ssim", "delta_e2000")})
        report["identity"] = report[product]["identity"]
        report["product"] = product
        write_text(run_dir / "eval.json", json.dumps(report, indent=2))
        summary["eval"] = report
    if main and latest_checkpoint(run_dir) is not None:
        summary["checkpoint"] = str(latest_checkpoint(run_dir))
        summary["checkpoints"] = [p.name for p in list_checkpoints(run_dir)]
    if verdict is not None and not verdict.ok:
        raise DegenerateModelError(verdict, where=f"{run_dir} (step {step})")
    return summary


# ---------------------------------------------------------------------------------------------
# the engine: one loop for every objective (GAN training and distillation)


@dataclass(frozen=True)
class Loop:
    """How :func:`run_loop` drives an objective; everything else comes from the objective."""

    seed: int
    steps: int                      # the run's last step (steps count from 1)
    log_every: int
    sample_every: int
    checkpoint_every: int
    keep: int                       # checkpoints kept
    ema_decay: float
    ema: bool = True                # keep an EMA copy of the generator (saved as generator_ema)
    stop_at: Optional[int] = None   # end this session after this step (a checkpoint is left there)
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    log_elapsed: bool = True        # an elapsed_s field in log.jsonl (off: a resumed log reads the same)
    desc: str = "train"

    @property
    def end(self) -> int:
        return self.steps if self.stop_at is None else min(self.steps, self.stop_at)


@dataclass
class LoopResult:
    step: int                       # the last step done (start - 1 when nothing ran)
    start: int                      # the first step of this session
    ema_model: Optional[nn.Module]  # the EMA generator (None when Loop.ema is off)
    seconds: float


def load_networks(objective, checkpoint: Path) -> tuple[dict, dict, dict]:
    """Load a checkpoint's weights into ``objective.networks``; returns ``load_checkpoint``'s triple."""
    state_dicts, meta, train_state = load_checkpoint(checkpoint)
    for name, net in objective.networks.items():
        try:
            net.load_state_dict(state_dicts[name])
        except (KeyError, RuntimeError) as err:
            raise TrainError(f"{checkpoint}: {name} does not match the run's config "
                             f"({str(err).splitlines()[0]})") from None
    return state_dicts, meta, train_state


def run_loop(
    objective,
    loop: Loop,
    run_dir: Path,
    *,
    stream: Callable[[int, int], Iterable[dict[str, torch.Tensor]]],
    sample_batch: dict[str, torch.Tensor],
    meta: dict[str, Any],
    device: torch.device,
    dist: distributed.DistInfo = distributed.DistInfo(),
    resumed: Optional[tuple[dict, dict, dict]] = None,
    force: bool = False,
    show_progress: bool = True,
) -> LoopResult:
    """Run ``objective`` from the step after ``resumed`` (or 1) to ``loop.end`` into ``run_dir``.

    ``stream(first, last)`` yields the batches of steps ``first..last`` in order, each a pure
    function of ``(seed, step)``; ``resumed`` is :func:`load_networks`' triple (networks already
    loaded); ``meta`` is saved in every checkpoint; only rank 0 writes files.
    """
    state_dicts, meta_in, train_state = resumed if resumed is not None else (None, None, None)
    generator = objective.networks[objective.generator_key]
    ema = EMA(generator, loop.ema_decay) if loop.ema else None
    if ema is not None and state_dicts is not None:
        ema.model.load_state_dict(state_dicts.get("generator_ema", state_dicts[objective.generator_key]))

    memory_format = torch.channels_last if (device.type == "cuda" and loop.channels_last) else None
    for net in [*objective.networks.values(), *([ema.model] if ema else [])]:
        net.to(device)
        if memory_format is not None:
            net.to(memory_format=memory_format)
    objective.autocast, scaler = _amp(device, loop.amp)
    if train_state is not None:
        # distillation runs saved before the single engine kept their optimisers as opt_g / opt_d
        saved = train_state.get("optimizers") or {"g": train_state.get("opt_g"), "d": train_state.get("opt_d")}
        for name, opt in objective.optimizers.items():
            opt.load_state_dict(saved[name])
        if scaler is not None and train_state.get("scaler"):
            scaler.load_state_dict(train_state["scaler"])
    for name, net in objective.networks.items():
        wrapped = distributed.wrap(net, dist, device)
        objective.forward[name] = torch.compile(wrapped) if loop.compile else wrapped

    start, end = (meta_in or {}).get("step", 0) + 1, loop.end
    main = dist.rank == 0
    samples_dir = run_dir / "samples"
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resumed is None and force:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            shutil.rmtree(samples_dir, ignore_errors=True)
    logger = RunLogger(run_dir, resume_from=start - 1 if resumed is not None else None) if main else None
    lr_base = objective.lr_groups()
    final = ema.model if ema is not None else generator  # what the samples show

    def save(step):
        state = {name: net.state_dict() for name, net in objective.networks.items()}
        if ema is not None:
            state["generator_ema"] = ema.model.state_dict()
        train_state = {
            "optimizers": {name: opt.state_dict() for name, opt in objective.optimizers.items()},
            "scaler": scaler.state_dict() if scaler is not None else {},
            "torch_rng": torch.get_rng_state(),
            "objective": objective.extra_state(),
        }
        return save_checkpoint(run_dir, step, state, meta, train_state, keep=loop.keep)

    def draw(step):
        batch = {k: v.to(device) for k, v in sample_batch.items()}
        rows, labels = objective.sample_rows(batch, final)
        save_image_grid(rows, samples_dir / f"step_{step:07d}.png", col_labels=labels)

    totals: dict[str, torch.Tensor] = {}
    count, t0, step = 0, time.perf_counter(), start - 1
    bar = None
    if main and show_progress and start <= end:
        from tqdm.auto import tqdm

        bar = tqdm(total=end, initial=start - 1, desc=loop.desc, dynamic_ncols=True)
    batches = stream(start, end) if start <= end else ()
    for step, batch in enumerate(batches, start):
        torch.manual_seed(step_seed(loop.seed, step, dist.rank))
        noise = torch.Generator().manual_seed(step_seed(loop.seed, step, dist.rank))
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if memory_format is not None:
            batch = {k: v.contiguous(memory_format=memory_format) for k, v in batch.items()}
        scales = objective.lr_scales(step)
        for name, opt in objective.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = lr_base[name] * scales[name]
        losses = objective.step(batch, scaler, noise)
        if scaler is not None:
            scaler.update()
        if ema is not None:
            ema.update(generator, step)
        for k, v in losses.items():
            totals[k] = totals.get(k, 0) + v
        count += 1

        if step % loop.log_every == 0 or step == loop.steps:  # not at stop_at: resumed logs read as one
            means = {k: distributed.mean(v / count, dist).item() for k, v in sorted(totals.items())}
            if main:
                extra = {objective.lr_log_key: lr_base["g"] * scales["g"]}
                if loop.log_elapsed:
                    extra["elapsed_s"] = time.perf_counter() - t0
                logger.log(step, **means, **extra)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
            totals, count = {}, 0
        if main and (step % loop.sample_every == 0 or step == loop.steps):
            draw(step)
            plot_losses(logger.path, run_dir / "loss.png")
        if main and (step % loop.checkpoint_every == 0 or step == end):
            objective.on_checkpoint(step, final)
            save(step)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if main and start <= end:
        plot_losses(logger.path, run_dir / "loss.png")
    distributed.barrier(dist)
    return LoopResult(step=step, start=start, ema_model=ema.model if ema is not None else None,
                      seconds=round(time.perf_counter() - t0, 2))


def _meta(config: TrainConfig, generator: nn.Module, dist, preset, dataset, style: str) -> dict[str, Any]:
    import styleforge

    return {
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
            "dataset_size": len(dataset),
            "world_size": dist.world_size,
            "git_commit": git_commit(),
            "versions": {"styleforge": styleforge.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
        },
    }


def resolved_config_for_resume(run_dir: Union[str, Path], base: TrainConfig) -> TrainConfig:
    """The config saved in ``RUN/config.yaml`` (what ``--resume`` continues), else ``base``."""
    from styleforge.train.config import read_yaml

    path = Path(run_dir) / "config.yaml"
    return config_from_dict(read_yaml(path), base=TrainConfig()) if path.is_file() else base

