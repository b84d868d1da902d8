"""Generators and discriminators: shapes, ranges, rebuild-from-config, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from styleforge.photo.album import album_paths
from styleforge.runtime.imageio import open_image, to_uint8_array
from styleforge.train.models.colour import ColourGenerator
from styleforge.train.models.dcgan import DCGANDiscriminator, DCGANGenerator
from styleforge.train.models.mobile import PRESETS, MobileGenerator
from styleforge.train.models.patchgan import PatchGANDiscriminator
from styleforge.train.models.recipe import RecipeGenerator
from styleforge.train.models.registry import (
    DISCRIMINATORS,
    GENERATORS,
    build_discriminator,
    build_generator,
)
from styleforge.train.models.resnet import ResnetGenerator


@pytest.fixture(scope="module")
def photo_batch() -> torch.Tensor:
    """Two real photos, centre-cropped to 64x64 and mapped to [-1, 1]: [2, 3, 64, 64]."""
    crops = []
    for path in album_paths()[:2]:
        rgb = to_uint8_array(open_image(path).rgb)
        h, w = rgb.shape[:2]
        top, left = (h - 64) // 2, (w - 64) // 2
        crops.append(rgb[top : top + 64, left : left + 64])
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    assert x.shape == (2, 3, 64, 64)
    return x


def capture_features(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of ``model.distill_points`` for input ``x`` (what feature distillation matches)."""
    modules = dict(model.named_modules())
    feats: dict[str, torch.Tensor] = {}
    hooks = [
        modules[name].register_forward_hook(lambda m, i, o, name=name: feats.__setitem__(name, o))
        for name in model.distill_points
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert set(feats) == set(model.distill_points)
    return feats


def test_registries_are_explicit():
    assert GENERATORS == {"colour": ColourGenerator, "resnet": ResnetGenerator, "mobile": MobileGenerator,
                          "dcgan": DCGANGenerator, "recipe": RecipeGenerator}
    assert DISCRIMINATORS == {"patchgan": PatchGANDiscriminator, "dcgan": DCGANDiscriminator}
    with pytest.raises(KeyError, match="unknown generator 'nope'"):
        build_generator("nope")
    with pytest.raises(TypeError, match="generator 'resnet'"):
        build_generator("resnet", bogus=1)


@pytest.mark.parametrize(
    "name, kwargs",
    [("resnet", dict(ngf=8, n_blocks=2)), ("mobile", dict(preset="nano")), ("dcgan", dict(latent_dim=16))],
)
def test_generator_rebuilds_from_config_with_same_weights(name, kwargs):
    torch.manual_seed(0)
    model = build_generator(name, **kwargs)
    assert model.arch_name == name
    clone = build_generator(model.arch_name, **model.config)
    clone.load_state_dict(model.state_dict())  # same architecture: every key and shape fits
    assert clone.config == model.config


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_resnet_shapes_and_range(photo_batch, norm):
    torch.manual_seed(0)
    model = ResnetGenerator(ngf=8, n_blocks=3, norm=norm).eval()
    with torch.no_grad():
        y = model(photo_batch)
    assert y.shape == photo_batch.shape and y.dtype == torch.float32
    assert y.abs().max() <= 1.0
    assert len(model.distill_points) == 3
    feats = capture_features(model, photo_batch)
    assert all(f.shape == (2, 32, 16, 16) for f in feats.values())  # 4*ngf at H/4


def test_resnet_residual_starts_as_identity_and_learns_a_correction(photo_batch):
    torch.manual_seed(0)
    model = ResnetGenerator(ngf=8, n_blocks=2, norm="none", residual=True)
    clone = build_generator(model.arch_name, **model.config)  # checkpoints rebuild it
    assert clone.residual and not isinstance(clone.head[-1], torch.nn.Tanh)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(photo_batch), photo_batch, rtol=0, atol=1e-6)
    # One step towards a brighter target moves the output off the identity, within range.
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.nn.functional.l1_loss(model(photo_batch), (photo_batch + 0.2).clamp(-1, 1)).backward()
    opt.step()
    with torch.no_grad():
        y = model.eval()(photo_batch)
    assert y.abs().max() <= 1.0 and (y - photo_batch).mean() > 0.005
    with pytest.raises(ValueError, match="residual"):
        ResnetGenerator(out_channels=1, residual=True)


def test_resnet9_parameter_count_matches_cyclegan():
    assert sum(p.numel() for p in ResnetGenerator().parameters()) == 11_378_179


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_mobile_untrained_is_identity_on_a_photo(photo_batch, preset):
    model = MobileGenerator(preset=preset).eval()
    with torch.no_grad():
        y = model(photo_batch)
    # Zero-initialised head: the student starts as the identity, so training learns the look as
    # a correction of the photo rather than from scratch.
    torch.testing.assert_close(y, photo_batch, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (64, 64), (48, 80), (96, 32)])
def test_mobile_works_at_multiples_of_stride(size):
    torch.manual_seed(0)
    model = MobileGenerator(preset="nano")
    torch.nn.init.normal_(model.head.weight, std=0.5)  # make the output depend on the features
    model.eval()
    x = torch.rand(1, 3, *size) * 2 - 1
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert not torch.allclose(y, x)


@pytest.mark.parametrize("size", [(60, 64), (64, 4), (1, 1)])
def test_mobile_rejects_sizes_off_the_stride(size):
    model = MobileGenerator(preset="nano")
    assert model.stride == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 3, *size))


def test_mobile_rejects_bad_settings():
    with pytest.raises(ValueError, match="preset"):
        MobileGenerator(preset="huge")
    with pytest.raises(ValueError, match="upsample"):
        MobileGenerator(upsample="pixelshuffle")
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        MobileGenerator(preset="nano")(torch.zeros(3, 64, 64))


def test_mobile_distill_points_and_presets_scale():
    sizes = {}
    for preset in ("nano", "small", "medium"):
        model = MobileGenerator(preset=preset)
        sizes[preset] = sum(p.numel() for p in model.parameters())
        assert 2 <= len(model.distill_points) <= 4
        for name, feature in capture_features(model, torch.zeros(1, 3, 64, 64)).items():
            stride = model.distill_strides[name]
            assert feature.shape[-2:] == (64 // stride, 64 // stride), name
    assert sizes["nano"] < sizes["small"] < sizes["medium"]


def test_mobile_training_clip_passes_gradient_when_saturated():
    model = MobileGenerator(preset="nano").train()
    x = torch.full((1, 3, 16, 16), 0.99)
    with torch.no_grad():
        model.head.bias.fill_(0.5)  # push every pixel past +1
    y = model(x)
    assert y.max() <= 1.0
    # Target inside the range: the straight-through clip still tells the head to go down.
    torch.nn.functional.l1_loss(y, torch.zeros_like(y)).backward()
    assert model.head.bias.grad is not None and (model.head.bias.grad > 0).all()


def test_dcgan_generator_makes_64px_images():
    torch.manual_seed(0)
    model = DCGANGenerator().eval()
    assert model.latent_dim == 100
    with torch.no_grad():
        y = model(torch.randn(3, 100))
    assert y.shape == (3, 3, 64, 64)
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0


@pytest.mark.parametrize(
    "name, kwargs, size, out_shape",
    [
        ("patchgan", {}, 256, (2, 1, 30, 30)),  # the 70x70 PatchGAN: 30x30 logits at 256
        ("patchgan", dict(ndf=8, norm="none", spectral_norm=True), 64, (2, 1, 6, 6)),
        ("patchgan", dict(ndf=8, n_layers=2, norm="batch"), 64, (2, 1, 14, 14)),
        ("patchgan", dict(ndf=8, in_channels=6), 64, (2, 1, 6, 6)),
        ("dcgan", {}, 64, (2, 1)),
    ],
)
def test_discriminator_shapes(name, kwargs, size, out_shape):
    torch.manual_seed(0)
    model = build_discriminator(name, **kwargs)
    assert model.arch_name == name
    channels = kwargs.get("in_channels", 3)
    logits = model(torch.rand(2, channels, size, size) * 2 - 1)
    assert logits.shape == out_shape
    # Raw logits, not probabilities: unbounded, so not squashed into [0, 1].
    assert torch.isfinite(logits).all()
    assert isinstance(build_discriminator(name, **model.config), type(model))


def test_spectral_norm_bounds_the_weights():
    torch.manual_seed(0)
    model = PatchGANDiscriminator(ndf=8, norm="none", spectral_norm=True).train()
    for _ in range(5):  # power iterations converge over forward passes
        model(torch.rand(1, 3, 64, 64))
    conv = model.model[0]
    with torch.no_grad():
        w = conv.weight.flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.1)
