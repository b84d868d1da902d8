"""Bring your own teacher: load any image-to-image generator and wrap it to styleforge's contract.

A teacher can be

* a styleforge run folder, checkpoint folder or ``.safetensors`` file (``load_generator``);
* a TorchScript file (``torch.jit.load``), e.g. a traced CycleGAN / AnimeGAN generator;
* ``module:factory`` or ``path/to/file.py:factory`` -- the factory (a class or function) is
  called with no arguments and the weights come from ``weights`` (``.safetensors``, or
  ``.pt``/``.pth`` read with ``torch.load(weights_only=True)``; ``{"state_dict": ...}``,
  ``{"params_ema": ...}`` wrappers and DDP's ``module.`` prefixes are unwrapped).

Whatever the source, :func:`load_teacher` returns a :class:`TeacherWrapper` that maps
``float32 [N, 3, H, W]`` RGB in ``[-1, 1]`` to the same, converting to and from the teacher's own
value range (``input_range``, e.g. ``"0,1"``), frozen and in eval mode.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styleforge.errors import StyleforgeError
from styleforge.train.checkpoint import CheckpointError, read_weights

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
WEIGHT_WRAPPER_KEYS = ("params_ema", "state_dict", "params", "model", "generator_ema", "generator")


class TeacherError(StyleforgeError, ValueError):
    """A teacher that cannot be loaded; the message says what was tried and why it failed."""


def parse_range(text: str | tuple[float, float]) -> tuple[float, float]:
    """``"0,1"`` / ``"-1,1"`` / ``(0, 255)`` -> ``(lo, hi)`` with ``lo < hi``."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        try:
            lo, hi = (float(p) for p in parts)
        except ValueError:
            raise TeacherError(f"value range must look like '0,1' or '-1,1', got {text!r}") from None
    else:
        lo, hi = (float(v) for v in text)
    if not lo < hi:
        raise TeacherError(f"value range needs low < high, got {lo},{hi}")
    return lo, hi


class TeacherWrapper(nn.Module):
    """A frozen teacher speaking styleforge's contract.

    ``forward(x)``: ``x`` float32 ``[N, 3, H, W]`` RGB in ``[-1, 1]`` -> float32 ``[N, 3, H, W]`` in
    ``[-1, 1]`` (clamped). ``inner`` is the teacher as loaded; ``distill_points`` names submodules
    of ``inner`` whose outputs feature distillation may match (empty for TorchScript teachers,
    whose compiled graphs do not run forward hooks on submodules).
    """

    def __init__(self, inner: nn.Module, value_range: tuple[float, float] = (-1.0, 1.0),
                 distill_points: tuple[str, ...] = ()):
        super().__init__()
        self.inner = inner
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.distill_points = tuple(distill_points)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> TeacherWrapper:
        # A teacher stays in eval mode (batch norm statistics, dropout) whatever a caller asks.
        return super().train(False)

    def feature_modules(self) -> dict[str, nn.Module]:
        """``{name: submodule of inner}`` for each distill point."""
        modules = dict(self.inner.named_modules())
        return {name: modules[name] for name in self.distill_points}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        native = (x + 1.0) * (0.5 * (hi - lo)) + lo  # [-1,1] -> [lo,hi]
        out = self.inner(native)
        if isinstance(out, (tuple, list)):  # some generators also return features
            out = out[0]
        return ((out - lo) * (2.0 / (hi - lo)) - 1.0).clamp(-1.0, 1.0)


def _unwrap_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Find the tensor dict inside the common checkpoint wrappers."""
    for _ in range(3):  # e.g. {"state_dict": {"params_ema": {...}}}
        if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
            key = next((k for k in WEIGHT_WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if key is None:
                break
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TeacherError(f"{source}: no state dict of tensors found (looked under {', '.join(WEIGHT_WRAPPER_KEYS)})")
    if all(k.startswith("module.") for k in obj):  # saved from DistributedDataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``.pt``/``.pth`` file (no unpickling of code)."""
    path = Path(path)
    if not path.is_file():
        raise TeacherError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            return _unwrap_state_dict(read_weights(path), str(path))
        except CheckpointError as err:
            raise TeacherError(str(err)) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends: refuse, never unpickle code
        raise TeacherError(f"{path}: not a plain weights file ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    return _unwrap_state_dict(obj, str(path))


def import_factory(spec: str):
    """``pkg.module:factory`` or ``dir/file.py:factory`` -> the callable."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise TeacherError(f"{spec!r}: expected MODULE:FACTORY (a dotted module or file.py, a colon, a callable)")
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise TeacherError(f"{spec!r}: no such file {file}")
        mod_spec = importlib.util.spec_from_file_location(f"_styleforge_teacher_{file.stem}", file)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        # The console script does not put the working directory on sys.path; users expect it to.
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise TeacherError(f"{spec!r}: cannot import {module_name} ({err})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TeacherError(f"{spec!r}: {module_name} has no callable {attr!r}")
    return factory


def _looks_like_styleforge(path: Path) -> bool:
    return path.is_dir() or path.suffix == ".safetensors"


def load_teacher(spec: str | Path, weights: str | Path | None = None,
                 input_range: str | tuple[float, float] = "-1,1") -> tuple[TeacherWrapper, dict]:
    """Load a teacher generator and wrap it to map ``[-1, 1]`` in and out.

    Returns ``(wrapper, info)``; ``info`` has ``kind`` (``styleforge|torchscript|factory``),
    ``spec``, ``weights``, ``input_range``, ``arch``, ``config``, ``style``, ``run`` (provenance
    of a styleforge teacher, else ``{}``) and ``distill_points``.
    """
    value_range = parse_range(input_range)
    path = Path(spec)
    info: dict[str, Any] = {
        "spec": str(spec), "weights": str(weights) if weights else None,
        "input_range": list(value_range), "arch": None, "config": {}, "style": "", "run": {},
    }
    if path.exists() and _looks_like_styleforge(path):
        from styleforge.train.checkpoint import load_generator

        if weights:
            raise TeacherError("--teacher-weights is for module:factory teachers; a styleforge run holds its weights")
        model, gen_info = load_generator(path, use_ema=True)
        info.update(kind="styleforge", arch=gen_info.get("arch"), config=dict(gen_info.get("config") or {}),
                    style=gen_info.get("style", ""), run=dict(gen_info.get("run") or {}), step=gen_info.get("step"))
        points = tuple(getattr(model, "distill_points", ()))
    elif path.is_file():
        if weights:
            raise TeacherError("--teacher-weights is for module:factory teachers; a TorchScript file holds its weights")
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:
            raise TeacherError(f"{path}: not a TorchScript file or styleforge checkpoint ({str(err).splitlines()[0]})") from None
        info.update(kind="torchscript", arch="torchscript")
        points = ()  # hooks on a scripted model's submodules never fire
    elif ":" in str(spec):
        factory = import_factory(str(spec))
        try:
            model = factory()
        except Exception as err:
            raise TeacherError(f"{spec!r}: the factory raised {type(err).__name__}: {err}") from None
        if not isinstance(model, nn.Module):
            raise TeacherError(f"{spec!r}: the factory returned {type(model).__name__}, not a torch.nn.Module")
        if weights:
            state = load_weights(weights)
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as err:
                raise TeacherError(f"{weights}: does not fit {spec} ({str(err).splitlines()[0]} ...)") from None
        info.update(kind="factory", arch=getattr(model, "arch_name", type(model).__name__),
                    config=dict(getattr(model, "config", {}) or {}))
        points = tuple(getattr(model, "distill_points", ()))
    else:
        raise TeacherError(f"{spec!r}: not a styleforge run/checkpoint, a TorchScript file, or module:factory")
    info["distill_points"] = list(points)
    return TeacherWrapper(model.float(), value_range, points), info
