"""The torch look operators against the runtime's numpy ones, their gradients, and the recipe stack.

Album photos at a small, odd size (so the pyramid's odd-row padding is exercised), float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.runtime import look_ops
from styleforge.runtime.lut import identity_table
from styleforge.train.models import recipe_ops

ALBUM = Path(__file__).resolve().parents[2] / "data" / "album"
PHOTOS = ("donna.jpg", "snow.jpg")
AGREEMENT_ATOL = 1e-4  # float32; measured max |torch - numpy| is below 1e-6 for every op


def load(name: str, size: tuple[int, int]) -> np.ndarray:
    image = Image.open(ALBUM / name).convert("RGB").resize(size, Image.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [load(PHOTOS[0], (131, 97)), load(PHOTOS[1], (97, 145))]


def to_nchw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach()[0].permute(1, 2, 0).numpy()


def random_params(name: str, rng: np.random.Generator, middle: bool = False) -> dict[str, float]:
    """Uniform in each range (``middle``: in its middle half, away from clamps and sub-pixel radii)."""
    lo_q, hi_q = (0.25, 0.75) if middle else (0.0, 1.0)
    return {key: float(lo + (hi - lo) * rng.uniform(lo_q, hi_q))
            for key, (lo, hi, _) in look_ops.PARAMS[name].items()}


def random_table(rng: np.random.Generator, size: int = 9) -> np.ndarray:
    return (identity_table(size) ** rng.uniform(0.7, 1.3, 3) + rng.normal(0, 0.02, (size,) * 3 + (3,))).astype(np.float32)


@pytest.mark.parametrize("name", sorted(look_ops.OPS))
def test_torch_matches_numpy(photos, name):
    rng = np.random.default_rng(sorted(look_ops.OPS).index(name))
    worst = 0.0
    for x in photos:
        for _ in range(3):
            params = random_params(name, rng)
            extra = {"table": random_table(rng)} if name == "colour_lut" else {}
            extra.update({"seed": int(rng.integers(1000))} if name == "grain" else {})
            expected = look_ops.OPS[name](x, **params, **extra)
            torch_args = {k: torch.tensor(v) for k, v in params.items()}
            torch_args.update({k: torch.from_numpy(v) if k == "table" else v for k, v in extra.items()})
            got = to_hwc(recipe_ops.OPS[name](to_nchw(x), **torch_args))
            worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= AGREEMENT_ATOL, (name, worst)


@pytest.mark.parametrize("sigma", [0.0, 0.001, 0.004, 0.02, 0.1, 0.4])
def test_blur_matches_numpy(photos, sigma):
    from styleforge.runtime.look_blur import gaussian_blur

    x = photos[0]
    got = to_hwc(recipe_ops.gaussian_blur(to_nchw(x), torch.tensor(sigma)))
    np.testing.assert_allclose(got, gaussian_blur(x, sigma), atol=AGREEMENT_ATOL, rtol=0)


@pytest.mark.parametrize("name", sorted(look_ops.OPS))
def test_every_parameter_gets_a_finite_nonzero_gradient(photos, name):
    rng = np.random.default_rng(11)
    op = recipe_ops.OpModule(name, seed=5, lut_size=9)
    op.set_params(**random_params(name, rng, middle=True))
    x = to_nchw(photos[0])
    weights = torch.from_numpy(rng.normal(size=x.shape).astype(np.float32))
    (op(x) * weights).mean().backward()
    grads = {key: p.grad for key, p in op.named_parameters()}
    assert grads, name
    for key, grad in grads.items():
        assert grad is not None and torch.all(torch.isfinite(grad)), (name, key)
        assert float(grad.abs().sum()) > 0.0, (name, key)


def test_op_module_maps_into_the_range_and_reads_back():
    op = recipe_ops.OpModule("vignette")
    assert op.params() == pytest.approx(look_ops.defaults("vignette"), abs=1e-6)
    with torch.no_grad():
        for raw in op.raw.values():
            raw.fill_(40.0)  # far beyond: the values saturate at the top of the range
    for key, value in op.params().items():
        assert value == pytest.approx(look_ops.PARAMS["vignette"][key][1], abs=1e-5)
    op.set_params(amount=-0.4, midpoint=0.8)
    assert op.params()["amount"] == pytest.approx(-0.4, abs=1e-5)
    assert op.params()["midpoint"] == pytest.approx(0.8, abs=1e-5)


def test_recipe_stack_is_the_identity_at_init_and_matches_the_runtime_recipe(photos):
    stack = recipe_ops.RecipeStack(list(look_ops.OPS), lut_size=9)
    x = to_nchw(photos[1])
    with torch.no_grad():
        np.testing.assert_allclose(to_hwc(stack(x)), photos[1], atol=1e-6, rtol=0)

    rng = np.random.default_rng(3)
    for op in stack.ops:
        op.set_params(**random_params(op.name, rng, middle=True))
    with torch.no_grad():
        stack.ops[0].table.copy_(torch.from_numpy(random_table(rng)))
        got = to_hwc(stack(x))
    expected = look_ops.apply_recipe(photos[1], stack.recipe())
    assert not np.allclose(expected, photos[1], atol=1e-2)
    np.testing.assert_allclose(got, expected, atol=AGREEMENT_ATOL, rtol=0)


@pytest.mark.parametrize("radius", [0.005, 0.03, 0.05])  # pyramid levels 0, 1 and 2 at 211 x 173
def test_smooth_skin_twins_agree_and_learn_at_every_level(radius):
    """The fast guided filter's statistics live on the blur's level; both twins take them there,
    and amount, radius and edge all get a gradient through them."""
    from styleforge.runtime.look_blur import pyramid_level

    x = load(PHOTOS[0], (211, 173))
    level = pyramid_level(radius * 173, 173, 211)
    assert level == {0.005: 0, 0.03: 1, 0.05: 2}[radius]
    params = {"amount": 0.8, "radius": radius, "edge": 0.04}
    expected = look_ops.smooth_skin(x, **params)
    args = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    out = recipe_ops.smooth_skin(to_nchw(x), **args)
    assert float(np.abs(to_hwc(out) - expected).max()) <= AGREEMENT_ATOL
    weights = torch.from_numpy(np.random.default_rng(1).normal(size=out.shape).astype(np.float32))
    (out * weights).mean().backward()
    for key, value in args.items():
        assert value.grad is not None and torch.isfinite(value.grad) and float(value.grad) != 0.0, key
