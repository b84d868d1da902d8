"""Ship an image-adaptive colour model so each photo gets its own LUT: ``look_adaptive.npz``.

A colour generator with ``adaptive = K > 0`` predicts per-photo parameters from a thumbnail;
``look.cube`` holds one mix only (the median's). This module writes, beside it, the artifact
``lut_adaptive``: ``look_adaptive.npz`` with plain float32 arrays (read with
``allow_pickle=False``) of the thumbnail network and the colour function's parts, and the
network's layer list in the manifest. The runtime (:mod:`styleforge.runtime.adaptive_lut`)
evaluates both in numpy and bakes a LUT per photo.

Two gates on the held-out photos, both against torch, and nothing is written below either:

- ``numpy_vs_torch``: the runtime's numpy colour function with its own predicted parameters vs
  ``model.colour(rgb, model.adaptive_params(u))`` per pixel (no LUT): this catches any drift
  between the two implementations (expected far above the bound: float32 rounding only);
- the fidelity proper: what the runtime outputs (thumbnail -> numpy CNN -> ``bake_size``³ LUT
  -> 8-bit application, rounded) vs torch's colour part with that photo's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from styleforge.export.bundle_writer import with_file_facts
from styleforge.export.lut_common import LutExportError, lut_tensor_spec, score
from styleforge.runtime import adaptive_lut as ral
from styleforge.runtime.contract import Artifact
from styleforge.train.models.colour import THUMB

ADAPTIVE_BOUND_DB = 40.0  # the runtime's per-photo LUT path (and its numpy colour function) vs torch
MIN_BAKE_SIZE = 33  # the per-photo LUT is baked at the .cube's size, at least this


class NotExportable(Exception):
    """The model is image-adaptive but not in the form the runtime evaluates; the message says why."""


def adaptive_parts(model) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], dict[str, Any]]:
    """(float32 arrays, predictor layer list, facts) of a ``ColourGenerator`` with ``adaptive > 0``.

    Raises :class:`NotExportable` for a model without the colour generator's parts or with a
    predictor layer the runtime does not implement.
    """
    from torch import nn

    names = ("pre", "post", "matrix", "bias", "lut", "basis", "predictor")
    missing = [n for n in names if not hasattr(model, n)]
    if missing:
        raise NotExportable(f"{type(model).__name__} lacks the colour generator's {', '.join(missing)}")
    if not isinstance(model.predictor, nn.Sequential):
        raise NotExportable("the predictor is not an nn.Sequential")

    def f32(t) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().float().numpy())

    arrays = {
        "pre": f32(model.pre.values()), "post": f32(model.post.values()), "matrix": f32(model.matrix),
        "bias": f32(model.bias), "lut": f32(model.lut)[0], "basis": f32(model.basis),
    }
    layers: list[dict[str, Any]] = []
    for i, m in enumerate(model.predictor):
        name = f"predictor.{i}"
        if isinstance(m, nn.Conv2d):
            if (m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str)
                    or m.stride[0] != m.stride[1] or m.padding[0] != m.padding[1]):
                raise NotExportable(f"{name}: only square-stride, square-padding, zero-padded plain Conv2d is supported")
            arrays[f"{name}.weight"] = f32(m.weight)
            if m.bias is not None:
                arrays[f"{name}.bias"] = f32(m.bias)
            layers.append({"op": "conv2d", "weight": f"{name}.weight", "bias": f"{name}.bias" if m.bias is not None else None,
                           "stride": int(m.stride[0]), "padding": int(m.padding[0])})
        elif isinstance(m, nn.Linear):
            arrays[f"{name}.weight"] = f32(m.weight)
            if m.bias is not None:
                arrays[f"{name}.bias"] = f32(m.bias)
            layers.append({"op": "linear", "weight": f"{name}.weight", "bias": f"{name}.bias" if m.bias is not None else None})
        elif isinstance(m, nn.LeakyReLU):
            layers.append({"op": "leaky_relu", "slope": float(m.negative_slope)})
        elif isinstance(m, nn.ReLU):
            layers.append({"op": "relu"})
        elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            layers.append({"op": "global_avg_pool"})
        elif isinstance(m, nn.Flatten):
            layers.append({"op": "flatten"})
        else:
            raise NotExportable(f"{name}: the runtime has no numpy {type(m).__name__}")

    facts = {"basis": int(model.adaptive), "lattice_size": int(arrays["lut"].shape[-1]),
             "curve_knots": int(arrays["pre"].shape[1]), "thumbnail": int(THUMB)}
    return arrays, layers, facts


def write_adaptive_artifact(bundle: Path, model, heldout_u8: np.ndarray, *, lut_size: int,
                            bound_db: float = ADAPTIVE_BOUND_DB) -> Artifact:
    """Write ``look_adaptive.npz`` into ``bundle`` and gate it (see the module doc); returns the
    ``lut_adaptive`` artifact. Raises :class:`NotExportable` (nothing written) or
    :class:`LutExportError` with the figures (the file removed)."""
    arrays, layers, facts = adaptive_parts(model)
    bake_size = max(int(lut_size), MIN_BAKE_SIZE)
    spec = {"function": ral.FUNCTION, "thumbnail": facts["thumbnail"],
            "thumbnail_resample": "area: box average over torch adaptive_avg_pool bins", "predictor": layers,
            "params": f"[{facts['basis']} basis weights, 3 gain, 3 offset]",
            "gain_offset": f"u * (1 + {ral.GAIN_SCALE} tanh(gain)) + {ral.OFFSET_SCALE} tanh(offset)",
            "lattice": "lut [3, S, S, S] and basis [K, 3, S, S, S] indexed [c, b, g, r]",
            "bake_size": bake_size, **facts}
    look = ral.AdaptiveLook(arrays, layers, facts["thumbnail"])
    figures = _gate(model, look, heldout_u8, bake_size)
    figures["bound_psnr"] = bound_db
    worst = min(figures["psnr"], figures["numpy_vs_torch"]["psnr"])
    if worst < bound_db:
        raise LutExportError(
            f"lut_adaptive: the runtime's per-photo LUT reaches {figures['psnr']:.2f} dB (its numpy colour function "
            f"{figures['numpy_vs_torch']['psnr']:.2f} dB) vs torch on {figures['images']} held-out photos, below "
            f"the bound of {bound_db:g} dB (max abs {figures['max_abs']:.1f}/255); no {ral.ADAPTIVE_FILE} written")
    figures["verified"] = True
    path = Path(bundle) / ral.ADAPTIVE_FILE
    np.savez(path, **arrays)
    with np.load(path, allow_pickle=False) as npz:  # what the runtime will read: plain arrays, same values
        if sorted(npz.files) != sorted(arrays) or any(not np.array_equal(npz[k], v) for k, v in arrays.items()):
            path.unlink()
            raise LutExportError(f"{path}: the arrays read back differ from those written")
    art = Artifact(key=ral.ADAPTIVE_KEY, file=ral.ADAPTIVE_FILE, format=ral.ADAPTIVE_FORMAT, precision="fp32",
                   input=lut_tensor_spec("rgb"), output=lut_tensor_spec("styled"), fidelity=figures, extra=spec)
    return with_file_facts(Path(bundle), art)


def _gate(model, look: ral.AdaptiveLook, photos_u8: np.ndarray, bake_size: int) -> dict[str, Any]:
    import torch

    x = photos_u8.astype(np.float32) / 255.0  # [N, H, W, 3]
    with torch.no_grad():
        params_t = model.adaptive_params(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
        torch_colour = np.stack([
            model.colour(torch.from_numpy(p.reshape(-1, 3)), params_t[i : i + 1]).numpy().reshape(p.shape)
            for i, p in enumerate(x)])
    params_np = np.stack([look.params(p) for p in photos_u8])
    numpy_colour = np.stack([look.colour(p.reshape(-1, 3), q).reshape(p.shape) for p, q in zip(x, params_np)])
    runtime = np.stack([ral.apply_lut(look.bake(q, bake_size), p, threads=1)
                        for p, q in zip(photos_u8, params_np)]).astype(np.float32) / 255.0
    figures: dict[str, Any] = score(torch_colour, runtime)
    figures.update(
        compared_with="torch colour part with each photo's predicted parameters (float32); runtime output rounded to 8 bits",
        runtime_path=f"thumbnail -> numpy predictor -> {bake_size}^3 LUT per photo -> 8-bit trilinear",
        numpy_vs_torch={**score(torch_colour, numpy_colour), "params_max_abs": float(np.abs(params_np - params_t.numpy()).max())},
        params_spread=[round(float(v), 6) for v in params_np.std(axis=0)],  # 0 everywhere: every photo gets one mix
    )
    return figures


def note_for(artifact: Optional[Artifact], reason: str = "") -> dict[str, Any]:
    """What ``lut_cube``'s ``extra.adaptive`` says about the per-photo LUTs."""
    if artifact is not None:
        return {"per_photo": f"{artifact.key} ({artifact.file}): the runtime bakes a LUT per photo; "
                             f"this .cube is for apps that take one LUT"}
    return {"not_shipped": f"the per-photo LUTs ({reason})"}
