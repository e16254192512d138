"""shirabe.train.loop.Trainer: epoch-based (lhotse sampler, prefetching workers) and step-based runs,
exact resumption, the checkpoint files, inf checks and random states."""

import logging

import pytest
import torch
from torch import nn
from train_testlib import (
    ListSampler,
    RandomBatches,
    Regressor,
    list_loader,
    make_batch,
    masked_loss,
)

from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load
from shirabe.train.hooks import register_inf_check_hooks
from shirabe.train.loop import Trainer, new_training_params
from shirabe.train.lr_scheduler import Eden, FixedLRScheduler
from shirabe.train.metrics import MetricsTracker
from shirabe.train.optim import ScaledAdam
from shirabe.train.precision import MixedPrecision


class CutFeatures(torch.utils.data.Dataset):
    """lhotse CutSet -> a batch whose features are fixed per cut (seeded by its id)."""

    def __getitem__(self, cuts):
        feats = []
        for cut in cuts:
            g = torch.Generator().manual_seed(int(cut.id.split("-")[-1]))
            feats.append(torch.randn(max(1, int(cut.duration * 10)), 8, generator=g))
        lens = torch.tensor([f.shape[0] for f in feats])
        x = torch.zeros(len(feats), int(lens.max()), 8)
        for i, f in enumerate(feats):
            x[i, : f.shape[0]] = f
        return {"features": x, "features_lens": lens, "cut_ids": [c.id for c in cuts]}


def make_epoch_trainer(exp_dir, num_iters, seen: list):
    """A linear map of noisy features over lhotse dummy cuts, 2 prefetching DataLoader workers."""
    from lhotse import CutSet
    from lhotse.testing.dummies import dummy_cut

    from shirabe.data.sampling import make_sampler

    cuts = CutSet.from_cuts(dummy_cut(i, duration=0.5 + 0.1 * (i % 5), recording_duration=1.0) for i in range(14))
    sampler = make_sampler(cuts, max_duration=2.0, num_buckets=2, seed=5)
    train_dl = torch.utils.data.DataLoader(CutFeatures(), sampler=sampler, batch_size=None, num_workers=2,
                                           persistent_workers=True, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    optimizer = ScaledAdam(model.parameters(), lr=0.05, clipping_scale=2.0)
    scheduler = Eden(optimizer, lr_batches=5, lr_epochs=2, warmup_batches=3)

    def compute_loss(model, batch, is_training):
        if is_training:
            seen.append(tuple(batch["cut_ids"]))
        feats = batch["features"] * 0.1
        noisy = feats + torch.randn_like(feats)  # draws from the generator the checkpoint restores
        loss = ((model(noisy) - feats) ** 2).mean()
        frames = float(batch["features_lens"].sum())
        return loss, MetricsTracker(loss=float(loss.detach()) * frames, frames=frames, utterances=len(batch["cut_ids"]))

    params = new_training_params(exp_dir=exp_dir, num_iters=num_iters, save_every_n=4, average_period=2,
                                 valid_interval=0, log_interval=3, seed=11)
    avg = nn.Linear(8, 8).double()
    return Trainer(params, model, optimizer, scheduler, train_dl, compute_loss, torch.device("cpu"),
                   MixedPrecision("float32", "cpu"), model_avg=avg)


@pytest.mark.filterwarnings("ignore:You are using DynamicBucketingSampler")
def test_epoch_based_resume_mid_epoch_continues_the_same_batches_and_states(tmp_path):
    straight_seen: list = []
    straight = make_epoch_trainer(tmp_path / "a", 11, straight_seen)
    straight.fit()
    first_seen: list = []
    make_epoch_trainer(tmp_path / "b", 6, first_seen).fit()  # stops after checkpoint-4 (and -6)
    assert first_seen == straight_seen[:6]
    resumed_seen: list = []
    resumed = make_epoch_trainer(tmp_path / "b", 11, resumed_seen)
    resumed.resume(tmp_path / "b" / "checkpoint-4.pt", mid_epoch=True)
    assert resumed.params.batch_idx_train == 4
    resumed.fit()
    assert resumed_seen == straight_seen[4:]
    assert len(straight_seen) == 11
    # several epochs went by: the resumed run crossed epoch boundaries the same way
    assert resumed.params.cur_epoch == straight.params.cur_epoch > 1
    # a run measured in updates (num_iters) saves by updates only, not at each pass over the data
    assert not list((tmp_path / "a").glob("epoch-*.pt"))
    assert not list((tmp_path / "a").glob("best-*.pt"))
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(straight.model_avg.parameters(), resumed.model_avg.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)  # checkpoints store model_avg in float32
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    assert resumed.optimizer.clip_state == straight.optimizer.clip_state
    for a, b in zip(straight.optimizer.state.values(), resumed.optimizer.state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


def make_step_trainer(exp_dir, num_iters, save_every_n=3, **kw):
    model = Regressor(seed=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    params = new_training_params(exp_dir=exp_dir, num_iters=num_iters, save_every_n=save_every_n, keep_last_k=2,
                                 valid_interval=0, log_interval=1, seed=3, **kw)

    def noisy_loss(model, batch, is_training):  # draws from the global generator too
        batch = dict(batch, x=batch["x"] + 0.01 * torch.randn_like(batch["x"]))
        return masked_loss(model, batch, is_training)

    return Trainer(params, model, optimizer, FixedLRScheduler(optimizer), RandomBatches(seed=7), noisy_loss,
                   torch.device("cpu"), MixedPrecision("float32", "cpu"), extra_state={"phase": 1})


def test_step_based_run_stops_at_num_iters_and_resumes_exactly(tmp_path):
    straight = make_step_trainer(tmp_path / "a", 7)
    straight.fit()
    assert straight.params.batch_idx_train == 7 and straight.train_dl.drawn == 7
    # the newest keep_last_k=2 of checkpoint-3, -6 and the final -7; no epochs
    assert sorted(p.name for p in (tmp_path / "a").glob("*.pt")) == ["checkpoint-6.pt", "checkpoint-7.pt"]
    ckpt = safe_load(tmp_path / "a" / "checkpoint-6.pt")
    assert ckpt["phase"] == 1 and ckpt["batch_idx_train"] == 6 and ckpt["sampler"]["drawn"] == 6

    partial = make_step_trainer(tmp_path / "b", 4)
    partial.fit()
    resumed = make_step_trainer(tmp_path / "b", 7)
    assert resumed.resume_latest(expect={"phase": 1}) == tmp_path / "b" / "checkpoint-4.pt"
    assert resumed.params.batch_idx_train == 4
    resumed.fit()
    assert resumed.train_dl.drawn == 7
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    a, b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a)

    with pytest.raises(InputError, match=r"checkpoint-7\.pt: a checkpoint of phase 1, this run has phase 2"):
        make_step_trainer(tmp_path / "b", 9).resume_latest(expect={"phase": 2})
    assert make_step_trainer(tmp_path / "empty", 3).resume_latest() is None


def test_step_based_data_needs_num_iters_and_other_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="num_iters > 0"):
        make_step_trainer(tmp_path, 0)
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plain = torch.utils.data.DataLoader([make_batch(0)], batch_size=None)  # its sampler has no set_epoch
    with pytest.raises(TypeError, match="neither a step sampler"):
        Trainer(new_training_params(exp_dir=tmp_path), model, opt, FixedLRScheduler(opt), plain, masked_loss,
                "cpu", MixedPrecision("float32", "cpu"))


def make_list_trainer(exp_dir, batches, seed=0, rank=0, **kw):
    model = Regressor(seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    params = new_training_params(exp_dir=exp_dir, num_epochs=2, save_every_n=0, valid_interval=0, log_interval=0,
                                 average_period=1, **kw)
    return Trainer(params, model, opt, FixedLRScheduler(opt), list_loader(batches), masked_loss, "cpu",
                   MixedPrecision("float32", "cpu"), rank=rank, model_avg=Regressor(seed=seed).double())


def test_save_and_resume_restore_model_optimizer_and_counters(tmp_path):
    batches = [make_batch(i) for i in range(3)]
    trained = make_list_trainer(tmp_path, batches)
    trained.fit()  # two epochs: epoch-1.pt, epoch-2.pt
    assert trained.params.batch_idx_train == 6 and trained.params.cur_epoch == 2
    other = make_list_trainer(tmp_path / "other", batches, seed=5)
    before = [p.detach().clone() for p in other.model.parameters()]
    ckpt = other.resume(tmp_path / "epoch-2.pt", mid_epoch=False)
    assert ckpt["cur_epoch"] == 2 and other.params.batch_idx_train == 6
    assert any(not torch.equal(p, q) for p, q in zip(before, other.model.parameters(), strict=True))
    for p, q in zip(trained.model.state_dict().values(), other.model.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(trained.model_avg.parameters(), other.model_avg.parameters(), strict=True):
        assert torch.equal(p.float(), q.float())
    assert other.optimizer.state_dict()["state"][0]["step"] == trained.optimizer.state_dict()["state"][0]["step"] == 6
    # a second rank writes nothing
    assert make_list_trainer(tmp_path / "r1", batches, rank=1).save(tmp_path / "r1" / "x.pt") is None
    assert not (tmp_path / "r1" / "x.pt").exists()


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    batches = [make_batch(0)]
    make_list_trainer(tmp_path, batches).fit()
    t = make_list_trainer(tmp_path / "x", batches)
    t.model.proj = nn.Linear(4, 3)
    with pytest.raises(InputError, match=r"epoch-2\.pt: does not fit the model"):
        t.resume(tmp_path / "epoch-2.pt", mid_epoch=False)


def test_save_model_writes_the_callers_layout(tmp_path):
    t = make_list_trainer(tmp_path, [make_batch(0)])
    path = t.save_model(tmp_path / "model.pth", lambda m: {"net": {"proj": m.proj.state_dict()}, "iters": 0})
    got = torch.load(path, weights_only=True)
    assert set(got) == {"net", "iters"} and torch.equal(got["net"]["proj"]["weight"], t.model.proj.weight)
    assert torch.equal(safe_load(t.save_model(tmp_path / "plain.pt"))["model"]["out.bias"], t.model.out.bias)


def test_averaged_model_gives_the_exact_mean_over_a_range(tmp_path):
    """model_avg at updates s and e (checkpoint-s/-e.pt) yields the mean of the weights over (s, e]."""
    from shirabe.train.checkpoint import average_checkpoints_with_averaged_model

    history = []

    class Recording(Trainer):
        def after_step(self):
            history.append({k: v.detach().clone().double() for k, v in self.model.state_dict().items()})

    model = Regressor(seed=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = new_training_params(exp_dir=tmp_path, num_iters=10, save_every_n=2, keep_last_k=10, valid_interval=0,
                                 log_interval=0, average_period=1)
    Recording(params, model, opt, FixedLRScheduler(opt), RandomBatches(seed=4), masked_loss, "cpu",
              MixedPrecision("float32", "cpu"), model_avg=Regressor(seed=2).double()).fit()
    s, e = 4, 10
    got = average_checkpoints_with_averaged_model(tmp_path / f"checkpoint-{s}.pt", tmp_path / f"checkpoint-{e}.pt")
    for k in got:
        expected = torch.stack([h[k] for h in history[s:e]]).mean(0)
        assert torch.allclose(got[k].double(), expected, atol=1e-6), k


def test_a_group_cut_short_by_the_epoch_end_still_updates(tmp_path):
    t = make_list_trainer(tmp_path, [make_batch(i) for i in range(5)], accum_grad=2)
    t.fit()
    assert t.params.batch_idx_train == 6  # 3 updates per epoch (2 + 2 + 1 batches), 2 epochs
    assert isinstance(t.train_dl.sampler, ListSampler)


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


def test_non_finite_loss_stops_float32_training(tmp_path):
    t = make_list_trainer(tmp_path, [make_batch(0)])
    t.compute_loss = lambda model, batch, is_training: (model(batch["x"]).sum() * float("nan"),
                                                        MetricsTracker(frames=1.0))
    with pytest.raises(RuntimeError, match="non-finite loss nan at batch 1"):
        t.fit()


def test_random_states_survive_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from shirabe.train.checkpoint import atomic_save
    from shirabe.train.rng import capture_rng_state, restore_rng_state, seed_everything

    seed_everything(5)
    _ = (random.random(), np.random.rand(3), torch.rand(2), np.random.randn())  # advance every generator
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    draws = (random.random(), np.random.randn(4).tolist(), torch.randn(3).tolist())
    seed_everything(99)
    restore_rng_state(safe_load(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.randn(4).tolist(), torch.randn(3).tolist()) == draws
