"""torchrun: two CPU processes (gloo) train one model with DDP and gradient accumulation; both end with
the same weights, equal to those of a plain loop that averages the two ranks' gradients."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from ddp_worker import ACCUM, LR, NUM_UPDATES, batch_for
from train_testlib import Regressor, concat_batches, masked_loss

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def reference_weights() -> dict:
    """SGD on the mean over ranks of each rank's gradient of its frame-weighted loss over its
    ACCUM batches (computed on their concatenation)."""
    model = Regressor(seed=0, dtype=torch.float64)
    for update in range(NUM_UPDATES):
        grads = []
        for rank in (0, 1):
            model.zero_grad()
            batch = concat_batches([batch_for(rank, update * ACCUM + i) for i in range(ACCUM)])
            masked_loss(model, batch, True)[0].backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        with torch.no_grad():
            for p, g0, g1 in zip(model.parameters(), *grads, strict=True):
                p -= LR * (g0 + g1) / 2
    return model.state_dict()


def test_two_cpu_processes_under_torchrun_agree_with_a_reference(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{free_port()}",
           str(HERE / "ddp_worker.py"), str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    assert [x["world_size"] for x in ranks] == [2, 2]
    reference = reference_weights()
    start = Regressor(seed=0, dtype=torch.float64).state_dict()
    for k, v in reference.items():
        assert torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]), k
        assert torch.allclose(ranks[0]["state"][k], v, rtol=0, atol=1e-10), k
        assert not torch.allclose(v, start[k]), k  # training moved every tensor
    # rank 0 wrote the final checkpoint; every rank its own log
    assert (tmp_path / f"checkpoint-{NUM_UPDATES}.pt").is_file()
    assert len(list((tmp_path / "log").glob("log-train-*-[01]"))) == 2
