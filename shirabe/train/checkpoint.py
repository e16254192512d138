"""Checkpoints: atomic saving, safe loading, and averaging.

Training checkpoints are written by :meth:`shirabe.train.loop.Trainer.save` (the
one writer of training state) through :func:`atomic_save`.

File names follow icefall: ``epoch-N.pt`` at the end of epoch N,
``checkpoint-B.pt`` every few thousand batches (B = global batch index), and
averaged models ``epoch-E-avg-A.pt`` / ``iter-I-avg-A.pt``.

Every file is written to a temporary name in the same directory and renamed
into place, so a process killed mid-save leaves the previous checkpoint intact.
Files are read with ``torch.load(weights_only=True)``: a file that needs pickle
(arbitrary Python objects) is refused unless the caller says it is trusted.

Averaging. With ``model_avg`` kept during training as the running mean of the
weights after every batch, ``M_b = mean(w_1..w_b)``, the mean over batches
``(s, e]`` is exact from two files::

    avg(s, e] = (e * M_e - s * M_s) / (e - s)

which :func:`average_checkpoints_with_averaged_model` computes as
``M_e * (e / (e - s)) - M_s * (s / (e - s))`` to keep the magnitudes small.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shirabe.cli import InputError

logger = logging.getLogger(__name__)


class CheckpointWriteError(InputError, OSError):
    """A checkpoint could not be written (disk full, file size limit, ...).

    Its one-line message names the file; it is an :class:`~shirabe.cli.InputError`
    (a binary prints the line and exits 2) and an :class:`OSError` with the
    ``errno`` of the failed write.
    """


class _WriteRecorder:
    """A binary file that remembers the first ``OSError`` of a write: ``torch.save``
    turns it into a RuntimeError that no longer says what went wrong."""

    def __init__(self, f):
        self.f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same directory, then rename.

    A failed write (e.g. no space left) raises :class:`CheckpointWriteError` naming
    ``path``; the temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    recorder = None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; a checkpoint gets the usual file mode
        with os.fdopen(fd, "wb") as f:
            recorder = _WriteRecorder(f)
            torch.save(obj, recorder)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        cause = recorder.error if recorder is not None and recorder.error is not None else e
        if not isinstance(cause, OSError):
            raise
        reason = cause.strerror or (str(cause).splitlines() or [type(cause).__name__])[0]
        error = CheckpointWriteError(f"{path}: cannot write the checkpoint ({reason})")
        error.errno = cause.errno
        raise error from cause
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def safe_load(path: str | Path, trust: bool = False, map_location: str | torch.device = "cpu") -> Any:
    """Load a torch file with ``weights_only=True``.

    Raises :class:`InputError` naming the file when it is missing, corrupt, or
    needs pickle (unless ``trust``, in which case pickle is allowed).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as e:
        if trust:
            raise InputError(f"{path}: cannot load checkpoint ({str(e).splitlines()[0]})") from e
        if "Unsupported global" not in str(e):
            # weights_only rejects bytes that are no pickle at all the same way
            raise InputError(f"{path}: not a readable checkpoint (corrupt or not a torch file)") from e
        raise InputError(
            f"{path}: holds Python objects that need pickle to load; "
            "pass --trust-checkpoint true only if you trust where it came from"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable checkpoint ({reason})") from e


def strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix DDP adds to every key (if all keys have it)."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def load_state_dict_file(
    path: str | Path, trust: bool = False, map_location: str | torch.device = "cpu", key: str | None = "model"
) -> dict[str, torch.Tensor]:
    """Read a model state_dict from ``path``.

    Accepts a bare state_dict or a dict holding it under ``key`` (``"model"`` for
    icefall/ZipVoice checkpoints). A ``module.`` prefix is stripped.
    """
    obj = safe_load(path, trust=trust, map_location=map_location)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    if key is not None and isinstance(obj.get(key), dict):
        obj = obj[key]
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError(f"{path}: holds no tensors" + (f" (looked under '{key}')" if key else ""))
    return strip_module_prefix(tensors)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean; integer tensors (e.g. counters) are floor-divided."""
    n = len(state_dicts)
    if n == 0:
        raise ValueError("nothing to average")
    avg = {k: v.clone().to(torch.float64) if v.is_floating_point() else v.clone() for k, v in state_dicts[0].items()}
    for sd in state_dicts[1:]:
        for k in avg:
            avg[k] += sd[k].to(avg[k].dtype)
    out = {}
    for k, v in avg.items():
        ref = state_dicts[0][k]
        out[k] = (v / n).to(ref.dtype) if ref.is_floating_point() else v // n
    return out


def average_checkpoints(filenames: list[str | Path], key: str = "model") -> dict[str, torch.Tensor]:
    """Mean of the ``key`` weights stored in ``filenames``."""
    return average_state_dicts([load_state_dict_file(f, key=key) for f in filenames])


@torch.no_grad()
def update_averaged_model(average_period: int, batch_idx_train: int, model_cur: nn.Module, model_avg: nn.Module) -> None:
    """Running mean of the weights, refreshed every ``average_period`` batches.

    ``model_avg = model_cur * (p / b) + model_avg * (1 - p / b)`` with p the period
    and b the global batch index, so ``model_avg`` is the mean over batches 1..b.
    """
    weight_cur = average_period / batch_idx_train
    weight_avg = 1.0 - weight_cur
    cur = _unwrap(model_cur).state_dict()
    for name, p_avg in model_avg.state_dict().items():
        p_cur = cur[name]
        if p_avg.is_floating_point():
            p_avg.mul_(weight_avg).add_(p_cur.to(device=p_avg.device, dtype=p_avg.dtype), alpha=weight_cur)
        else:
            p_avg.copy_(p_cur)


def average_checkpoints_with_averaged_model(filename_start: str | Path, filename_end: str | Path) -> dict[str, torch.Tensor]:
    """Exact mean of the weights over the batches between two checkpoints.

    Both files must hold ``model_avg`` and ``batch_idx_train`` (see the module
    docstring for the formula).
    """
    start, end = safe_load(filename_start), safe_load(filename_end)
    for f, c in ((filename_start, start), (filename_end, end)):
        if "model_avg" not in c or "batch_idx_train" not in c:
            raise InputError(f"{f}: has no averaged model (model_avg/batch_idx_train); train with it or use plain averaging")
    s, e = int(start["batch_idx_train"]), int(end["batch_idx_train"])
    if not e > s:
        raise InputError(f"{filename_end}: batch index {e} is not after {filename_start}'s {s}")
    w_end, w_start = e / (e - s), s / (e - s)
    out = {}
    for k, v_end in end["model_avg"].items():
        v_start = start["model_avg"][k]
        if v_end.is_floating_point():
            out[k] = (v_end.to(torch.float64) * w_end - v_start.to(torch.float64) * w_start).to(v_end.dtype)
        else:
            out[k] = v_end.clone()
    return out


def find_checkpoints(out_dir: str | Path, iteration: int = 0) -> list[str]:
    """``checkpoint-B.pt`` files in ``out_dir``, newest (largest B) first.

    ``iteration > 0`` keeps those with B >= iteration; ``iteration < 0`` keeps
    those with B <= -iteration.
    """
    pattern = re.compile(r"checkpoint-(\d+)\.pt$")
    found = []
    for f in glob.glob(os.path.join(str(out_dir), "checkpoint-[0-9]*.pt")):
        m = pattern.search(f)
        if m:
            found.append((int(m.group(1)), f))
    found.sort(reverse=True)
    if iteration > 0:
        found = [x for x in found if x[0] >= iteration]
    elif iteration < 0:
        found = [x for x in found if x[0] <= -iteration]
    return [f for _, f in found]


def remove_checkpoints(out_dir: str | Path, topk: int) -> list[str]:
    """Delete all but the ``topk`` newest ``checkpoint-B.pt`` files; returns those removed."""
    if topk < 1:
        return []
    removed = find_checkpoints(out_dir)[topk:]
    for f in removed:
        os.remove(f)
    return removed
