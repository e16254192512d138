"""A model-agnostic training loop in the icefall style, resumable to the batch.

The model package supplies ``compute_loss(model, batch, is_training) -> (loss,
metrics)`` (``metrics`` a :class:`MetricsTracker` with at least ``frames``,
the normaliser, and ``utterances``); :class:`Trainer` does the rest:

* per batch: autocast forward, scaled backward, learning-rate schedule
  (``step_batch``; with ``lr_hours > 0`` also ``step_epoch`` with the hours of
  audio seen), optimizer step, grad-scale bookkeeping, the running average
  ``model_avg`` (rank 0, every ``average_period`` batches), validation every
  ``valid_interval`` batches, ``checkpoint-B.pt`` every ``save_every_n``
  batches (only the newest ``keep_last_k`` are kept), a log line, TensorBoard
  scalars and a progress bar;
* per epoch: reseeding (``seed + epoch - 1``, plus ``1000 * rank`` so ranks
  draw different noise), ``sampler.set_epoch``, and ``epoch-N.pt`` plus
  ``best-train-loss.pt`` / ``best-valid-loss.pt`` when they improved;
* ``num_iters > 0`` stops after that many batches (and saves
  ``checkpoint-<num_iters>.pt``) instead of after ``num_epochs``.

Validation is deterministic: it runs with the random generators forked and
reseeded with ``seed``, and uses ``t = arange(B) / B`` inside ``compute_loss``
(``is_training=False``), so successive validation losses are comparable and
validating does not change the training's random stream. It also runs once
before the first batch of a fresh run, giving the untrained loss.

Exact resumption. A checkpoint holds the model, ``model_avg``, the optimizer,
scheduler and grad-scaler states, the sampler state, every rank's random
generator states and the loop's own counters (running losses, batches done in
the epoch). :meth:`Trainer.resume` with ``mid_epoch=True`` (``checkpoint-B.pt``)
restores all of it, so the run continues exactly where the checkpoint was
taken: same batches, same noise, same updates. The sampler state is saved with
the number of batches the loop has *consumed* (not the number the sampler has
produced, which runs ahead when DataLoader workers prefetch), so resumption is
exact with ``num_workers > 0`` too. With ``mid_epoch=False`` (``epoch-N.pt``)
the sampler and random state are not restored: the next epoch starts afresh,
seeded as it would have been. Checkpoints are written atomically (temporary
file, then rename), so a process killed at any time loses only the batches
since the last checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from shirabe.cli import InputError
from shirabe.train.checkpoint import (
    atomic_save,
    remove_checkpoints,
    safe_load,
    strip_module_prefix,
    update_averaged_model,
)
from shirabe.train.dist import all_gather_objects, barrier
from shirabe.train.metrics import MetricsTracker, TensorBoard
from shirabe.train.params import AttributeDict
from shirabe.train.precision import MixedPrecision
from shirabe.train.rng import capture_rng_state, restore_rng_state, seed_everything

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, dict, bool], "tuple[torch.Tensor, MetricsTracker]"]

#: params the loop reads (the binary's parser provides them) and their defaults
LOOP_DEFAULTS = {
    "seed": 42,
    "num_epochs": 11,
    "start_epoch": 1,
    "num_iters": 0,
    "save_every_n": 5000,
    "keep_last_k": 30,
    "average_period": 200,
    "log_interval": 50,
    "valid_interval": 5000,
    "reset_interval": 200,
    "lr_hours": 0.0,
    "max_duration": 200.0,
    "ref_duration": 50.0,
    "batch_count_offset": 0,
}

#: bookkeeping that lives in params and is saved/restored with every checkpoint
RESUMED_PARAMS = (
    "batch_idx_train",
    "cur_epoch",
    "best_train_loss",
    "best_valid_loss",
    "best_train_epoch",
    "best_valid_epoch",
    "train_loss",
    "valid_loss",
)

SEED_STRIDE_PER_RANK = 1000


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def num_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def set_batch_count(model: nn.Module, batch_count: float) -> None:
    """Set ``batch_count`` on every submodule that has one (scheduled regularisers read it)."""
    for module in model.modules():
        if hasattr(module, "batch_count"):
            module.batch_count = batch_count


def new_training_params(**overrides) -> AttributeDict:
    """Loop defaults plus the bookkeeping a fresh run starts from."""
    params = AttributeDict(LOOP_DEFAULTS)
    params.update(
        batch_idx_train=0,
        cur_epoch=0,
        best_train_loss=math.inf,
        best_valid_loss=math.inf,
        best_train_epoch=-1,
        best_valid_epoch=-1,
        train_loss=math.inf,
        valid_loss=math.inf,
    )
    params.update(overrides)
    return params


def remove_stale_temp_files(exp_dir: Path) -> list[str]:
    """Delete temporary files left by saves that were killed (``.NAME.pt.*.tmp``)."""
    removed = []
    for f in glob.glob(os.path.join(str(exp_dir), ".*.pt.*.tmp")):
        os.remove(f)
        removed.append(f)
    return removed


class Trainer:
    """Runs the training described in the module docstring.

    ``model`` may be DDP-wrapped. ``model_state_dict(module)`` says what a
    checkpoint stores for the (unwrapped) model and for ``model_avg`` (default:
    the full state_dict; adapter-only fine-tuning passes its own), and
    ``load_model_state(module, state_dict)`` loads it back (default: strict).
    """

    def __init__(
        self,
        params: AttributeDict,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler,
        train_dl: torch.utils.data.DataLoader,
        compute_loss: LossFn,
        device: torch.device,
        precision: MixedPrecision,
        valid_dl: torch.utils.data.DataLoader | None = None,
        rank: int = 0,
        world_size: int = 1,
        model_avg: nn.Module | None = None,
        tb: TensorBoard | None = None,
        model_state_dict: Callable[[nn.Module], dict] | None = None,
        load_model_state: Callable[[nn.Module, dict], None] | None = None,
        batches_per_epoch: int | None = None,
        extra_state: dict | None = None,
    ):
        for k, v in LOOP_DEFAULTS.items():
            params.setdefault(k, v)
        self.params = params
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_dl = train_dl
        self.valid_dl = valid_dl
        self.compute_loss = compute_loss
        self.device = torch.device(device)
        self.precision = precision
        self.rank, self.world_size = rank, world_size
        self.model_avg = model_avg
        self.tb = tb or TensorBoard("", enabled=False)
        self.model_state_dict = model_state_dict or (lambda m: m.state_dict())
        self.load_model_state = load_model_state or (lambda m, sd: m.load_state_dict(sd, strict=True))
        self.exp_dir = Path(params.exp_dir)
        self.batches_per_epoch = batches_per_epoch
        self.extra_state = dict(extra_state or {})
        # loop state saved in checkpoints
        self.tot_loss = MetricsTracker()  # decayed running sums for the log
        self.epoch_loss = MetricsTracker()  # plain sums over the current epoch
        self.epoch_batches = 0  # batches consumed in the current epoch
        self._pending_rng: dict | None = None
        self._resumed_mid_epoch = False
        self._last_valid_batch = -1
        self._bar: tqdm | None = None
        self._last_log_time = time.monotonic()
        self._frames_since_log = 0.0

    # -- checkpoints -----------------------------------------------------------

    @property
    def sampler(self):
        return self.train_dl.sampler

    def _sampler_state(self) -> dict:
        """The sampler's state as of the batches the loop consumed (see the module docstring)."""
        state = copy.deepcopy(self.sampler.state_dict())
        diag = state.get("diagnostics")
        if isinstance(diag, dict) and "stats_per_epoch" in diag:
            stats = diag["stats_per_epoch"].get(diag["current_epoch"])
            if stats is not None:
                stats["kept_batches"] = self.epoch_batches
                stats["discarded_batches"] = 0
        return state

    def _averaged_state(self) -> dict | None:
        if self.model_avg is None:
            return None
        return {
            k: v.to(torch.float32) if v.is_floating_point() else v
            for k, v in self.model_state_dict(self.model_avg).items()
        }

    def save(self, filename: Path) -> Path | None:
        """Write the full training state (collective under DDP; rank 0 writes)."""
        rng_states = all_gather_objects(capture_rng_state())
        if self.rank != 0:
            return None
        ckpt = {
            "model": self.model_state_dict(unwrap(self.model)),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.precision.state_dict(),
            "sampler": self._sampler_state(),
            "rng_states": rng_states,
            "loop_state": {
                "tot_loss": dict(self.tot_loss),
                "epoch_loss": dict(self.epoch_loss),
                "epoch_batches": self.epoch_batches,
            },
        }
        avg = self._averaged_state()
        if avg is not None:
            ckpt["model_avg"] = avg
        ckpt.update(self.extra_state)
        for k, v in self.params.plain().items():
            ckpt.setdefault(k, v)
        path = atomic_save(ckpt, filename)
        logger.info("saved %s", path)
        return path

    def resume(self, filename: Path, mid_epoch: bool) -> None:
        """Restore a checkpoint written by :meth:`save` (see the module docstring)."""
        ckpt = safe_load(filename)
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise InputError(f"{filename}: not a training checkpoint (no 'model' entry)")
        self.load_model_state(unwrap(self.model), strip_module_prefix(ckpt["model"]))
        if self.model_avg is not None and "model_avg" in ckpt:
            self.load_model_state(self.model_avg, ckpt["model_avg"])
        for name, obj in (("optimizer", self.optimizer), ("scheduler", self.scheduler), ("grad_scaler", self.precision)):
            if name in ckpt:
                obj.load_state_dict(ckpt[name])
            else:
                logger.warning("%s: has no %s state; starting it afresh", filename, name)
        for k in RESUMED_PARAMS:
            if k in ckpt:
                self.params[k] = ckpt[k]
        if not mid_epoch:
            logger.info("resumed from %s (batch %d, epoch %d done)", filename, self.params.batch_idx_train, self.params.cur_epoch)
            return
        if "sampler" not in ckpt:
            raise InputError(f"{filename}: has no sampler state; cannot resume mid-epoch")
        self.sampler.load_state_dict(copy.deepcopy(ckpt["sampler"]))
        loop_state = ckpt.get("loop_state", {})
        self.tot_loss = MetricsTracker(loop_state.get("tot_loss", {}))
        self.epoch_loss = MetricsTracker(loop_state.get("epoch_loss", {}))
        self.epoch_batches = int(loop_state.get("epoch_batches", 0))
        rng_states = ckpt.get("rng_states") or []
        if len(rng_states) == self.world_size:
            self._pending_rng = rng_states[self.rank]
        else:
            logger.warning(
                "%s: saved random states are for %d process(es), this run has %d; not restored "
                "(the run continues, but not bit-exactly)", filename, len(rng_states), self.world_size
            )
        self.params.start_epoch = int(self.params.cur_epoch)
        self._resumed_mid_epoch = True
        logger.info(
            "resumed from %s at batch %d (epoch %d, %d batches into it)",
            filename, self.params.batch_idx_train, self.params.cur_epoch, self.epoch_batches,
        )

    def _save_checkpoint_b(self) -> None:
        p = self.params
        self.save(self.exp_dir / f"checkpoint-{p.batch_idx_train}.pt")
        if self.rank == 0:
            remove_checkpoints(self.exp_dir, p.keep_last_k)

    def _copy_best(self, src: Path) -> None:
        p = self.params
        for kind, epoch in (("train", p.best_train_epoch), ("valid", p.best_valid_epoch)):
            if epoch == p.cur_epoch:
                dst = self.exp_dir / f"best-{kind}-loss.pt"
                tmp = dst.with_name(f".{dst.name}.copy.tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
                logger.info("best %s loss so far (%.4f): %s", kind, p[f"best_{kind}_loss"], dst)

    # -- one step ----------------------------------------------------------------

    def _step_lr(self) -> None:
        p = self.params
        self.scheduler.step_batch(p.batch_idx_train)
        if p.lr_hours > 0:
            self.scheduler.step_epoch(p.batch_idx_train * p.max_duration * self.world_size / 3600)

    def _adjusted_batch_count(self) -> float:
        p = self.params
        return p.batch_idx_train * (p.max_duration * self.world_size) / p.ref_duration + p.batch_count_offset

    def train_step(self, batch: dict) -> MetricsTracker:
        p = self.params
        if self.epoch_batches % 10 == 0:
            set_batch_count(self.model, self._adjusted_batch_count())
        p.batch_idx_train += 1
        with self.precision.autocast():
            loss, metrics = self.compute_loss(self.model, batch, True)
        if not self.precision.enabled and not bool(torch.isfinite(loss.detach())):
            ids = batch.get("cut_ids", [])
            raise RuntimeError(
                f"non-finite loss {loss.item()} at batch {p.batch_idx_train} (cuts: {', '.join(map(str, ids[:10]))}); "
                "rerun with --inf-check 1 to find the module"
            )
        self.precision.scaler.scale(loss).backward()
        self._step_lr()
        self.precision.scaler.step(self.optimizer)
        self.precision.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.after_batch(p.batch_idx_train)
        if self.rank == 0 and self.model_avg is not None and p.batch_idx_train % p.average_period == 0:
            update_averaged_model(p.average_period, p.batch_idx_train, self.model, self.model_avg)
        return metrics

    # -- validation -----------------------------------------------------------------

    def validate(self, track_best: bool = True) -> float:
        """Loss over ``valid_dl`` (summed over ranks), with the generators forked and reseeded."""
        if self.valid_dl is None:
            return math.nan
        model = unwrap(self.model)  # no DDP collectives: ranks may see different batch counts
        was_training = model.training
        model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        tot = MetricsTracker()
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(self.params.seed)
            for batch in self.valid_dl:
                _, metrics = self.compute_loss(model, batch, False)
                tot = tot + metrics
        model.train(was_training)
        tot = tot.reduce(self.device)
        loss = tot.averages().get("loss", math.nan)
        p = self.params
        if track_best:
            self._last_valid_batch = p.batch_idx_train
            p.valid_loss = loss
        if track_best and loss < p.best_valid_loss:
            p.best_valid_loss, p.best_valid_epoch = loss, p.cur_epoch
        if self.rank == 0:
            logger.info("epoch %d, batch %d: validation %s", p.cur_epoch, p.batch_idx_train, tot)
            self.tb.add_scalars("valid/", {"loss": loss}, p.batch_idx_train)
            if self.device.type == "cuda":
                logger.info("peak CUDA memory so far: %.0f MiB", torch.cuda.max_memory_allocated(self.device) / 2**20)
        return loss

    # -- logging --------------------------------------------------------------------

    def _progress_total(self) -> int | None:
        p = self.params
        if p.num_iters > 0:
            return int(p.num_iters)
        if self.batches_per_epoch:
            remaining_epochs = p.num_epochs - max(p.cur_epoch, p.start_epoch) + 1
            return int(p.batch_idx_train - self.epoch_batches + self.batches_per_epoch * remaining_epochs)
        return None

    def _log(self, metrics: MetricsTracker) -> None:
        p = self.params
        cur = metrics.reduce(self.device)
        tot = self.tot_loss.reduce(self.device)
        if self.rank != 0:
            return
        now = time.monotonic()
        frames_per_s = self._frames_since_log * self.world_size / max(now - self._last_log_time, 1e-9)
        self._last_log_time, self._frames_since_log = now, 0.0
        lr = max(self.scheduler.get_last_lr())
        eta = ""
        if self._bar is not None and self._bar.total:
            rate = self._bar.format_dict.get("rate")
            if rate:
                eta = f", ETA {tqdm.format_interval((self._bar.total - self._bar.n) / rate)}"
        logger.info(
            "epoch %d, batch %d (global %d): loss %.4f (running %.4f), lr %.3e, grad scale %g, "
            "batch size %d, %.0f frames/s%s",
            p.cur_epoch, self.epoch_batches, p.batch_idx_train, cur.averages().get("loss", math.nan),
            tot.averages().get("loss", math.nan), lr, self.precision.scale,
            int(cur.get("utterances", 0)), frames_per_s, eta,
        )
        self.tb.add_scalars("train/", {"loss": cur.averages().get("loss", math.nan),
                                       "running_loss": tot.averages().get("loss", math.nan),
                                       "lr": lr, "frames_per_second": frames_per_s}, p.batch_idx_train)
        if self.precision.enabled:
            self.tb.add_scalars("train/", {"grad_scale": self.precision.scale}, p.batch_idx_train)

    # -- epochs -----------------------------------------------------------------------

    def _stop_now(self) -> bool:
        p = self.params
        return p.num_iters > 0 and p.batch_idx_train >= p.num_iters

    def train_one_epoch(self) -> bool:
        """Train until the sampler is exhausted or ``num_iters`` is reached; True if stopped early."""
        p = self.params
        unwrap(self.model).train()
        self.model.train()
        batches = iter(self.train_dl)
        if self._pending_rng is not None:  # after creating the iterator, which draws a seed
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        if self._stop_now():
            return True
        for batch in batches:
            metrics = self.train_step(batch)
            self.epoch_batches += 1
            self.tot_loss = self.tot_loss * (1.0 - 1.0 / p.reset_interval) + metrics
            self.epoch_loss = self.epoch_loss + metrics
            self._frames_since_log += float(metrics.get("frames", 0.0))
            if self._bar is not None:
                self._bar.update(1)
            if p.valid_interval > 0 and p.batch_idx_train % p.valid_interval == 0:
                self.validate()
            if p.save_every_n > 0 and p.batch_idx_train % p.save_every_n == 0:
                self._save_checkpoint_b()
            if p.log_interval > 0 and p.batch_idx_train % p.log_interval == 0:
                self._log(metrics)
            if self._stop_now():
                return True
        return False

    def _end_of_epoch(self) -> None:
        p = self.params
        train_loss = self.epoch_loss.reduce(self.device).averages().get("loss", math.nan)
        p.train_loss = train_loss
        if train_loss < p.best_train_loss:
            p.best_train_loss, p.best_train_epoch = train_loss, p.cur_epoch
        if self.valid_dl is not None and self._last_valid_batch != p.batch_idx_train:
            self.validate()
        if self.rank == 0:
            logger.info("epoch %d done: %d batches, train loss %.4f", p.cur_epoch, self.epoch_batches, train_loss)
            self.tb.add_scalars("train/", {"epoch_loss": train_loss}, p.batch_idx_train)
        path = self.save(self.exp_dir / f"epoch-{p.cur_epoch}.pt")
        if path is not None:
            self._copy_best(path)
        self.batches_per_epoch = self.epoch_batches

    def fit(self) -> None:
        p = self.params
        if self.rank == 0:
            for f in remove_stale_temp_files(self.exp_dir):
                logger.info("removed %s (left by an interrupted save)", f)
        if p.batch_idx_train == 0 and self.valid_dl is not None:
            self.validate(track_best=False)  # the untrained model's loss, for reference
        with contextlib.ExitStack() as stack:
            stack.callback(self.tb.flush)
            if self.rank == 0:
                interactive = sys.stderr.isatty()
                self._bar = tqdm(
                    total=self._progress_total(), initial=p.batch_idx_train, unit="batch", desc="training",
                    dynamic_ncols=True, mininterval=1.0 if interactive else 60.0,
                )
                stack.callback(self._bar.close)
                if interactive:  # log lines above the bar; in a log file the bar just prints now and then
                    stack.enter_context(logging_redirect_tqdm())
            self._last_log_time = time.monotonic()
            self._run_epochs()
        barrier()

    def _run_epochs(self) -> None:
        p = self.params
        last_epoch = sys.maxsize if p.num_iters > 0 else p.num_epochs
        epoch = p.start_epoch
        while epoch <= last_epoch and not self._stop_now():
            if not self._resumed_mid_epoch or epoch != p.start_epoch:
                seed_everything(p.seed + epoch - 1 + SEED_STRIDE_PER_RANK * self.rank)
                self.sampler.set_epoch(epoch - 1)
                self.epoch_batches = 0
                self.tot_loss, self.epoch_loss = MetricsTracker(), MetricsTracker()
            p.cur_epoch = epoch
            if p.lr_hours <= 0:
                self.scheduler.step_epoch(epoch - 1)
            if self.train_one_epoch():
                break
            if self.epoch_batches == 0:
                raise InputError(
                    f"epoch {epoch} had no batch: the training data holds less than one batch "
                    "(lower --max-duration, set --drop-last 0, or check --min-len/--max-len)"
                )
            self._end_of_epoch()
            if self._bar is not None:
                self._bar.total = self._progress_total()
                self._bar.refresh()
            epoch += 1
        if self._stop_now():
            if p.save_every_n <= 0 or p.batch_idx_train % p.save_every_n != 0:
                self._save_checkpoint_b()
            if self.rank == 0:
                logger.info("reached --num-iters %d; last checkpoint: %s", p.num_iters,
                            self.exp_dir / f"checkpoint-{p.batch_idx_train}.pt")
