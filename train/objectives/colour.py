"""Unpaired look learning with the colour generator: adversarial, anchored to classical transfer.

``ColourObjective`` trains :class:`~styleforge.train.models.colour.ColourGenerator` against a
small spectral-norm PatchGAN on crops of the two folders (LSGAN by default; every
:class:`~styleforge.train.losses.GANLoss` kind and R1 work). The generator loss is::

    lambda_gan * adversarial
  + lambda_anchor * |G(x) - G_init(x)|      pull toward the classical fit it started from
  + lambda_structure * (1 - corr(luma))     keep the photo's structure (not a cycle: noir drops colour)
  + lambda_tv * TV(LUT) + lambda_mono * monotonicity(LUT)
  + lambda_local * |local residual|         keep the local branch off unless the look needs it

1. :meth:`prepare` fits the start from the two folders (``model.init``: ``evidence``, the
   default, :mod:`styleforge.photo.evidence`: a colour matrix and bias around the levels fit,
   weighed by how well the folders' scene groups agree on how far the photos reach in every
   colour direction, then tone curves kept as far as the groups agree; for (toned) black-and-white
   style photos the luma mix, scaled per channel, around the grey-levels fit; with fewer than
   :data:`~styleforge.photo.evidence.MIN_GROUPS` groups a side the plain levels (grey levels) fit;
   or ``levels``, ``mkl``, ``mkl+hist``, ``hist``, ``identity``) and
   bakes it into the generator's curves and matrix; a frozen copy (``generator_init``) is the anchor.
2. At every checkpoint the EMA generator, shrunk toward the start weight by weight
   (``start + t * (EMA - start)``: ``t`` the evidence's freedom with ``model.freedom=evidence``,
   the default, else ``model.shrink``, 0.25; the anchor weighs ``lambda_anchor * (1 - t)`` then), is a *candidate*;
   candidates (the initialisation first) are scored without ground truth on validation photos
   (``DATA/val/content`` and ``DATA/val/style`` when make-dataset wrote them, else the training
   folders): the sliced Wasserstein distance in CIELAB between outputs and style photos, plus a
   structure penalty. ``generator_selected``, which :func:`~styleforge.train.checkpoint.load_generator`
   loads by default, is the last candidate (``model.select=last``, the default) or the
   criterion's best (``model.select=criterion``). Shrinkage is the default because the criterion
   did not pick well on eval-looks while the shrunk last EMA gained on the start on average and
   lost little at worst (README, "How an unpaired look is learned").
3. :meth:`finish` judges the selected model with :mod:`styleforge.photo.verdict` (collapse, structure,
   do-nothing) and returns the verdict, which the trainer writes to ``RUN/verdict.json``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from styleforge.photo import baselines
from styleforge.photo.evidence import MIN_GROUPS, fit_by_evidence, group_pixels
from styleforge.photo.photos import load_photos
from styleforge.photo.scenes import group_folder
from styleforge.photo.verdict import assess, structure_similarity
from styleforge.runtime.imageio import list_images
from styleforge.train.config import COLOUR_INITS
from styleforge.train.degeneracy import run_on
from styleforge.train.losses import lut_regulariser, structure_loss
from styleforge.train.models.registry import build_discriminator, build_generator
from styleforge.train.objectives.gan import Objective, adam, set_requires_grad

VALIDATION_SHORT_SIDE = 192  # validation photos are scored at this short side (speed)
MAX_VALIDATION = 12  # photos per side


def _frozen(module: nn.Module) -> nn.Module:
    module = copy.deepcopy(module).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def scene_labels(photos) -> list[str]:
    """The scene group of each photo path (``groups.json`` beside them, else EXIF time, else its own)."""
    photos = [Path(p) for p in photos]
    grouping = group_folder(photos, photos[0].parent if photos else None)
    by_photo = {p: g.name for g in grouping.groups for p in g.photos}
    return [by_photo.get(p, p.stem) for p in photos]


def validation_images(content_dir: str, dataset) -> tuple[list, list, str]:
    """(content uint8 HWC list, style list, where from): ``DATA/val/*`` if present, else training photos."""
    val = Path(content_dir).parent / "val"
    if (val / "content").is_dir() and (val / "style").is_dir():
        content = load_photos(list_images(val / "content"), MAX_VALIDATION, VALIDATION_SHORT_SIDE)
        style = load_photos(list_images(val / "style"), MAX_VALIDATION, VALIDATION_SHORT_SIDE)
        if len(content) >= 2 and len(style) >= 1:
            return content, style, f"validation split {val}"
    return (load_photos(dataset.content_images, MAX_VALIDATION, VALIDATION_SHORT_SIDE),
            load_photos(dataset.style_images, MAX_VALIDATION, VALIDATION_SHORT_SIDE),
            "training photos (no validation split beside the data)")


class ColourObjective(Objective):
    """``batch = {"content": [N,3,P,P], "style": [N,3,P,P]}`` in [-1, 1] (unpaired crops)."""

    def __init__(self, config):
        super().__init__(config)
        m = config.model
        generator = build_generator(m.generator, **m.generator_kwargs)
        self.networks = {
            "generator": generator,
            "discriminator": build_discriminator(m.discriminator, **m.discriminator_kwargs),
            "generator_init": _frozen(generator),  # the classical fit: anchor and first candidate
            "generator_selected": _frozen(generator),  # the best candidate so far
        }
        self.optimizers = {
            "g": adam(generator.parameters(), config.optim.lr_g, config),
            "d": adam(self.networks["discriminator"].parameters(), config.optim.lr_d, config),
        }
        self.selection: list[dict] = []  # one row per candidate: step, swd, structure, score
        self.expected_change: Optional[float] = None
        self.init_fit: Optional[str] = None  # the classical start actually used (model.init, or grey levels)
        self.evidence: Optional[dict] = None  # photo.evidence's summary when model.init=evidence
        self.shrink, self.anchor_weight = float(config.model.shrink), float(config.loss.lambda_anchor)
        self._validation = None
        self._dataset = None

    # -- initialisation from the classical fit ---------------------------------------------------
    def prepare(self, dataset, fresh: bool) -> None:
        self._dataset = dataset
        if not fresh:  # resumed: weights, anchor and selection come from the checkpoint
            return
        init = self.config.model.init
        if init not in COLOUR_INITS:
            raise ValueError(f"model.init must be one of {', '.join(COLOUR_INITS)}, got {init!r}")
        generator = self.networks["generator"]
        content_photos = load_photos(dataset.content_images, limit=len(dataset.content_images))
        style_photos = load_photos(dataset.style_images, limit=len(dataset.style_images))
        content, style = baselines.pixels01(content_photos), baselines.pixels01(style_photos)
        matrix, bias, post, pre = np.eye(3), np.zeros(3), None, None
        knots = np.linspace(0.0, 1.0, generator.pre.knots)
        # A look whose photos are (toned) black and white drops the colour: per-channel fits
        # cannot, so the levels start becomes grey levels (luma, then each channel's black and
        # white points), and so does the evidence start's prior (or the start itself with too few
        # scene groups). Decided from the style folder alone, the same way for any look.
        # How much the folders differ, for the do-nothing check, is the change the (grey) levels
        # fit makes: the fit least fooled by different scenes (MKL would call a scene difference
        # a look), whichever start model.init chose.
        self.init_fit = init
        monochrome = init in ("levels", "evidence") and baselines.is_monochrome(style)
        if monochrome:
            self.init_fit = "grey levels (monochrome style)"
            matrix = np.tile(baselines.GREY, (3, 1))
            scale, offset = baselines.grey_levels_fit(content, style)
            post = knots[None, :] * scale[:, None] + offset[:, None]  # [3, knots]
            change = np.clip((content @ baselines.GREY)[:, None] * scale + offset, 0, 1) - content
        else:
            scale, offset = baselines.levels_fit(content, style)
            change = np.clip(content * scale + offset, 0, 1) - content
            if init == "levels":
                pre = knots[None, :] * scale[:, None] + offset[:, None]  # [3, knots]
        if init == "evidence":
            fit = fit_by_evidence(
                group_pixels(content_photos, scene_labels(dataset.content_paths)),
                group_pixels(style_photos, scene_labels(dataset.style_paths)),
                knots=generator.pre.knots, seed=self.config.seed, monochrome=monochrome)
            self.evidence = fit.describe()
            if fit.enough:  # a monochrome style's affine stage starts from grey levels, and may leave them
                matrix, bias, post, pre = fit.matrix, fit.bias, fit.post, fit.pre
                self.init_fit = "evidence (grey-levels prior: monochrome style)" if monochrome else "evidence"
            elif not monochrome:  # too few scene groups to weigh: the levels start (and the fixed shrink) exactly
                self.init_fit = f"levels (fewer than {MIN_GROUPS} scene groups a side: no evidence to weigh)"
                pre = knots[None, :] * scale[:, None] + offset[:, None]  # [3, knots]
        if init in ("mkl", "mkl+hist"):
            matrix, bias = baselines.mkl_fit(content, style)
        if init in ("mkl+hist", "hist"):
            mapped = np.clip(content @ matrix.T + bias, 0.0, 1.0)
            post = baselines.quantile_curves(mapped, style, generator.post.knots)
        generator.init_from(matrix, bias, post, pre)
        for name in ("generator_init", "generator_selected"):
            self.networks[name].load_state_dict(generator.state_dict())
        self.expected_change = float(np.abs(change).mean() * 255.0)
        self._set_freedom()

    def _set_freedom(self) -> None:
        """How far the adversarial step may move: ``shrink`` (the fraction of its change a candidate
        keeps) and ``anchor_weight``. ``model.freedom=evidence`` with the evidence start: both from
        the start's freedom (the evidence's kept fraction of its matrix and curve stages); else
        ``model.shrink`` and ``loss.lambda_anchor`` as configured."""
        m, lw = self.config.model, self.config.loss
        if m.freedom == "evidence" and self.evidence is not None and self.evidence.get("enough", True):
            freedom = float(self.evidence["freedom"])
            self.shrink, self.anchor_weight = freedom, lw.lambda_anchor * (1.0 - freedom)
        else:
            self.shrink, self.anchor_weight = float(m.shrink), float(lw.lambda_anchor)

    # -- one step ----------------------------------------------------------------------------
    def phases(self, batch, noise=None):
        real_a, real_b = batch["content"], batch["style"]  # [N,3,P,P] each
        f, n, lw = self.forward, self.networks, self.config.loss
        generator = n["generator"]
        set_requires_grad([n["discriminator"]], False)
        with self.autocast():
            fake_b, local_residual = f["generator"](real_a, with_local=True)
            g_gan = self.gan.generator_loss(n["discriminator"], fake_b, real_b)
        fake32 = fake_b.float()
        with torch.no_grad():
            anchor_target = n["generator_init"](real_a)
        anchor = (fake32 - anchor_target).abs().mean()
        structure = structure_loss(fake32, real_a.float())
        tv, mono = lut_regulariser(generator.lattices())
        loss_g = (lw.lambda_gan * g_gan + self.anchor_weight * anchor + lw.lambda_structure * structure
                  + lw.lambda_tv * tv + lw.lambda_mono * mono)
        losses = {"g_gan": g_gan, "anchor": anchor, "structure": structure, "lut_tv": tv, "lut_mono": mono}
        if local_residual is not None:
            local = local_residual.abs().mean()
            loss_g = loss_g + lw.lambda_local * local
            losses["local"] = local
        yield "g", loss_g
        set_requires_grad([n["discriminator"]], True)
        d_loss, parts = self._d_loss("discriminator", real_b, fake_b, noise)
        yield "d", d_loss
        losses.update(d=d_loss, **parts)
        return {k: v.detach().float() for k, v in losses.items()}

    # -- model selection without ground truth -------------------------------------------------
    def _score(self, generator: nn.Module) -> dict:
        content, style, _ = self._validation
        outputs = run_on(generator, content)
        out_px = np.concatenate([o.reshape(-1, 3) for o in outputs]).astype(np.float64) / 255.0
        style_px = np.concatenate([s.reshape(-1, 3) for s in style]).astype(np.float64) / 255.0
        swd = baselines.sliced_wasserstein_lab(out_px, style_px)
        structure = float(np.mean([structure_similarity(c, o) for c, o in zip(content, outputs)]))
        # A structure deficit of 0.01 costs as much as 0.5 Lab units of colour distance.
        return {"swd_lab": round(swd, 4), "structure": round(structure, 4),
                "score": round(swd + 50.0 * max(0.0, 0.98 - structure), 4)}

    def on_checkpoint(self, step, ema_generator) -> None:
        if self._validation is None:
            d = self.config.data
            self._validation = validation_images(d.content_dir, self._dataset)
        if not self.selection:  # the classical initialisation is the first candidate
            self.selection.append({"step": 0, "candidate": "init", **self._score(self.networks["generator_init"])})
        if any(row["step"] == step for row in self.selection):
            return
        candidate = self._shrunk(ema_generator)
        row = {"step": step, "candidate": "ema", **self._score(candidate)}
        best = min(self.selection, key=lambda r: r["score"])
        self.selection.append(row)
        if row["score"] < best["score"] or self.config.model.select == "last":
            self.networks["generator_selected"].load_state_dict(candidate.state_dict())

    def selected(self) -> dict:
        if self.config.model.select == "last" and len(self.selection) > 1:
            return max(self.selection, key=lambda r: r["step"])
        return min(self.selection, key=lambda r: r["score"]) if self.selection else {}

    def _shrunk(self, generator: nn.Module) -> nn.Module:
        """``start + model.shrink * (generator - start)``, weight by weight (the generator itself at 1).

        Curves stay monotone (their increments are softplus of the interpolated raw weights)."""
        t = self.shrink
        if t == 1.0:
            return generator
        start = self.networks["generator_init"].state_dict()
        mixed = {k: start[k] + t * (v.to(start[k].device) - start[k]) for k, v in generator.state_dict().items()}
        candidate = copy.deepcopy(self.networks["generator_init"])
        candidate.load_state_dict(mixed)
        return candidate

    def finish(self, run_dir, ema_generator, step):
        self.on_checkpoint(step, ema_generator)
        content, _, source = self._validation
        outputs = run_on(self.networks["generator_selected"], content)
        verdict = assess(content, outputs, expected_change_levels=self.expected_change)
        return {"verdict": verdict, "selection": self.selection, "selected": self.selected(),
                "validation": source, "init_fit": self.init_fit, "evidence": self.evidence,
                "shrink": round(self.shrink, 4), "anchor_weight": round(self.anchor_weight, 4)}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "selection": list(self.selection),
                "expected_change": self.expected_change, "init_fit": self.init_fit, "evidence": self.evidence}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.selection = list(state.get("selection", []))
        self.expected_change = state.get("expected_change")
        self.init_fit = state.get("init_fit")
        self.evidence = state.get("evidence")
        self._set_freedom()

    @torch.no_grad()
    def sample_rows(self, batch, generator):
        init = self.networks["generator_init"]
        rows = [[x, init(x[None])[0], generator(x[None])[0]] for x in batch["content"]]
        return rows, ["input", "classical init", "output"]
