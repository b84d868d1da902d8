"""Run folders and atomic checkpoints (shared by GAN training and distillation).

Layout of a run folder::

    RUN/config.yaml                        resolved config of the run
    RUN/checkpoints/step_0000500/          one checkpoint (written as a temp dir, then renamed)
        generator.safetensors              one file per network (weights and buffers)
        generator_ema.safetensors
        meta.json                          step, config, meta["generator"] = {"arch", "config"}, ...
        state.pt                           optimizer / EMA / scaler / RNG state (weights_only=True)
    RUN/log.jsonl, RUN/loss.png, RUN/samples/step_0000500.png

Checkpoints hold plain (unwrapped: no DDP / torch.compile prefixes) state dicts, so a run can be
resumed with another world size or loaded by the exporter.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

from styleforge.atomic import replace_dir
from styleforge.errors import StyleforgeError
from styleforge.train.models.registry import build_generator

CHECKPOINT_DIR = "checkpoints"
META_FILE = "meta.json"
STATE_FILE = "state.pt"
_STEP_RE = re.compile(r"^step_(\d{7,})$")


class CheckpointError(StyleforgeError, ValueError):
    """A run folder or checkpoint that cannot be read."""


def step_name(step: int) -> str:
    return f"step_{step:07d}"


def list_checkpoints(run_dir: Union[str, Path]) -> list[Path]:
    """Complete checkpoints of a run, oldest first (half-written temp dirs are ignored)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _STEP_RE.match(p.name) and (p / META_FILE).is_file()]
    return sorted(found, key=lambda p: int(_STEP_RE.match(p.name).group(1)))


def latest_checkpoint(run_dir: Union[str, Path]) -> Optional[Path]:
    """The newest complete checkpoint folder of ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _clean_state_dict(state_dict: dict) -> dict:
    """Contiguous CPU tensors without ``module.`` (DDP) / ``_orig_mod.`` (torch.compile) prefixes."""
    clean = {}
    for key, tensor in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        clean[key] = tensor.detach().to("cpu").contiguous()
    return clean


def save_checkpoint(
    run_dir: Union[str, Path],
    step: int,
    state_dicts: dict[str, dict],
    meta: dict,
    train_state: Optional[dict] = None,
    keep: int = 3,
) -> Path:
    """Write ``RUN/checkpoints/step_XXXXXXX/`` atomically and keep only the newest ``keep``.

    ``state_dicts`` maps a network name (``generator``, ``generator_ema``, ``discriminator``...)
    to its state dict; ``meta`` must be JSON-serialisable; ``train_state`` (optimizers, EMA,
    scaler, RNG) is saved with ``torch.save`` and read back with ``weights_only=True``.
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / step_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=folder))
    try:
        for name, state_dict in state_dicts.items():
            save_file(_clean_state_dict(state_dict), str(tmp / f"{name}.safetensors"))
        meta = {**meta, "step": int(step)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        if train_state is not None:
            torch.save(train_state, tmp / STATE_FILE)
        replace_dir(tmp, final)  # re-saving the same step (a resumed run that ends there) swaps it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Union[str, Path]) -> tuple[dict[str, dict], dict, Optional[dict]]:
    """Read a checkpoint folder (or a run folder: its newest checkpoint).

    Returns ``(state_dicts, meta, train_state)``; ``train_state`` is None when absent.
    """
    import torch

    path = _resolve_checkpoint_dir(path)
    state_dicts = {p.stem: read_weights(p) for p in sorted(path.glob("*.safetensors"))}
    meta = _read_meta(path / META_FILE)
    train_state = None
    if (path / STATE_FILE).is_file():
        try:
            train_state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file: torch raises many types
            raise CheckpointError(f"{path / STATE_FILE}: unreadable training state "
                                  f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    return state_dicts, meta, train_state


def read_weights(path: Path) -> dict:
    """A ``.safetensors`` file -> its tensors; CheckpointError (one line) for a corrupt file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated weights file (safetensors: {err})") from None


def _resolve_checkpoint_dir(path: Union[str, Path]) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such run or checkpoint: {path}")
    if path.is_dir() and (path / META_FILE).is_file():
        return path
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"{path} holds no checkpoints (expected {CHECKPOINT_DIR}/step_*/)")
        return latest
    raise CheckpointError(f"{path} is not a run folder or a checkpoint folder")


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"missing {path.name} beside the weights in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None


def generator_weights_file(run_or_file: Union[str, Path], use_ema: bool = True) -> Path:
    """The ``.safetensors`` file :func:`load_generator` reads for ``run_or_file`` (a run folder:
    its newest checkpoint; a checkpoint folder; or the file itself): the model-selected weights
    (colour generator), else the EMA (with ``use_ema``), else the raw generator."""
    path = Path(run_or_file)
    if path.is_file() and path.suffix == ".safetensors":
        return path
    folder = _resolve_checkpoint_dir(path)
    preferred = [folder / "generator_selected.safetensors", folder / "generator_ema.safetensors"]
    weights = next((p for p in preferred if use_ema and p.is_file()), folder / "generator.safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{folder} has no generator weights (generator.safetensors)")
    return weights


def load_generator(run_or_file: Union[str, Path], use_ema: bool = True) -> tuple[Any, dict]:
    """Rebuild the style generator of a run, in eval mode, on the CPU.

    ``run_or_file`` is a run folder (newest checkpoint), a checkpoint folder, or a
    ``.safetensors`` file with ``meta.json`` beside it. With ``use_ema`` the EMA weights are used
    when the checkpoint has them. The model maps ``float32 [N, 3, H, W]`` RGB in ``[-1, 1]`` to the
    same (dcgan generators map noise ``[N, latent_dim]`` to images).

    ``info`` holds ``arch``, ``config`` (generator kwargs), ``style``, ``step``, ``input_range``,
    ``run`` (training provenance), ``weights`` (which file was loaded) and ``path``.
    """
    weights = generator_weights_file(run_or_file, use_ema)
    meta = _read_meta(weights.parent / META_FILE)
    spec = meta.get("generator")
    if not isinstance(spec, dict) or "arch" not in spec:
        raise CheckpointError(f"{weights.parent / META_FILE} does not say which generator it holds")
    model = build_generator(spec["arch"], **spec.get("config", {}))
    try:
        model.load_state_dict(_clean_state_dict(read_weights(weights)))
    except RuntimeError as err:
        raise CheckpointError(f"{weights}: weights do not fit {spec['arch']} {spec.get('config')}: {err}") from None
    model.eval()
    info = {
        "arch": spec["arch"],
        "config": dict(spec.get("config", {})),
        "style": meta.get("style", ""),
        "step": meta.get("step"),
        "input_range": list(meta.get("input_range", [-1.0, 1.0])),
        "run": meta.get("run", {}),
        "mode": meta.get("mode", ""),
        "weights": weights.name,
        "path": str(weights.parent),
    }
    return model, info
