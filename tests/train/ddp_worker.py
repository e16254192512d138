"""A tiny training run for the torchrun test: ``python -m torch.distributed.run --nproc-per-node 2
ddp_worker.py OUT_DIR``. Each rank trains the same float64 model with DDP (gloo), two accumulated
batches per update, and writes its final weights to ``OUT_DIR/rank<R>.pt``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_testlib import Regressor, make_batch, masked_loss  # noqa: E402

from shirabe.train.dist import cleanup_dist, launch, wrap_ddp  # noqa: E402
from shirabe.train.loop import Trainer, new_training_params  # noqa: E402
from shirabe.train.lr_scheduler import FixedLRScheduler  # noqa: E402
from shirabe.train.precision import MixedPrecision  # noqa: E402
from shirabe.train.process import setup_rank  # noqa: E402

NUM_UPDATES, ACCUM, LR = 3, 2, 0.3


def batch_for(rank: int, index: int) -> dict:
    """The ``index``-th batch rank ``rank`` draws (different sizes, so frame weighting matters)."""
    return make_batch(100 * rank + index, rows=1 + (rank + index) % 3, max_frames=7, dtype=torch.float64)


class RankBatches:
    def __init__(self, rank: int):
        self.rank, self.index = rank, 0

    def batch(self) -> dict:
        self.index += 1
        return batch_for(self.rank, self.index - 1)

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"]


def run(rank: int, world_size: int, args, local_rank: int | None = None, use_env: bool = False) -> None:
    device, _ = setup_rank(rank, world_size, args, local_rank, use_env)
    model = Regressor(seed=0, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    params = new_training_params(exp_dir=args.exp_dir, num_iters=NUM_UPDATES, save_every_n=0, valid_interval=0,
                                 log_interval=1, accum_grad=ACCUM)
    trainer = Trainer(params, wrap_ddp(model, device), opt, FixedLRScheduler(opt), RankBatches(rank), masked_loss,
                      device, MixedPrecision("float32", device), rank=rank, world_size=world_size)
    trainer.fit()
    torch.save({"world_size": world_size, "state": model.state_dict()}, Path(args.exp_dir) / f"rank{rank}.pt")
    cleanup_dist()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    args = argparse.Namespace(device="cpu", num_threads=1, exp_dir=out, master_port=0, verbose=False)
    sys.exit(launch(run, args, 1, "ddp_worker"))
