"""GAN losses: sign behaviour, generator direction, penalties on critics with known gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styleforge.train.losses import (
    KINDS,
    GANLoss,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    r1_penalty,
)
from styleforge.train.models.patchgan import PatchGANDiscriminator

HIGH, LOW = torch.full((4, 1, 6, 6), 3.0), torch.full((4, 1, 6, 6), -3.0)


@pytest.mark.parametrize("kind", KINDS)
def test_d_loss_prefers_high_real_and_low_fake(kind):
    loss = GANLoss(kind)
    good = loss.d_loss(HIGH, LOW)
    bad = loss.d_loss(LOW, HIGH)
    assert good.dim() == 0 and good < bad
    # Moving either logit the wrong way makes the critic's loss worse (inside LSGAN's 0..1
    # targets, where every kind is monotonic).
    real, fake = torch.full((4, 1), 0.8), torch.full((4, 1), 0.2)
    assert loss.d_loss(real, fake) < loss.d_loss(real - 0.4, fake)
    assert loss.d_loss(real, fake) < loss.d_loss(real, fake + 0.4)


@pytest.mark.parametrize("kind", KINDS)
def test_g_loss_prefers_fakes_the_critic_calls_real(kind):
    loss = GANLoss(kind)
    real = torch.zeros(4, 1, 6, 6)  # what the critic says of real images (the relativistic kinds use it)
    assert loss.g_loss(HIGH, real) < loss.g_loss(LOW, real)
    fake = torch.zeros(2, 1, 4, 4, requires_grad=True)
    loss.g_loss(fake, real[:2, :, :4, :4]).backward()
    assert (fake.grad < 0).all()  # gradient descent raises the fake logits


@pytest.mark.parametrize("kind", KINDS)
def test_generator_loss_asks_the_critic_and_only_relativistic_kinds_look_at_reals(kind):
    critic = PatchGANDiscriminator(ndf=4, n_layers=1)
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    loss = GANLoss(kind)
    value = loss.generator_loss(critic, fake, real)
    value.backward()
    assert fake.grad.abs().sum() > 0
    with torch.no_grad():
        fake_logits, real_logits = critic(fake), critic(real)
    assert value.item() == pytest.approx(loss.g_loss(fake_logits, real_logits).item(), rel=1e-5)
    moved = loss.generator_loss(critic, fake.detach(), real + 1.0)
    assert (moved.item() != pytest.approx(value.item(), rel=1e-6)) == (kind in ("ralsgan", "rahinge"))
    if loss.relativistic:
        with pytest.raises(ValueError, match="real images"):
            loss.g_loss(fake_logits)


def test_known_values():
    zeros = torch.zeros(3, 1)
    assert GANLoss("bce").d_loss(zeros, zeros).item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    assert GANLoss("lsgan").d_loss(torch.ones(3, 1), zeros).item() == 0.0
    assert GANLoss("hinge").d_loss(torch.ones(3, 1), -torch.ones(3, 1)).item() == 0.0
    assert GANLoss("wgan-gp").d_loss(torch.full((3, 1), 2.0), zeros).item() == -2.0
    # relativistic: real - mean(fake) = 1 and fake - mean(real) = -1 meet LSGAN's targets exactly
    half = torch.full((3, 1), 0.5)
    assert GANLoss("ralsgan").d_loss(half, -half).item() == 0.0
    assert GANLoss("ralsgan").d_loss(zeros, zeros).item() == 2.0
    assert GANLoss("rahinge").g_loss(torch.ones(3, 1), -torch.ones(3, 1)).item() == 0.0
    assert GANLoss("rahinge").g_loss(zeros, zeros).item() == 2.0


def test_config_and_losses_name_the_same_kinds():
    from styleforge.train.config import GAN_LOSSES

    assert GAN_LOSSES == KINDS


def test_multi_scale_outputs_are_averaged():
    loss = GANLoss("lsgan")
    single = loss.d_loss(HIGH, LOW)
    assert loss.d_loss([HIGH, HIGH[..., :3, :3]], [LOW, LOW[..., :3, :3]]) == pytest.approx(single.item())
    assert loss.g_loss([HIGH, LOW]) == pytest.approx(((loss.g_loss(HIGH) + loss.g_loss(LOW)) / 2).item())


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="wgan-gp"):
        GANLoss("wgan")


class LinearCritic(nn.Module):
    """``D(x) = <w, x>`` with ``||w|| = norm``: its input gradient is ``w`` everywhere."""

    def __init__(self, shape, norm: float):
        super().__init__()
        w = torch.randn(*shape)
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_zero_for_unit_gradient_critic():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert gradient_penalty(LinearCritic((3, 8, 8), 1.0), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # ||w|| = 3: every sample's gradient norm is 3, so the penalty is (3 - 1)^2 = 4.
    steep = LinearCritic((3, 8, 8), 3.0)
    gp = gradient_penalty(steep, real, fake)
    assert gp.item() == pytest.approx(4.0, rel=1e-5)
    gp.backward()  # the penalty trains the critic: it pushes ||w|| down
    assert (steep.w.grad * steep.w).sum() > 0


def test_gradient_penalty_on_patchgan_is_finite_and_differentiable():
    torch.manual_seed(0)
    critic = PatchGANDiscriminator(ndf=4, n_layers=2, norm="none")
    gp = gradient_penalty(critic, torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32),
                          generator=torch.Generator().manual_seed(1))
    gp.backward()
    assert torch.isfinite(gp) and gp > 0
    assert critic.model[0].weight.grad is not None


def test_r1_penalty():
    real = torch.rand(2, 3, 8, 8)

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor(0.7))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 1)

    assert r1_penalty(Constant(), real).item() == 0.0
    assert r1_penalty(lambda x: 0.0 * x.sum((1, 2, 3)), real).item() == 0.0
    # Linear critic: ||grad||^2 = ||w||^2 = 4 for every sample.
    assert r1_penalty(LinearCritic((3, 8, 8), 2.0), real).item() == pytest.approx(4.0, rel=1e-5)


def test_l1_helpers():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert cycle_loss(a, b).item() == pytest.approx(0.5)
    assert identity_loss(b, b).item() == 0.0


def test_image_pool_fills_then_swaps_half_with_history_reproducibly():
    from styleforge.train.image_pool import ImagePool

    batches = [torch.full((2, 3, 4, 4), float(i)) for i in range(40)]  # batch i is all value i

    def run(seed):
        pool, g = ImagePool(4), torch.Generator().manual_seed(seed)
        return pool, [pool.query(b, g) for b in batches]

    pool, outs = run(0)
    for b, out in zip(batches[:2], outs[:2]):  # filling: each image passes and is stored
        assert torch.equal(out, b)
    later = [float(img[0, 0, 0]) for out, b in zip(outs[2:], batches[2:]) for img in out]
    current = [float(img[0, 0, 0]) for b in batches[2:] for img in b]
    history = sum(v < c for v, c in zip(later, current))
    assert 0.3 < history / len(later) < 0.7, "about half the judged fakes are older ones"
    assert all(v <= c for v, c in zip(later, current)), "never a fake from the future"
    assert len(pool.images) == 4 and all(o.shape == (2, 3, 4, 4) for o in outs)
    _, again = run(0)
    assert all(torch.equal(a, b) for a, b in zip(outs, again)), "same generator, same draws"

    restored = ImagePool(4)
    restored.load(pool.state())
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    nxt = torch.full((2, 3, 4, 4), 99.0)
    assert torch.equal(pool.query(nxt, g1), restored.query(nxt, g2)), "state() round-trips"
    assert torch.equal(ImagePool(0).query(nxt), nxt)
    with pytest.raises(ValueError, match="pool size"):
        ImagePool(-1)
