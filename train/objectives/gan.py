"""The three image GAN objectives and their shared base: the losses of one step each, networks and losses kept apart.

- :class:`UnpairedObjective` (CycleGAN, Zhu et al. 2017): G: content -> style, F: style ->
  content, discriminators D_style / D_content; adversarial + cycle L1 + identity L1.
- :class:`PairedObjective` (pix2pix, Isola et al. 2017): L1 to the target + an optional
  conditional adversarial term (D sees ``concat(input, output)``).
- :class:`DCGANObjective` (Radford et al. 2016): noise -> 64x64 image against a style folder.

Each objective owns its networks (``self.networks``: raw modules, saved in checkpoints), their
optimisers, its learning-rate schedule, and ``phases(batch, noise)``: a generator that yields
``(optimiser name, loss)`` for the engine to step and returns the step's losses
(:class:`~styleforge.train.engine.BaseObjective` is that contract). :class:`Objective` adds what
the three share (a ``TrainConfig``, its GAN loss and penalties). The loop (``engine.run_loop``)
decides everything else: optimiser steps, devices, DDP, AMP, EMA, logging, checkpoints.

Under DDP, ``self.forward[name]`` is the wrapped module (gradients are all-reduced when it is
used in the loss that is back-propagated); the generator phase evaluates the discriminators
through their raw modules with gradients off, so DDP never waits for gradients it will not get.
"""

from __future__ import annotations

import itertools
import sys
from typing import Optional

import torch
from torch import Tensor, nn

from styleforge.photo.photos import load_photos
from styleforge.photo.verdict import assess
from styleforge.train.config import TrainConfig
from styleforge.train.degeneracy import run_on
from styleforge.train.engine import BaseObjective, Phases
from styleforge.train.image_pool import ImagePool
from styleforge.train.losses import (
    GANLoss,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    r1_penalty,
)
from styleforge.train.models.registry import build_discriminator, build_generator
from styleforge.train.paired_fit import fit_colour_generator, pair_pixels


def set_requires_grad(modules: list[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def adam(params, lr: float, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(config.optim.beta1, config.optim.beta2))


class Objective(BaseObjective):
    """The GAN objectives of ``styleforge train``: a :class:`TrainConfig`, its GAN loss and schedule."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.gan = GANLoss(config.loss.gan)
        self.pools: dict[str, ImagePool] = {}  # per discriminator: its history of fakes (loss.pool_size)
        self._verdict_photos: list = []  # what finish() judges the generator on (judge_on)

    def lr_groups(self) -> dict[str, float]:
        return {name: (self.config.optim.lr_g if name == "g" else self.config.optim.lr_d)
                for name in self.optimizers}

    def lr_scales(self, step: int) -> dict[str, float]:
        """Constant, then linear decay to zero from ``decay_start * steps`` (CycleGAN's schedule)."""
        optim, steps = self.config.optim, self.config.steps
        start = optim.decay_start * steps
        scale = 1.0
        if step > start and optim.decay_start < 1.0:
            scale = max(0.0, 1.0 - (step - start) / max(1.0, steps - start))
        return {name: scale for name in self.optimizers}

    def _d_loss(self, name: str, real: Tensor, fake: Tensor,
                noise: Optional[torch.Generator] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator loss on real vs (detached) fake, plus the configured penalties (fp32).

        With ``loss.pool_size > 0`` the fakes pass through the discriminator's image pool first
        (:class:`~styleforge.train.image_pool.ImagePool`; ``noise`` is the step's generator)."""
        fake = fake.detach()
        if self.config.loss.pool_size > 0:
            fake = self.pools.setdefault(name, ImagePool(self.config.loss.pool_size)).query(fake, noise)
        with self.autocast():
            loss = self.gan.d_loss(self.forward[name](real), self.forward[name](fake))
        parts = {}
        raw = self.networks[name]
        if self.config.loss.gan == "wgan-gp" and self.config.loss.lambda_gp > 0:
            parts["gp"] = gradient_penalty(raw, real.float(), fake.float())
            loss = loss + self.config.loss.lambda_gp * parts["gp"]
        if self.config.loss.r1_gamma > 0:
            parts["r1"] = r1_penalty(raw, real.float())
            loss = loss + 0.5 * self.config.loss.r1_gamma * parts["r1"]
        return loss, parts

    def judge_on(self, photos) -> None:
        """Remember the input photos (PIL images, paths or uint8 HWC arrays) :meth:`finish` judges the
        trained generator on."""
        self._verdict_photos = list(photos)

    def finish(self, run_dir, ema_generator, step):
        """The verdict on the shipped (EMA) generator, run on up to
        :data:`~styleforge.train.degeneracy.CHECK_PHOTOS` of its input photos: collapse (outputs
        far less diverse than the inputs) and lost structure, the checks ``distill`` and ``export``
        make. The do-nothing check needs a classical fit of the two folders, which only the colour
        objective makes. No verdict with fewer than 2 photos (or none to run on: DCGAN)."""
        inputs = load_photos(self._verdict_photos)
        if len(inputs) < 2:
            return None
        return {"verdict": assess(inputs, run_on(ema_generator, inputs)),
                "validation": f"{len(inputs)} of the training input photos"}

    def extra_state(self) -> dict:
        return {"pools": {name: pool.state() for name, pool in self.pools.items()}} if self.pools else {}

    def load_extra_state(self, state: dict) -> None:
        for name, images in state.get("pools", {}).items():
            self.pools.setdefault(name, ImagePool(self.config.loss.pool_size)).load(images)


class UnpairedObjective(Objective):
    """CycleGAN: ``batch = {"content": [N,3,P,P], "style": [N,3,P,P]}`` in [-1, 1]."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        m = config.model
        self.networks = {
            "generator": build_generator(m.generator, **m.generator_kwargs),  # G: content -> style
            "generator_inverse": build_generator(m.generator, **m.generator_kwargs),  # F
            "discriminator": build_discriminator(m.discriminator, **m.discriminator_kwargs),  # D_style
            "discriminator_inverse": build_discriminator(m.discriminator, **m.discriminator_kwargs),
        }
        n = self.networks
        self.optimizers = {
            "g": adam(itertools.chain(n["generator"].parameters(), n["generator_inverse"].parameters()),
                      config.optim.lr_g, config),
            "d": adam(itertools.chain(n["discriminator"].parameters(), n["discriminator_inverse"].parameters()),
                      config.optim.lr_d, config),
        }

    def prepare(self, dataset, fresh: bool) -> None:
        self.judge_on(dataset.content_images)

    def phases(self, batch, noise=None) -> Phases:
        real_a, real_b = batch["content"], batch["style"]  # [N,3,P,P] each
        f, n, lw = self.forward, self.networks, self.config.loss
        discriminators = [n["discriminator"], n["discriminator_inverse"]]

        set_requires_grad(discriminators, False)
        with self.autocast():
            fake_b = f["generator"](real_a)
            fake_a = f["generator_inverse"](real_b)
            rec_a = f["generator_inverse"](fake_b)
            rec_b = f["generator"](fake_a)
            g_gan = (self.gan.generator_loss(n["discriminator"], fake_b, real_b)
                     + self.gan.generator_loss(n["discriminator_inverse"], fake_a, real_a))
            cycle = cycle_loss(rec_a, real_a) + cycle_loss(rec_b, real_b)
            loss_g = lw.lambda_gan * g_gan + lw.lambda_cycle * cycle
            identity = torch.zeros((), device=real_a.device)
            if lw.lambda_identity > 0:
                identity = (identity_loss(f["generator"](real_b), real_b)
                            + identity_loss(f["generator_inverse"](real_a), real_a))
                loss_g = loss_g + lw.lambda_cycle * lw.lambda_identity * identity
        yield "g", loss_g
        set_requires_grad(discriminators, True)

        d_style, parts_b = self._d_loss("discriminator", real_b, fake_b, noise)
        d_content, parts_a = self._d_loss("discriminator_inverse", real_a, fake_a, noise)
        yield "d", 0.5 * (d_style + d_content)
        losses = {"g_gan": g_gan, "cycle": cycle, "identity": identity, "d_style": d_style, "d_content": d_content}
        losses.update({k: parts_a[k] + parts_b[k] for k in parts_a})
        return {k: v.detach().float() for k, v in losses.items()}

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        inverse = self.networks["generator_inverse"]
        was_training = inverse.training
        inverse.eval()
        rows = []
        for x in batch["content"]:
            y = generator(x[None])
            rows.append([x, y[0], inverse(y)[0]])
        inverse.train(was_training)
        return rows, ["input", "output", "reconstruction"]


class PairedObjective(Objective):
    """pix2pix: ``batch = {"content": input [N,3,P,P], "style": target [N,3,P,P]}`` in [-1, 1]."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        m = config.model
        self.networks = {"generator": build_generator(m.generator, **m.generator_kwargs)}
        self.optimizers = {"g": adam(self.networks["generator"].parameters(), config.optim.lr_g, config)}
        if config.loss.lambda_gan > 0:
            # Conditional discriminator: it judges (input, output) pairs, 6 channels.
            kwargs = {**m.discriminator_kwargs, "in_channels": 6}
            self.networks["discriminator"] = build_discriminator(m.discriminator, **kwargs)
            self.optimizers["d"] = adam(self.networks["discriminator"].parameters(), config.optim.lr_d, config)

    def prepare(self, dataset, fresh: bool) -> None:
        """A colour generator starts from the closed-form fit of the pairs
        (:mod:`styleforge.train.paired_fit`: least-squares colour matrix, then a smooth LUT residual
        cross-validated over the pairs; an identity start learns a black-and-white or strongly mixed
        look too slowly), which is the run's model when ``steps`` is 0 (the paired colour preset);
        it says so on stderr. Other generators start as built."""
        self.judge_on(before for before, _ in dataset.images)
        generator = self.networks["generator"]
        if not fresh or not hasattr(generator, "init_from"):
            return
        fit = fit_colour_generator(generator, *pair_pixels(dataset.pairs))
        then = ("the run's model (--steps N refines it)" if self.config.steps == 0 else
                f"refined for {self.config.steps} step{'s' * (self.config.steps > 1)} at lr {self.config.optim.lr_g:g}")
        print(f"paired: colour: closed-form fit of {len(dataset.pairs)} pairs (matrix + smooth lattice, "
              f"smoothness {fit.smoothness:g}): {then}", file=sys.stderr)

    def phases(self, batch, noise=None) -> Phases:
        a, b = batch["content"], batch["style"]
        f, n, lw = self.forward, self.networks, self.config.loss
        adversarial = "discriminator" in n
        if adversarial:
            set_requires_grad([n["discriminator"]], False)
        with self.autocast():
            fake = f["generator"](a)
            l1 = (fake - b).abs().mean()
            loss_g = lw.lambda_l1 * l1
            losses = {"l1": l1}
            if adversarial:
                g_gan = self.gan.generator_loss(n["discriminator"], torch.cat([a, fake], 1), torch.cat([a, b], 1))
                loss_g = loss_g + lw.lambda_gan * g_gan
                losses["g_gan"] = g_gan
        yield "g", loss_g
        if adversarial:
            set_requires_grad([n["discriminator"]], True)
            d_loss, parts = self._d_loss("discriminator", torch.cat([a, b], 1), torch.cat([a, fake], 1), noise)
            yield "d", d_loss
            losses.update(d=d_loss, **parts)
        return {k: v.detach().float() for k, v in losses.items()}

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        rows = [[a, generator(a[None])[0], b] for a, b in zip(batch["content"], batch["style"])]
        return rows, ["input", "output", "target"]


class DCGANObjective(Objective):
    """DCGAN: ``batch = {"style": real images [N,3,S,S]}``; noise comes from the step's generator."""

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        m = config.model
        generator_kwargs = {"latent_dim": m.latent_dim, **m.generator_kwargs}
        self.networks = {
            "generator": build_generator(m.generator, **generator_kwargs),
            "discriminator": build_discriminator(m.discriminator, **m.discriminator_kwargs),
        }
        self.latent_dim = int(getattr(self.networks["generator"], "latent_dim", m.latent_dim))
        self.optimizers = {
            "g": adam(self.networks["generator"].parameters(), config.optim.lr_g, config),
            "d": adam(self.networks["discriminator"].parameters(), config.optim.lr_d, config),
        }

    def noise(self, n: int, generator: Optional[torch.Generator], device) -> Tensor:
        """``[n, latent_dim]`` standard normal, drawn on the CPU so every device gets the same z."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(device)

    def phases(self, batch, noise=None) -> Phases:
        real = batch["style"]
        f, n = self.forward, self.networks
        z = self.noise(real.shape[0], noise, real.device)
        with self.autocast():
            fake = f["generator"](z)  # [N,3,S,S]
        d_loss, parts = self._d_loss("discriminator", real, fake, noise)
        yield "d", d_loss

        set_requires_grad([n["discriminator"]], False)
        with self.autocast():
            g_loss = self.gan.generator_loss(n["discriminator"], fake, real)
        yield "g", g_loss
        set_requires_grad([n["discriminator"]], True)
        return {k: v.detach().float() for k, v in {"g": g_loss, "d": d_loss, **parts}.items()}

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        z = batch["noise"]
        images = generator(z)
        cols = 4
        rows = [list(images[i:i + cols]) for i in range(0, len(images), cols)]
        return rows, None
