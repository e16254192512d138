"""ScaledAdam, Eden and FixedLRScheduler."""

import copy
import math

import pytest
import torch
from torch import nn

from shirabe.train.lr_scheduler import Eden, FixedLRScheduler
from shirabe.train.optim import ScaledAdam, parameter_groups_with_lr_scale


def regression_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    y = torch.sin(x @ torch.randn(8, 1, generator=g))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    return model, x, y


def train(model, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_scaled_adam_fits_a_regression():
    model, x, y = regression_problem()
    losses = train(model, ScaledAdam(model.parameters(), lr=0.03, clipping_scale=2.0), x, y, 300)
    assert losses[-1] < 0.1 * losses[0]


def test_first_step_is_relative_to_each_tensors_size():
    """Step 1: Adam's normalised gradient is ±1, so |dp| = lr (1 - beta1) rms(p) for every element."""
    small = nn.Parameter(torch.full((4, 4), 0.01) * torch.randn(4, 4).sign())
    large = nn.Parameter(torch.full((4, 4), 2.0) * torch.randn(4, 4).sign())
    opt = ScaledAdam([small, large], lr=0.1, betas=(0.9, 0.98), eps=1e-12)
    before = [small.detach().clone(), large.detach().clone()]
    (small.sum() * 3.0 + large.pow(2).sum()).backward()
    opt.step()
    for p, p0, rms in ((small, before[0], 0.01), (large, before[1], 2.0)):
        change = (p.detach() - p0).abs()
        torch.testing.assert_close(change, torch.full_like(change, 0.1 * 0.1 * rms), rtol=1e-4, atol=0)


def test_scalars_are_clamped_and_oversized_tensors_shrink():
    scalar = nn.Parameter(torch.tensor(9.9))
    big = nn.Parameter(torch.randn(16, 16) * 10.0)
    rms0 = big.detach().pow(2).mean().sqrt().item()
    opt = ScaledAdam([scalar, big], lr=0.5, scalar_max=10.0)
    for _ in range(200):
        opt.zero_grad()
        (-scalar + big.sum() * 0.0).backward()
        opt.step()
    assert scalar.item() == pytest.approx(10.0)
    assert big.detach().pow(2).mean().sqrt().item() < 0.8 * rms0


def test_clipping_catches_a_gradient_spike():
    model, x, y = regression_problem()
    opt = ScaledAdam(model.parameters(), lr=0.01, clipping_scale=2.0)
    train(model, opt, x, y, 45)
    assert opt.clip_state["threshold"] is not None
    opt.zero_grad()
    ((model(x) - y).pow(2).mean() * 1e4).backward()
    opt.step()
    assert opt.last_clipping_scale < 0.01


def test_state_dict_resume_matches_an_uninterrupted_run():
    model_a, x, y = regression_problem()
    opt_a = ScaledAdam(model_a.parameters(), lr=0.02, clipping_scale=2.0)
    train(model_a, opt_a, x, y, 12)
    saved_model = {k: v.clone() for k, v in model_a.state_dict().items()}
    saved_opt = copy.deepcopy(opt_a.state_dict())  # as written to disk
    train(model_a, opt_a, x, y, 12)

    model_b, _, _ = regression_problem(seed=5)
    model_b.load_state_dict(saved_model)
    opt_b = ScaledAdam(model_b.parameters(), lr=0.02, clipping_scale=2.0)
    opt_b.load_state_dict(saved_opt)
    train(model_b, opt_b, x, y, 12)
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lr_scale_groups():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    model[1].lr_scale = 0.5
    model[1][1].lr_scale = 0.2
    groups = parameter_groups_with_lr_scale(model, lr=1.0, include_names=True)
    by_lr = {round(g["lr"], 6): sorted(g["names"]) for g in groups}
    assert by_lr == {
        1.0: ["0.bias", "0.weight"],
        0.5: ["1.0.bias", "1.0.weight"],
        0.1: ["1.1.bias", "1.1.weight"],
    }


def test_eden_values_worked_by_hand():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.02)
    sched = Eden(opt, lr_batches=7500, lr_epochs=10, warmup_batches=500, warmup_start=0.5)
    assert sched.get_last_lr()[0] == pytest.approx(0.01)  # warm-up starts at half
    sched.step_batch(250)
    # 0.02 * 0.75 * (1 + 1/900) ** -0.25
    assert sched.get_last_lr()[0] == pytest.approx(0.01499584, rel=1e-6)
    sched.step_batch(7500)
    sched.step_epoch(10)
    assert sched.get_last_lr()[0] == pytest.approx(0.02 / math.sqrt(2), rel=1e-9)
    state = sched.state_dict()
    other = Eden(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.02))
    other.load_state_dict(state)
    assert other.get_last_lr() == sched.get_last_lr()


def test_fixed_lr_stays():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched = FixedLRScheduler(opt)
    for b in range(1, 50):
        sched.step_batch(b)
    sched.step_epoch(3)
    assert sched.get_last_lr() == [1e-4]
