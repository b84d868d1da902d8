"""Explicit model registries: name -> class. Every model keeps its kwargs in ``model.config``
and its registry name in ``model.arch_name``, so ``build_generator(m.arch_name, **m.config)``
rebuilds it (checkpoints store exactly that pair)."""

from __future__ import annotations

from torch import nn

from styleforge.train.models.colour import ColourGenerator
from styleforge.train.models.dcgan import DCGANDiscriminator, DCGANGenerator
from styleforge.train.models.mobile import MobileGenerator
from styleforge.train.models.patchgan import PatchGANDiscriminator
from styleforge.train.models.recipe import RecipeGenerator
from styleforge.train.models.resnet import ResnetGenerator

GENERATORS: dict[str, type[nn.Module]] = {
    "colour": ColourGenerator,
    "resnet": ResnetGenerator,
    "mobile": MobileGenerator,
    "dcgan": DCGANGenerator,
    "recipe": RecipeGenerator,
}
DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "patchgan": PatchGANDiscriminator,
    "dcgan": DCGANDiscriminator,
}


def _build(registry: dict[str, type[nn.Module]], kind: str, name: str, kwargs: dict) -> nn.Module:
    if name not in registry:
        raise KeyError(f"unknown {kind} {name!r}; choose from {', '.join(sorted(registry))}")
    try:
        return registry[name](**kwargs)
    except TypeError as err:  # unknown keyword: say which model and what it accepts
        raise TypeError(f"{kind} {name!r}: {err}") from err


def build_generator(name: str, **kwargs) -> nn.Module:
    """A generator from its registry name and constructor kwargs (e.g. ``model.config``)."""
    return _build(GENERATORS, "generator", name, kwargs)


def build_discriminator(name: str, **kwargs) -> nn.Module:
    """A discriminator from its registry name and constructor kwargs."""
    return _build(DISCRIMINATORS, "discriminator", name, kwargs)
