"""shirabe.train.loop.Trainer in process: exact mid-epoch resumption with prefetching workers, inf checks."""

import logging

import pytest
import torch
from torch import nn

from shirabe.train.hooks import register_inf_check_hooks
from shirabe.train.loop import Trainer, new_training_params
from shirabe.train.lr_scheduler import Eden
from shirabe.train.metrics import MetricsTracker
from shirabe.train.optim import ScaledAdam
from shirabe.train.precision import MixedPrecision
from zipvoice.dataset import (
    DataOptions,
    TokenMapper,
    ZipVoiceDataset,
    load_cuts,
    make_train_dataloader,
)


class FrameRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(100, 100)


def make_trainer(corpus, exp_dir, num_iters, seen: list):
    """A small model-agnostic set-up: a linear map of noisy features, 2 prefetching data workers."""
    torch.manual_seed(0)
    model = FrameRegressor()
    optimizer = ScaledAdam(model.parameters(), lr=0.05, clipping_scale=2.0)
    scheduler = Eden(optimizer, lr_batches=5, lr_epochs=2, warmup_batches=3)
    opts = DataOptions(max_duration=2.5, min_len=0.0, num_workers=2, seed=5)
    dataset = ZipVoiceDataset(TokenMapper(corpus["tokens"]))
    train_dl, _, _ = make_train_dataloader(load_cuts(corpus["train"]), dataset, opts)

    def compute_loss(model, batch, is_training):
        if is_training:
            seen.append(tuple(batch["cut_ids"]))
        feats = batch["features"] * 0.1
        noisy = feats + torch.randn_like(feats)  # draws from the generator the checkpoint restores
        loss = ((model.proj(noisy) - feats) ** 2).mean()
        frames = float(batch["features_lens"].sum())
        return loss, MetricsTracker(loss=float(loss.detach()) * frames, frames=frames, utterances=len(batch["cut_ids"]))

    params = new_training_params(exp_dir=exp_dir, num_iters=num_iters, save_every_n=4, average_period=2,
                                 valid_interval=0, log_interval=3, seed=11)
    return Trainer(params, model, optimizer, scheduler, train_dl, compute_loss, torch.device("cpu"),
                   MixedPrecision(False, "cpu"), model_avg=FrameRegressor().double())


def test_resume_mid_epoch_continues_the_same_batches_and_states(corpus, tmp_path):
    straight_seen: list = []
    straight = make_trainer(corpus, tmp_path / "a", 11, straight_seen)
    straight.fit()
    first_seen: list = []
    make_trainer(corpus, tmp_path / "b", 6, first_seen).fit()  # stops after checkpoint-4 (and -6)
    assert first_seen == straight_seen[:6]
    resumed_seen: list = []
    resumed = make_trainer(corpus, tmp_path / "b", 11, resumed_seen)
    resumed.resume(tmp_path / "b" / "checkpoint-4.pt", mid_epoch=True)
    assert resumed.params.batch_idx_train == 4
    resumed.fit()
    assert resumed_seen == straight_seen[4:]
    assert len({len(b) for b in straight_seen}) >= 1 and len(straight_seen) == 11
    # several epochs went by: the resumed run crossed epoch boundaries the same way
    assert resumed.params.cur_epoch == straight.params.cur_epoch > 1
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    assert resumed.optimizer.clip_state == straight.optimizer.clip_state
    for a, b in zip(straight.optimizer.state.values(), resumed.optimizer.state.values()):
        assert all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_inf_check_names_the_first_bad_module(caplog):
    class Blowup(nn.Module):
        def forward(self, x):
            return x / 0.0

    model = nn.Sequential(nn.Linear(4, 4), Blowup(), nn.Linear(4, 1))
    handles = register_inf_check_hooks(model)
    with caplog.at_level(logging.WARNING):
        model(torch.ones(2, 4)).sum().backward()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "inf-check: output of 1 is not finite"
    assert "inf-check: output of 0 is not finite" not in messages
    assert "inf-check: gradient of parameter 0.weight is not finite" in messages
    for h in handles:
        h.remove()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        nn.Sequential(nn.Linear(4, 4))(torch.ones(1, 4)).sum().backward()
    assert not caplog.records


def test_random_states_survive_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from shirabe.train.checkpoint import atomic_save, safe_load
    from shirabe.train.rng import capture_rng_state, restore_rng_state, seed_everything

    seed_everything(5)
    _ = (random.random(), np.random.rand(3), torch.rand(2), np.random.randn())  # advance every generator
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    draws = (random.random(), np.random.randn(4).tolist(), torch.randn(3).tolist())
    seed_everything(99)
    restore_rng_state(safe_load(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.randn(4).tolist(), torch.randn(3).tolist()) == draws
