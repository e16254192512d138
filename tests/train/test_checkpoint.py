"""Checkpoint saving, safe loading and averaging."""

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from shirabe.cli import InputError
from shirabe.train import checkpoint as ck


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def test_save_and_load_restore_everything(tmp_path):
    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    path = ck.save_checkpoint(tmp_path / "epoch-1.pt", model, optimizer=opt, params={"cur_epoch": 1, "batch_idx_train": 7})
    other = tiny_model(seed=1)
    other_opt = torch.optim.AdamW(other.parameters(), lr=0.1)
    rest = ck.load_checkpoint(path, other, optimizer=other_opt)
    assert rest["cur_epoch"] == 1 and rest["batch_idx_train"] == 7
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert other_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert ck.save_checkpoint(tmp_path / "x.pt", model, rank=1) is None
    assert not (tmp_path / "x.pt").exists()


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = ck.atomic_save({"w": torch.ones(3)}, tmp_path / "c.pt")

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ck.atomic_save({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(ck.safe_load(path)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_pickle_needing_file_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "p.pt"
    torch.save({"model": {"w": torch.ones(1)}, "where": Path("/somewhere")}, path)
    with pytest.raises(InputError, match=r"p\.pt.*--trust-checkpoint"):
        ck.safe_load(path)
    assert ck.safe_load(path, trust=True)["where"] == Path("/somewhere")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="nope.pt"):
        ck.safe_load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="bad.pt"):
        ck.load_state_dict_file(bad)


def test_state_dict_file_forms(tmp_path):
    sd = {"a.weight": torch.ones(2), "b": torch.zeros(1)}
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pt")
    torch.save(sd, tmp_path / "bare.pt")
    for name in ("wrapped.pt", "bare.pt"):
        got = ck.load_state_dict_file(tmp_path / name)
        assert sorted(got) == sorted(sd)
    torch.save({"model": {}}, tmp_path / "empty.pt")
    with pytest.raises(InputError, match="no tensors"):
        ck.load_state_dict_file(tmp_path / "empty.pt")


def test_average_state_dicts_floats_and_ints():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(4)}
    avg = ck.average_state_dicts([a, b])
    assert torch.allclose(avg["w"], torch.tensor([2.0, 3.5]))
    assert avg["n"].item() == 3 and avg["n"].dtype == torch.int64


def test_averaged_model_gives_exact_mean_over_a_range(tmp_path):
    """model_avg at batches s and e yields the mean of the weights over (s, e]."""
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model_avg = copy.deepcopy(model).to(torch.float64)
    history = []
    s, e = 4, 10
    for b in range(1, e + 1):
        opt.zero_grad()
        model(torch.randn(8, 3)).pow(2).mean().backward()
        opt.step()
        history.append({k: v.detach().clone().double() for k, v in model.state_dict().items()})
        if b == 1:
            model_avg.load_state_dict({k: v for k, v in history[0].items()})
        else:
            ck.update_averaged_model(1, b, model, model_avg)
        if b in (s, e):
            ck.save_checkpoint(tmp_path / f"checkpoint-{b}.pt", model, model_avg=model_avg, params={"batch_idx_train": b})
    got = ck.average_checkpoints_with_averaged_model(tmp_path / f"checkpoint-{s}.pt", tmp_path / f"checkpoint-{e}.pt")
    for k in got:
        expected = torch.stack([h[k] for h in history[s:e]]).mean(0)
        assert torch.allclose(got[k].double(), expected, atol=1e-6), k


def test_find_and_remove_checkpoints(tmp_path):
    for b in (100, 2000, 300, 40):
        ck.atomic_save({"w": torch.ones(1)}, tmp_path / f"checkpoint-{b}.pt")
    (tmp_path / "epoch-1.pt").write_bytes(b"")
    names = [Path(f).name for f in ck.find_checkpoints(tmp_path)]
    assert names == ["checkpoint-2000.pt", "checkpoint-300.pt", "checkpoint-100.pt", "checkpoint-40.pt"]
    assert [Path(f).name for f in ck.find_checkpoints(tmp_path, iteration=-300)] == ["checkpoint-300.pt", "checkpoint-100.pt", "checkpoint-40.pt"]
    assert [Path(f).name for f in ck.find_checkpoints(tmp_path, iteration=300)] == ["checkpoint-2000.pt", "checkpoint-300.pt"]
    removed = ck.remove_checkpoints(tmp_path, topk=2)
    assert sorted(Path(f).name for f in removed) == ["checkpoint-100.pt", "checkpoint-40.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2000.pt", "checkpoint-300.pt", "epoch-1.pt"]
