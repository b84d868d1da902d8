"""MAC counter against hand calculations and the published CycleGAN / GAN Compression figures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styleforge.train.models.mobile import MobileGenerator
from styleforge.train.models.profile import count_macs, count_params, profile
from styleforge.train.models.resnet import ResnetGenerator


def test_single_conv_matches_hand_count():
    model = nn.Conv2d(3, 16, 3, stride=2, padding=1)
    # Output 16 x 32 x 32, each a dot product of 3 * 3 * 3 weights.
    assert count_macs(model, (64, 64)) == 16 * 32 * 32 * 3 * 3 * 3
    assert count_params(model) == 16 * 3 * 9 + 16


def test_depthwise_transposed_and_linear_layers():
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_macs(nn.Sequential(nn.Conv2d(3, 8, 1), depthwise), (10, 10)) == 8 * 100 * 3 + 8 * 100 * 9
    up = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1))
    # exact: every input element (4 x 8 x 8) meets every tap of its 2 output kernels (3 x 3)
    assert count_macs(up, (8, 8)) == 4 * 64 * 3 + 4 * 64 * 2 * 9
    # torchprofile: a direct conv over the zero-stuffed input (output 2 x 16 x 16, 4 in, 3 x 3)
    assert count_macs(up, (8, 8), convention="torchprofile") == 4 * 64 * 3 + 2 * 256 * 4 * 9

    class Latent(nn.Module):
        latent_dim = 10

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 7)

        def forward(self, z):
            return self.fc(z)

    assert count_macs(Latent()) == 70
    with pytest.raises(ValueError, match="convention"):
        count_macs(up, (8, 8), convention="thop")


def test_cyclegan_resnet9_reference():
    model = ResnetGenerator(ngf=64, n_blocks=9)
    # Hand count of the exact multiply-adds at 256x256 (the two 7x7 convs, two stride-2 convs,
    # 18 trunk convs at 64x64x256 and two transposed convs counted per input element).
    hand = 2 * 65536 * 64 * 3 * 49 + 4 * 16384 * 128 * 64 * 9 + 18 * 4096 * 256 * 256 * 9
    assert count_macs(model, (256, 256)) == hand  # 49.55 GMAC
    # GAN Compression's table: CycleGAN 56.8 GMAC at 256 (torchprofile convention), 11.38 M params.
    stats = profile(model, (256, 256), convention="torchprofile")
    assert stats["gmacs"] == pytest.approx(56.8, rel=0.02)
    assert stats["params"] / 1e6 == pytest.approx(11.38, rel=0.01)


def test_mobile_presets_fit_their_mac_budgets():
    gmacs = {p: profile(MobileGenerator(preset=p), (512, 512))["gmacs"] for p in ("nano", "small", "medium")}
    assert gmacs["small"] <= 1.0
    assert gmacs["nano"] < gmacs["small"] / 3
    assert 2.0 <= gmacs["medium"] <= 3.0
    # MACs of a fully convolutional model scale with the pixel count.
    assert count_macs(MobileGenerator(preset="small"), (256, 256)) * 4 == pytest.approx(gmacs["small"] * 1e9, rel=1e-9)


def test_count_macs_restores_training_mode():
    model = MobileGenerator(preset="nano").train()
    count_macs(model, (16, 16))
    assert model.training
    assert not any(m._forward_hooks for m in model.modules())
    assert torch.is_grad_enabled()
