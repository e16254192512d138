"""Distributed data parallel set-up: gloo on CPU, nccl on CUDA.

Two ways to start ``N`` processes:

* single node, from the training binary itself: :func:`spawn` runs
  ``fn(rank, world_size, *args)`` in ``world_size`` processes
  (``torch.multiprocessing``); each calls :func:`setup_dist` with a shared
  ``master_port`` on localhost.
* any number of nodes, with ``torchrun`` (which sets ``RANK``, ``LOCAL_RANK``,
  ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``): :func:`torchrun_env`
  reads them, and :func:`setup_dist` with ``use_env=True`` joins the group
  described by them. :func:`launch` picks the way a binary was started.

The backend follows the device: ``nccl`` for CUDA, ``gloo`` for CPU (so DDP
also runs, slowly, on machines without a GPU, e.g. in tests).
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

DEFAULT_MASTER_PORT = 12354


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int


def torchrun_env() -> DistEnv | None:
    """The process's place in a torchrun job, or None when not launched by torchrun."""
    if "LOCAL_RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    return DistEnv(
        rank=int(os.environ.get("RANK", os.environ["LOCAL_RANK"])),
        local_rank=int(os.environ["LOCAL_RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
    )


def backend_for(device: torch.device | str) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def setup_dist(
    rank: int,
    world_size: int,
    master_port: int = DEFAULT_MASTER_PORT,
    device: torch.device | str = "cpu",
    use_env: bool = False,
    timeout_minutes: float = 30.0,
) -> None:
    """Join the process group (no-op for ``world_size == 1``).

    ``use_env`` takes the rendezvous address from ``MASTER_ADDR``/``MASTER_PORT``
    (torchrun); otherwise localhost:``master_port``.
    """
    if world_size <= 1 or dist.is_initialized():
        return
    if not use_env:
        os.environ.setdefault("MASTER_ADDR", "localhost")
        os.environ["MASTER_PORT"] = str(master_port)
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend_for(device),
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(minutes=timeout_minutes),
    )


def wrap_ddp(model: torch.nn.Module, device: torch.device | str, find_unused_parameters: bool = True):
    """``model`` in DistributedDataParallel when a process group of more than one rank
    is up (on CUDA with ``device_ids=[device]``), else ``model`` itself."""
    if not is_distributed():
        return model
    device = torch.device(device)
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                     find_unused_parameters=find_unused_parameters)


def cleanup_dist() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def sum_over_ranks(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Element-wise sum of ``values`` over all ranks (identity without a process group)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def spawn(fn: Callable, world_size: int, args: tuple = ()) -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes and wait.

    With ``world_size == 1`` it runs in this process. A failing process makes
    this raise (``torch.multiprocessing.ProcessRaisedException``).
    """
    if world_size <= 1:
        fn(0, 1, *args)
        return
    mp.spawn(fn, args=(world_size, *args), nprocs=world_size, join=True)


def _spawned_entry(rank: int, world_size: int, fn: Callable, args, prog: str) -> None:
    """DDP worker entry: a user mistake ends the process with one line and status 2."""
    from shirabe.cli import InputError

    try:
        fn(rank, world_size, args)
    except InputError as e:
        print(f"{prog} (rank {rank}): error: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)


def launch(fn: Callable, args, world_size: int, prog: str) -> int:
    """Run a training entry ``fn(rank, world_size, args, **kw)`` the way it was started.

    Under torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) this process is one
    rank (``fn`` gets ``local_rank=`` and ``use_env=True``); otherwise ``world_size``
    processes are spawned here (or ``fn`` runs in this process for 1). Returns the
    exit status: a worker's own status, or 1 when one raised.
    """
    env = torchrun_env()
    if env is not None:
        fn(env.rank, env.world_size, args, local_rank=env.local_rank, use_env=True)
        return 0
    if world_size <= 1:
        fn(0, 1, args)
        return 0
    try:
        spawn(_spawned_entry, world_size, (fn, args, prog))
    except mp.ProcessExitedException as e:
        return e.exit_code if e.exit_code and e.exit_code > 0 else 1
    except mp.ProcessRaisedException as e:
        print(f"{prog}: a training process failed:\n{e}", file=sys.stderr)
        return 1
    return 0
