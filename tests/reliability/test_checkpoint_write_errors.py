"""atomic_save when the disk is full: one line naming the checkpoint, the old file kept, nothing left over."""

import errno
import io
import os

import pytest
import torch

from shirabe.cli import InputError
from shirabe.train import checkpoint as ck


class FullDisk(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails every write with ENOSPC."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def fileno(self) -> int:
        return self.f.fileno()

    def close(self) -> None:
        self.f.close()
        super().close()


@pytest.mark.parametrize("room", [0, 1000])
def test_no_space_left_is_one_line_naming_the_checkpoint(tmp_path, monkeypatch, room):
    path = ck.atomic_save({"w": torch.ones(1000)}, tmp_path / "checkpoint-2.pt")
    before = path.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: FullDisk(real_fdopen(fd, mode, *a, **k), room))
    with pytest.raises(ck.CheckpointWriteError) as info:
        ck.atomic_save({"w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    error = info.value
    assert isinstance(error, InputError) and isinstance(error, OSError) and error.errno == errno.ENOSPC
    assert str(error) == f"{path}: cannot write the checkpoint (No space left on device)"
    assert path.read_bytes() == before and torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2.pt"]


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(Exception) as info:  # noqa: B017 - any error but a CheckpointWriteError
        ck.atomic_save({"f": lambda: None}, tmp_path / "x.pt")  # cannot be pickled
    assert not isinstance(info.value, ck.CheckpointWriteError)
    assert list(tmp_path.iterdir()) == []
