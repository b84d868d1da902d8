"""Session fixtures shared by every area's tests.

- ``tiny_generator``: a seeded ``MobileGenerator(preset="nano")`` briefly fitted (~1-2 s) to the
  ``film-warm`` look on 64x64 crops of the album photos, so its output is a real colour
  change of the photo, not the identity and not noise. Eval mode, CPU.
- ``tiny_bundle``: a bundle exported from it at 64x64 with ONNX, all four TFLite variants,
  TorchScript and (where coremltools can write one) Core ML fp32/fp16. Built once per session
  (about 15-20 s, most of it onnx2tf) in a session temp folder; treat it as read-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_SIZE = (64, 64)


def _fit_tiny_generator(steps: int = 60, seed: int = 0):
    import torch

    from styleforge.export import calibration as cal

    torch.manual_seed(seed)
    try:
        from styleforge.train.models.registry import build_generator

        model = build_generator("mobile", preset="nano")
    except ImportError:  # the models package is not there yet: a stand-in of the same contract
        model = _StandIn()
    photos = cal.default_photos()
    crops = cal.calibration_crops(photos, TINY_SIZE, count=100, seed=seed, show_progress=False)
    try:
        from styleforge.photo.looks import apply_look

        targets = np.stack([apply_look("film-warm", c) for c in crops])
    except ImportError:  # a fixed warm tone curve
        targets = np.clip(crops.astype(np.float32) * [1.08, 1.0, 0.86] + [8, 2, -4], 0, 255).astype(np.uint8)
    x = torch.from_numpy(cal.to_model_range(crops)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(cal.to_model_range(targets)).permute(0, 3, 1, 2).contiguous()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (16,), generator=gen)
        loss = torch.nn.functional.l1_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _StandIn():
    import torch
    from torch import nn

    class TinyStudent(nn.Module):
        arch_name = "standin"
        stride = 2

        def __init__(self):
            super().__init__()
            self.config = {}
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(8, 3, 3, padding=1),
            )

        def forward(self, x):
            return torch.clamp(x + self.body(x), -1.0, 1.0)

    return TinyStudent()


@pytest.fixture(scope="session")
def tiny_generator():
    """A fitted nano ``MobileGenerator`` in eval mode: NCHW ``[N, 3, H, W]`` in ``[-1, 1]``."""
    return _fit_tiny_generator()


@pytest.fixture(scope="session")
def tiny_bundle(tiny_generator, tmp_path_factory) -> Path:
    """Path of a 64x64 bundle: onnx, tflite_{fp32,fp16,dynamic_int8,int8}, torchscript (+ coreml)."""
    from styleforge.export.bundle import export_bundle
    from styleforge.export.coreml_export import coreml_available

    formats = ("onnx", "tflite") + (("coreml",) if coreml_available() is None else ())
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_bundle(tiny_generator, out, formats=formats, size=TINY_SIZE, style="film-warm", name="tiny",
                  provenance={"fixture": "tests/conftest.py::tiny_bundle"}, progress=False)
    return out


@pytest.fixture(scope="session")
def recipe_bundle(tmp_path_factory) -> Path:
    """A gated look-recipe bundle (recipe.json + look.cube): clarity, colour_lut, bloom, vignette
    (``benchmarks.recipe_bench.EXAMPLE_STEPS``), its gate run on one held-out photo."""
    from styleforge.benchmarks.recipe_bench import write_example_bundle
    from styleforge.export import calibration as cal

    return write_example_bundle(tmp_path_factory.mktemp("recipe") / "look4", heldout=cal.default_photos()[:1])
