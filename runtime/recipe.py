"""A look recipe: the ordered photographic operators of a look and their parameters, as data.

numpy only. A recipe is what a bundle's manifest stores under ``"recipe"``, what ``styleforge info``
prints and what the runtime runs: a plain colour look is the one-step recipe ``[colour_lut]``, a
local look adds operators of :mod:`styleforge.runtime.look_ops` (clarity, smoothing, sharpening,
vignette, bloom, fade, grain) around it. Its JSON form::

    {"version": 1,
     "steps": [{"op": "smooth_skin", "amount": 0.4, "radius": 0.012, "edge": 0.05},
               {"op": "colour_lut", "lut": "look.cube"},
               {"op": "bloom", "strength": 0.5, "threshold": 0.62, "radius": 0.04}]}

Every length is a fraction of the photo's short side, so a recipe reads the same at any size.
``colour_lut`` names a ``.cube`` file of the bundle (its table is data, not a parameter); every
other step carries exactly its operator's parameters (:data:`~styleforge.runtime.look_ops.PARAMS`),
finite and inside their ranges (parameters added later,
:data:`~styleforge.runtime.look_ops.OPTIONAL`, may be left out and are then their defaults:
bloom's tint ``r``, ``g``, ``b``). A recipe is untrusted input: :func:`parse_recipe` refuses an
unknown version or operator, a missing or unknown parameter, NaN/inf or out-of-range values and
more than :data:`MAX_STEPS` steps, with one line naming the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from styleforge.runtime.look_ops import OPS, OPTIONAL, PARAMS, STRENGTH, LookOpError, check_params
from styleforge.runtime.look_strips import RecipeRenderer

RECIPE_VERSION = 1
MAX_STEPS = 32  # a photographer's recipe has a handful; thousands are an attack or a bug
MAX_SEED = 2**31 - 1


class RecipeError(LookOpError):
    """A recipe that cannot be run: the message names the step and the reason."""


@dataclass(frozen=True)
class Step:
    """One operator of a recipe: ``op`` (a key of :data:`~styleforge.runtime.look_ops.OPS`), its
    continuous ``params`` (each in its schema's range) and, for ``colour_lut``, the bundle file of
    its table (``lut``) or, for ``grain``, its integer ``seed``."""

    op: str
    params: Mapping[str, float] = field(default_factory=dict)
    lut: Optional[str] = None
    seed: Optional[int] = None

    def shown(self) -> dict[str, float]:
        """The parameters a person and the JSON form see: all but optional ones at their default
        (:data:`~styleforge.runtime.look_ops.OPTIONAL`: an untinted bloom reads as before the tint)."""
        optional = OPTIONAL.get(self.op, ())
        return {k: float(v) for k, v in self.params.items() if k not in optional or v != PARAMS[self.op][k][2]}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, **self.shown()}
        if self.lut is not None:
            out["lut"] = self.lut
        if self.seed is not None:
            out["seed"] = int(self.seed)
        return out

    def describe(self) -> str:
        """One readable line: ``bloom  strength 0.50, threshold 0.62, radius 4.0% of the short side``."""
        if self.op == "colour_lut":
            return f"colour_lut  {self.lut or '(table in memory)'}"
        parts = []
        for key, value in self.shown().items():
            if key in ("radius", "size"):
                parts.append(f"{key} {100 * value:.2g}% of the short side")
            else:
                parts.append(f"{key} {value:.3g}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return f"{self.op}  " + ", ".join(parts)


@dataclass(frozen=True)
class Recipe:
    """The ordered steps of a look; ``tables`` holds each ``colour_lut`` step's ``[S, S, S, 3]``
    float32 table (indexed ``[r, g, b]``, :mod:`styleforge.runtime.lut`) by its ``lut`` name."""

    steps: tuple[Step, ...]
    tables: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"version": RECIPE_VERSION, "steps": [step.to_json() for step in self.steps]}

    def describe(self) -> list[str]:
        """The recipe for a person: one numbered line per step."""
        return [f"{i + 1}. {step.describe()}" for i, step in enumerate(self.steps)]

    @property
    def is_colour_only(self) -> bool:
        """True for a look that is a colour function (only ``colour_lut`` steps): a ``.cube`` is exact."""
        return all(step.op == "colour_lut" for step in self.steps)

    def with_tables(self, tables: Mapping[str, np.ndarray]) -> Recipe:
        return Recipe(self.steps, dict(tables))

    def apply(self, rgb: np.ndarray, strength: float = 1.0, threads: Optional[int] = None) -> np.ndarray:
        """Run the recipe on float32 ``[H, W, 3]`` sRGB in [0, 1] (the whole photo: vignette geometry
        and blur radii are fractions of *this* array's size); returns float32 ``[H, W, 3]`` in [0, 1],
        blended with the input by ``strength`` (0 = the input, 1 = the look).

        The operators of :func:`~styleforge.runtime.look_ops.apply_recipe`, run in strips over
        ``threads`` by :class:`~styleforge.runtime.look_strips.RecipeRenderer` (float32 throughout,
        the colour LUT interpolated exactly)."""
        missing = [s.lut for s in self.steps if s.op == "colour_lut" and s.lut not in self.tables]
        if missing:
            raise RecipeError(f"recipe step colour_lut: its table {missing[0]!r} was not loaded")
        renderer = RecipeRenderer(self, threads)
        try:
            return renderer.render(np.asarray(rgb, dtype=np.float32), strength)
        finally:
            renderer.close()


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{where} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise RecipeError(f"{where} must be finite, got {value!r}")
    return float(value)


def parse_step(data: Any, index: int) -> Step:
    """One step from its JSON form (untrusted): see the module doc."""
    where = f"recipe step {index + 1}"
    if not isinstance(data, dict):
        raise RecipeError(f"{where} must be an object, got {type(data).__name__}")
    op = data.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise RecipeError(f"{where}: unknown operator {op!r} (this runtime knows {', '.join(OPS)})")
    where = f"{where} ({op})"
    values = {k: v for k, v in data.items() if k != "op"}
    lut = values.pop("lut", None)
    seed = values.pop("seed", None)
    if op == "colour_lut":
        if not isinstance(lut, str) or not lut:
            raise RecipeError(f"{where} needs \"lut\": the name of a .cube file of the bundle")
    elif lut is not None:
        raise RecipeError(f"{where}: only colour_lut takes a \"lut\"")
    if op == "grain":
        if seed is None:
            seed = 0
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise RecipeError(f"{where}: seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    elif seed is not None:
        raise RecipeError(f"{where}: only grain takes a \"seed\"")
    params = {key: _finite(value, f"{where}.{key}") for key, value in values.items()}
    try:
        check_params(op, params)
    except LookOpError as err:
        raise RecipeError(f"recipe step {index + 1}: {err}") from None
    # the schema's order, for reading; an optional parameter the recipe predates at its default
    ordered = {key: params.get(key, spec[2]) for key, spec in PARAMS[op].items()}
    return Step(op, ordered, lut=lut, seed=seed)


def parse_recipe(data: Any) -> Recipe:
    """A :class:`Recipe` from its JSON form (untrusted input); :class:`RecipeError` otherwise.

    The tables of its ``colour_lut`` steps are not loaded here (the bundle reader does that, from
    files whose hashes the manifest lists): :meth:`Recipe.with_tables` adds them."""
    if not isinstance(data, dict):
        raise RecipeError(f"a recipe must be an object, got {type(data).__name__}")
    if data.get("version") != RECIPE_VERSION:
        raise RecipeError(f"recipe version {data.get('version')!r} is not supported (this runtime reads {RECIPE_VERSION})")
    unknown = set(data) - {"version", "steps"}
    if unknown:
        raise RecipeError(f"recipe: unknown keys {sorted(unknown)}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise RecipeError("recipe: \"steps\" must be a non-empty list")
    if len(steps) > MAX_STEPS:
        raise RecipeError(f"recipe: {len(steps)} steps, more than the {MAX_STEPS} a look may have")
    return Recipe(tuple(parse_step(step, i) for i, step in enumerate(steps)))


def colour_recipe(lut_name: str, table: Optional[np.ndarray] = None) -> Recipe:
    """The one-step recipe of a colour look: its ``.cube`` file ``lut_name`` (and its table)."""
    return Recipe((Step("colour_lut", {}, lut=lut_name),), {lut_name: table} if table is not None else {})


def strength_of(step: Step) -> Optional[float]:
    """The value of ``step``'s strength parameter (None for ``colour_lut``)."""
    key = STRENGTH.get(step.op)
    return None if key is None else float(step.params[key])
