"""What a generator declares about itself, checked with ``isinstance`` instead of ``getattr``.

The export reads two things off a model: whether it has a *colour part* (a pointwise colour
function a ``.cube`` LUT can bake) and whether that part is *image-adaptive* (its parameters are
predicted per photo). Both are structural protocols (``typing.Protocol``, runtime-checkable): a
model satisfies one by having the members, without inheriting from anything, so a bring-your-own
``nn.Module`` qualifies as readily as :class:`~styleforge.train.models.colour.ColourGenerator`
(which the LUT student, ``distill --student lut``, fits too).

``isinstance`` on a runtime-checkable protocol checks that the members exist, not their
signatures; the docstrings below state the contract.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable


@runtime_checkable
class ColourModel(Protocol):
    """A generator with a colour part: ``colour(rgb [M, 3] or [N, M, 3] in [0, 1]) -> same shape in
    [0, 1]``, sRGB-encoded, the pixel's new colour from its colour alone (what a ``.cube`` bakes).
    ``params`` (an :class:`AdaptiveColourModel`'s per-photo parameters, ``[N, K]``) picks the
    transform; ``None`` is the base one."""

    def colour(self, rgb: Any, params: Optional[Any] = None) -> Any: ...


@runtime_checkable
class AdaptiveColourModel(ColourModel, Protocol):
    """A colour model whose colour part is predicted per photo: ``adaptive`` (> 0 when it is: the
    number of basis LUTs, 0 = a fixed colour function) and ``adaptive_params(u [N, 3, H, W] in
    [0, 1]) -> [N, K]`` (``None`` when ``adaptive`` is 0), which :meth:`ColourModel.colour` takes as
    ``params``."""

    adaptive: int

    def adaptive_params(self, u: Any) -> Optional[Any]: ...


def has_colour_part(model: object) -> bool:
    """Does ``model`` declare a colour part (:class:`ColourModel`)?"""
    return isinstance(model, ColourModel)


def is_adaptive(model: object) -> bool:
    """Is ``model`` an image-adaptive colour model with its adaptive branch switched on?"""
    return isinstance(model, AdaptiveColourModel) and int(model.adaptive or 0) > 0


def model_stride(model: object) -> int:
    """The factor ``H`` and ``W`` must be multiples of (a ``stride`` attribute; 1 for a model
    without one, e.g. a pointwise or bring-your-own model)."""
    return int(getattr(model, "stride", 1) or 1)
