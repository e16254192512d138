"""--accum-grad N: an update from N accumulated batches equals one from a single batch holding them all."""

import pytest
import torch
from train_testlib import (
    RandomBatches,
    Regressor,
    concat_batches,
    list_loader,
    make_batch,
    masked_loss,
)

from shirabe.train.loop import Trainer, new_training_params
from shirabe.train.lr_scheduler import FixedLRScheduler
from shirabe.train.precision import MixedPrecision


def train(exp_dir, batches, accum_grad, max_grad_norm=0.0, momentum=0.0):
    model = Regressor(seed=0, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=momentum)
    params = new_training_params(exp_dir=exp_dir, num_epochs=1, save_every_n=0, valid_interval=0, log_interval=0,
                                 accum_grad=accum_grad, max_grad_norm=max_grad_norm)
    trainer = Trainer(params, model, opt, FixedLRScheduler(opt), list_loader(batches), masked_loss, "cpu",
                      MixedPrecision("float32", "cpu"))
    trainer.fit()
    return trainer


def max_diff(a, b) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def batches_of_unequal_frames(n):
    out = [make_batch(10 + i, rows=2, max_frames=9, dtype=torch.float64) for i in range(n)]
    assert len({float(b["mask"].sum()) for b in out}) > 1
    return out


@pytest.mark.parametrize("max_grad_norm,momentum", [(0.0, 0.0), (0.05, 0.9)])
def test_accumulated_update_equals_one_big_batch(tmp_path, max_grad_norm, momentum):
    small = batches_of_unequal_frames(6)
    accumulated = train(tmp_path / "a", small, accum_grad=3, max_grad_norm=max_grad_norm, momentum=momentum)
    big = train(tmp_path / "b", [concat_batches(small[:3]), concat_batches(small[3:])], accum_grad=1,
                max_grad_norm=max_grad_norm, momentum=momentum)
    assert accumulated.params.batch_idx_train == big.params.batch_idx_train == 2
    assert max_diff(accumulated.model, big.model) < 1e-6
    if max_grad_norm:
        assert accumulated.last_grad_norm == pytest.approx(big.last_grad_norm, rel=1e-9)
        assert big.last_grad_norm > max_grad_norm  # the clipping did act
    # the logged loss is the frame-weighted mean of the group, like the big batch's
    assert accumulated.epoch_loss["loss"] == pytest.approx(big.epoch_loss["loss"], rel=1e-9)
    assert accumulated.epoch_loss["frames"] == big.epoch_loss["frames"]


def test_a_plain_mean_of_the_batch_losses_would_differ(tmp_path):
    """The test above can tell frame weighting from averaging the batches' mean losses."""
    small = batches_of_unequal_frames(3)
    big = train(tmp_path / "b", [concat_batches(small)], accum_grad=1)
    model = Regressor(seed=0, dtype=torch.float64)
    (sum(masked_loss(model, b, True)[0] for b in small) / 3).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    assert max_diff(model, big.model) > 1e-3


def test_a_group_cut_short_by_the_epoch_end_is_weighted_by_its_own_frames(tmp_path):
    small = batches_of_unequal_frames(5)
    accumulated = train(tmp_path / "a", small, accum_grad=2)
    big = train(tmp_path / "b", [concat_batches(small[:2]), concat_batches(small[2:4]), small[4]], accum_grad=1)
    assert accumulated.params.batch_idx_train == 3
    assert max_diff(accumulated.model, big.model) < 1e-6


def test_step_based_accumulation_resumes_exactly(tmp_path):
    def trainer(exp_dir, num_iters):
        model = Regressor(seed=1)
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
        params = new_training_params(exp_dir=exp_dir, num_iters=num_iters, save_every_n=2, valid_interval=0,
                                     log_interval=0, accum_grad=2)
        return Trainer(params, model, opt, FixedLRScheduler(opt), RandomBatches(seed=3), masked_loss, "cpu",
                       MixedPrecision("float32", "cpu"))

    straight = trainer(tmp_path / "a", 4)
    straight.fit()
    assert straight.train_dl.drawn == 8
    trainer(tmp_path / "b", 2).fit()
    resumed = trainer(tmp_path / "b", 4)
    resumed.resume_latest()
    assert resumed.train_dl.drawn == 4
    resumed.fit()
    assert max_diff(straight.model, resumed.model) == 0.0
