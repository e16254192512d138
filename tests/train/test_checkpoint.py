"""Atomic saving, safe loading, averaging and finding checkpoints (the Trainer's own checkpoints: test_loop.py)."""

import os
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

from shirabe.cli import InputError
from shirabe.train import checkpoint as ck


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


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


def test_atomic_save_gives_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = ck.atomic_save({"w": torch.zeros(2)}, tmp_path / "epoch-1.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
