"""Warm-up + cosine and warm-up + constant schedules: values worked out by hand, state round trip."""

import math

import pytest
import torch
from torch import nn

from shirabe.train.lr_scheduler import WarmupConstant, WarmupCosine


def two_group_optimizer():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    return torch.optim.AdamW([{"params": [a], "lr": 2e-3}, {"params": [b], "lr": 1e-3}])


def lrs_at(scheduler, batch):
    scheduler.step_batch(batch)
    return scheduler.get_last_lr()


def test_warmup_cosine_values():
    # base 2e-3 and 1e-3, 2 warm-up batches from 0, cosine to 10 % at batch 10
    s = WarmupCosine(two_group_optimizer(), total_batches=10, warmup_batches=2, min_ratio=0.1)
    assert s.get_last_lr() == [0.0, 0.0]  # batch 0
    expected = {
        1: 0.5,  # half-way through the warm-up
        2: 1.0,  # the cosine starts at the full rate
        4: 0.1 + 0.9 * 0.5 * (1 + math.sqrt(0.5)),  # a quarter of the way: cos(pi/4)
        6: 0.55,  # half-way: cos(pi/2) = 0
        10: 0.1,  # the end: cos(pi) = -1
        13: 0.1,  # after the end it stays at min_ratio
    }
    for batch, factor in expected.items():
        assert lrs_at(s, batch) == pytest.approx([2e-3 * factor, 1e-3 * factor], rel=1e-12), batch
    assert 0.1 + 0.9 * 0.5 * (1 + math.sqrt(0.5)) == pytest.approx(0.868198052, rel=1e-9)


def test_warmup_constant_values():
    s = WarmupConstant(two_group_optimizer(), warmup_batches=4, warmup_start=0.25)
    assert s.get_last_lr() == pytest.approx([5e-4, 2.5e-4])  # 0.25 of the base rates at batch 0
    assert lrs_at(s, 2) == pytest.approx([1.25e-3, 6.25e-4])  # 0.25 + 0.75 * 2 / 4 = 0.625
    assert lrs_at(s, 4) == pytest.approx([2e-3, 1e-3])
    assert lrs_at(s, 1000) == pytest.approx([2e-3, 1e-3])


@pytest.mark.parametrize("make", [
    lambda opt: WarmupCosine(opt, total_batches=20, warmup_batches=5, warmup_start=0.1, min_ratio=0.05),
    lambda opt: WarmupConstant(opt, warmup_batches=5, warmup_start=0.1),
])
def test_state_dict_round_trip(make):
    first = make(two_group_optimizer())
    for b in range(1, 8):
        first.step_batch(b)
    state = first.state_dict()
    second_opt = two_group_optimizer()
    second = make(second_opt)
    assert second.get_last_lr() != first.get_last_lr()
    second.load_state_dict(state)
    assert second.get_last_lr() == first.get_last_lr()
    assert [g["lr"] for g in second_opt.param_groups] == first.get_last_lr()
    first.step_batch(8)
    second.step_batch(8)
    assert second.get_last_lr() == first.get_last_lr()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="warmup_batches < total_batches"):
        WarmupCosine(two_group_optimizer(), total_batches=5, warmup_batches=5)
    with pytest.raises(ValueError, match="min_ratio"):
        WarmupCosine(two_group_optimizer(), total_batches=5, min_ratio=2.0)
    with pytest.raises(ValueError, match="warmup_start"):
        WarmupConstant(two_group_optimizer(), warmup_batches=3, warmup_start=-1)
