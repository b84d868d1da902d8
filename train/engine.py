"""The training engine: one loop (:func:`run_loop`) for every objective, and the contract it drives.

An objective (:class:`BaseObjective`: the objectives of :mod:`styleforge.train.objectives`: the GAN objectives,
the colour generator's, distillation's ``DistillObjective``, the LUT fit's ``LutObjective``) owns
networks, their optimisers and the losses; it never steps an optimiser. Its
:meth:`~BaseObjective.phases` computes a loss from a batch and yields it with the name of the
optimiser it trains; the engine back-propagates it and steps that optimiser (zero_grad, backward,
gradient clipping, AMP's GradScaler) before the objective continues, so a discriminator phase sees
the generator as the generator phase left it. The split is StyleGAN3's (``loss.py`` computes,
``training_loop.py`` steps). Everything else is the engine's too: devices, AMP, DDP, EMA, the
learning-rate schedule the objective states, logging, samples, atomic checkpoints and resume.

Determinism is the design constraint. Nothing in the loop uses an RNG whose state lives only in
memory: the batches of ``stream(first, last)`` are a pure function of ``(seed, step)`` (the
caller's contract), the torch RNG is re-seeded from ``(seed, step, rank)`` before every step
(dropout, gradient-penalty mixing, DCGAN noise), and checkpoints hold weights, EMA weights and
optimiser state. A run stopped at step N and resumed therefore reaches step 2N with the same
weights, bit for bit on the CPU, as a run that was never stopped.
"""

from __future__ import annotations

import contextlib
import copy
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Optional

import numpy as np
import torch
from torch import Tensor, nn

import styleforge
from styleforge.errors import StyleforgeError
from styleforge.train import distributed
from styleforge.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from styleforge.train.runlog import RunLogger, plot_losses, save_image_grid

# What an objective's phases are: (optimiser name, loss) pairs, then the step's losses to log.
Phases = Generator[tuple[str, Tensor], None, dict[str, Tensor]]


class TrainError(StyleforgeError, ValueError):
    """A user error detected before training starts (bad folders, occupied run folder...)."""


# ---------------------------------------------------------------------------------------------
# the objective contract


class BaseObjective:
    """What :func:`run_loop` drives: networks, optimisers, the losses of one step, samples.

    An objective owns its networks (``self.networks``: raw modules, saved in checkpoints under
    these names), their optimisers (``self.optimizers``, by name) and :meth:`phases`; the engine
    owns every optimiser step.
    """

    generator_key = "generator"  # the network that is the product of the run (and gets an EMA)
    lr_log_key = "lr_g"  # the log.jsonl field holding the "g" optimiser's learning rate

    def __init__(self, config):
        self.config = config
        self.networks: dict[str, nn.Module] = {}
        self.forward: dict[str, Callable] = {}  # possibly DDP-wrapped / compiled callables
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    def lr_groups(self) -> dict[str, float]:
        """Base learning rate of each optimiser (the loop scales them by :meth:`lr_scales`)."""
        raise NotImplementedError

    def lr_scales(self, step: int) -> dict[str, float]:
        """The schedule: factor on each optimiser's base learning rate at ``step`` (1-based)."""
        return {name: 1.0 for name in self.optimizers}

    def phases(self, batch: dict[str, Tensor], noise: Optional[torch.Generator] = None) -> Phases:
        """One step as a generator: ``yield name, loss`` for each optimiser to step, in order
        (the engine steps ``self.optimizers[name]`` on ``loss`` before the generator resumes),
        then ``return {loss name: detached tensor}`` for the log."""
        raise NotImplementedError

    # -- optional hooks (no-ops here), called by the loop's callers on the main process ---------
    def prepare(self, dataset, fresh: bool) -> None:
        """Called once the dataset is built; ``fresh`` on a new run (e.g. for a data-driven init)."""

    def on_checkpoint(self, step: int, ema_generator: nn.Module) -> None:
        """Called before each checkpoint is written (e.g. to score a model-selection candidate)."""

    def finish(self, run_dir, ema_generator: nn.Module, step: int) -> Optional[dict]:
        """Called after the last step; may return a verdict dict (written into the run)."""
        return None

    def extra_state(self) -> dict:
        """Plain data saved with the optimiser state and handed back by :meth:`load_extra_state`."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, Tensor], generator: nn.Module) -> tuple[list[list[Tensor]], list[str]]:
        """Rows of images for the sample grid, with column labels; ``generator`` is the EMA copy."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# the pieces of a step


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


def backward_step(optimizer: torch.optim.Optimizer, loss: Tensor, scaler, grad_clip: float = 0.0) -> None:
    """The one place an optimiser steps: zero_grad, backward, clip the global norm, step."""
    optimizer.zero_grad(set_to_none=True)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
    else:
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()


def run_phases(phases: Phases, step: Callable[[str, Tensor], None]) -> dict[str, Tensor]:
    """Drive an objective's phases: ``step(name, loss)`` for each yielded pair before resuming it;
    returns the generator's return value (the losses to log)."""
    try:
        name, loss = next(phases)
        while True:
            step(name, loss)
            name, loss = next(phases)
    except StopIteration as end:
        return end.value


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


def _amp(device: torch.device, enabled: bool):
    """(autocast factory, GradScaler or None): bf16 where supported, else fp16 with a scaler."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext, None
    if torch.cuda.is_bf16_supported():
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


# ---------------------------------------------------------------------------------------------
# devices, provenance, run folders


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` -> a device (``cuda`` without CUDA is a :class:`TrainError`)."""
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


def versions() -> dict[str, str]:
    """The library versions a run was made with (saved in every checkpoint's meta)."""

    return {"styleforge": styleforge.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


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


def to_channels_last(net: nn.Module) -> nn.Module:
    """Lay out the 4-D tensors (conv weights ``[O, I, kH, kW]``) of ``net`` channels-last, in place.

    Other ranks keep theirs: ``Module.to(memory_format=channels_last)`` refuses the colour
    generator's 3D LUT ``[1, 3, S, S, S]``, which crashed every colour run on CUDA.
    """
    for tensor in [*net.parameters(), *net.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return net


def load_networks(objective: BaseObjective, checkpoint: Path) -> tuple[dict, dict, dict]:
    """Load a checkpoint's weights into ``objective.networks``; returns ``load_checkpoint``'s triple."""
    state_dicts, meta, train_state = load_checkpoint(checkpoint)
    for name, net in objective.networks.items():
        try:
            net.load_state_dict(state_dicts[name])
        except (KeyError, RuntimeError) as err:
            raise TrainError(f"{checkpoint}: {name} does not match the run's config "
                             f"({str(err).splitlines()[0]})") from None
    return state_dicts, meta, train_state


# ---------------------------------------------------------------------------------------------
# the loop


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
    grad_clip: float = 0.0          # clip each optimiser's global gradient norm to this (0: off)
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
    ran: bool = True                # this session produced the run's model (a fresh run, or steps were left)


def run_loop(
    objective: BaseObjective,
    loop: Loop,
    run_dir: Path,
    *,
    stream: Callable[[int, int], Iterable[dict[str, Tensor]]],
    sample_batch: dict[str, Tensor],
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
            to_channels_last(net)
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

    def optimizer_step(name: str, loss: Tensor) -> None:
        backward_step(objective.optimizers[name], loss, scaler, loop.grad_clip)

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

    totals: dict[str, Tensor] = {}
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
        losses = run_phases(objective.phases(batch, noise), optimizer_step)
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
    ran = start <= end or resumed is None
    if main and start > end and resumed is None:  # a run of 0 steps ships its start (a fitted model)
        objective.on_checkpoint(0, final)
        draw(0)
        save(0)
    distributed.barrier(dist)
    return LoopResult(step=step, start=start, ema_model=ema.model if ema is not None else None,
                      seconds=round(time.perf_counter() - t0, 2), ran=ran)
