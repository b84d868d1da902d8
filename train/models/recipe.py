"""The recipe generator: a look as an ordered list of photographic operators (colour + local).

``x [-1,1] NCHW -> u = (x+1)/2 -> op 1 -> op 2 -> ... -> clip [0,1] -> 2u-1``, where each op is a
:class:`~styleforge.train.models.recipe_ops.OpModule` (the differentiable twin of the runtime's
numpy operator in :mod:`styleforge.runtime.look_ops`). Every parameter is in units of the photo
(fractions of its short side), so the generator runs at any size and means the same look there:
unlike a conv net it needs no tiling and no fixed pixel scale.

The runtime runs the same recipe without torch (:mod:`styleforge.runtime.recipe`): :meth:`recipe`
is its JSON form (written by the runtime's own :class:`~styleforge.runtime.recipe.Recipe`) and :meth:`lut_table` the table of its ``colour_lut`` step (the ``.cube``).
``config`` (``ops``, ``lut_size``, ``seed``) rebuilds it from a checkpoint like every generator.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from torch import Tensor, nn

from styleforge.runtime.recipe import Recipe, Step
from styleforge.train.models.recipe_ops import RecipeStack


class RecipeGenerator(nn.Module):
    """``forward(x [N, 3, H, W] in [-1, 1]) -> [N, 3, H, W] in [-1, 1]``: the recipe's ops in order."""

    arch_name = "recipe"

    def __init__(self, ops: Sequence[str] = ("colour_lut",), lut_size: int = 17, seed: int = 0):
        super().__init__()
        self.config = {"ops": list(ops), "lut_size": int(lut_size), "seed": int(seed)}
        self.stack = RecipeStack(list(ops), seed=seed, lut_size=lut_size)
        self.stride = 1

    def forward(self, x: Tensor) -> Tensor:
        return self.stack((x + 1.0) * 0.5) * 2.0 - 1.0

    def lut_table(self) -> Optional[np.ndarray]:
        """The ``colour_lut`` step's table float32 ``[S, S, S, 3]`` indexed ``[r, g, b]`` (None without one)."""
        for op in self.stack.ops:
            if op.name == "colour_lut":
                return op.table.detach().clamp(0.0, 1.0).cpu().numpy().astype(np.float32)
        return None

    def recipe(self, lut_file: str = "look.cube") -> dict[str, Any]:
        """The recipe's JSON form, its ``colour_lut`` naming ``lut_file``
        (:func:`styleforge.runtime.recipe.parse_recipe` reads it back)."""
        return Recipe(tuple(Step(op.name, op.params(), lut=lut_file if op.name == "colour_lut" else None,
                                 seed=int(op.seed) if op.name == "grain" else None)
                            for op in self.stack.ops)).to_json()

    @classmethod
    def from_steps(cls, steps: Sequence[tuple[str, dict[str, Any]]], lut_size: int = 17, seed: int = 0) -> RecipeGenerator:
        """A generator holding ``steps`` (``(op, params)``, the LUT's table under ``params["table"]``)."""
        import torch

        model = cls([name for name, _ in steps], lut_size=lut_size, seed=seed)
        for op, (name, params) in zip(model.stack.ops, steps):
            if name == "colour_lut":
                with torch.no_grad():
                    op.table.copy_(torch.from_numpy(np.asarray(params["table"], dtype=np.float32)))
            else:
                op.set_params(**{k: v for k, v in params.items() if k != "seed"})
        return model.eval()
