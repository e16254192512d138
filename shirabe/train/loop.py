"""A model-agnostic training loop in the icefall style, resumable to the batch.

The model package supplies ``compute_loss(model, batch, is_training) -> (loss,
metrics)`` (``metrics`` a :class:`MetricsTracker` with at least ``frames``,
the normaliser the loss is a mean over, and ``utterances``) and the training
data (see :mod:`shirabe.train.sampler`: an epoch-based DataLoader or a
step-based sampler); :class:`Trainer` does the rest. ``docs/training.md``
describes the contract and the options.

Per optimizer update (``params.batch_idx_train`` counts updates):

* ``accum_grad`` batches, each an autocast forward (:class:`MixedPrecision`) and
  a backward. Accumulation weights every batch by its share of the group's
  frames, so the update equals that of one batch holding all of them (see
  :meth:`Trainer.train_step`); under DDP the gradients are all-reduced once per
  update (``no_sync`` for the others);
* the learning-rate schedule (``step_batch``; with ``lr_hours > 0`` also
  ``step_epoch`` with the hours of audio seen); gradient-norm clipping at
  ``max_grad_norm`` (0 = off) after the fp16 gradients are unscaled; the
  optimizer step (skipped by the GradScaler on overflow); grad-scale
  bookkeeping; :meth:`Trainer.after_step` (a hook);
* the running average ``model_avg`` (rank 0, every ``average_period`` updates),
  validation every ``valid_interval`` updates, ``checkpoint-B.pt`` every
  ``save_every_n`` updates (only the newest ``keep_last_k`` are kept), a log
  line, TensorBoard scalars and a progress bar.

Per epoch (epoch-based data): reseeding (``seed + epoch - 1``, plus ``1000 *
rank`` so ranks draw different noise), ``sampler.set_epoch``, and
``epoch-N.pt`` plus ``best-train-loss.pt`` / ``best-valid-loss.pt`` when they
improved. A group of batches cut short by the end of an epoch still makes an
update. ``num_iters > 0`` stops after that many updates (and saves
``checkpoint-<num_iters>.pt``) instead of after ``num_epochs``; such a run
validates and saves by updates only (``valid_interval``, ``save_every_n``), not
at the end of each pass over the data, which on a small corpus is every few
batches. Step-based data has no epochs and needs it.

Validation is deterministic: it runs in float32 with the random generators
forked and reseeded with ``seed``, and ``compute_loss`` gets
``is_training=False`` (ZipVoice then uses ``t = arange(B) / B``), so successive
validation losses are comparable and validating does not change the training's
random stream. It also runs once before the first update of a fresh run,
giving the untrained loss.

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
file, then rename), so a process killed at any time loses only the updates
since the last checkpoint. For a peft-wrapped model checkpoints hold only the
trainable (adapter) tensors (:mod:`shirabe.train.adapters`).
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
from shirabe.train.adapters import is_peft_model, load_trainable_state_dict, trainable_state_dict
from shirabe.train.checkpoint import (
    atomic_save,
    find_checkpoints,
    remove_checkpoints,
    safe_load,
    strip_module_prefix,
    update_averaged_model,
)
from shirabe.train.dist import all_gather_objects, barrier, is_distributed
from shirabe.train.metrics import MetricsTracker, TensorBoard
from shirabe.train.params import AttributeDict
from shirabe.train.precision import MixedPrecision
from shirabe.train.rng import capture_rng_state, restore_rng_state, seed_everything
from shirabe.train.sampler import forever, sampler_kind

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
    "accum_grad": 1,
    "max_grad_norm": 0.0,
    "gradient_checkpointing": False,
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


#: the methods that switch activation recomputation on, in order of preference (transformers 5
#: renamed gradient_checkpointing_enable, which it keeps as a deprecated alias)
CHECKPOINTING_METHODS = ("activation_checkpointing_enable", "gradient_checkpointing_enable")


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Call ``model.gradient_checkpointing_enable()`` (or its newer name
    ``activation_checkpointing_enable()``; transformers and peft models have them);
    a one-line :class:`InputError` for a model without either."""
    module = unwrap(model)
    for name in CHECKPOINTING_METHODS:
        enable = getattr(module, name, None)
        if callable(enable):
            enable()
            return
    raise InputError(f"--gradient-checkpointing: {type(module).__name__} cannot recompute activations "
                     "(it has no gradient_checkpointing_enable())")


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

    ``model`` may be DDP-wrapped. ``train_dl`` is an epoch-based DataLoader or a
    step-based sampler (:mod:`shirabe.train.sampler`). ``model_state_dict(module)``
    says what a checkpoint stores for the (unwrapped) model and for ``model_avg``
    (default: the full state_dict; for a peft model only its trainable tensors),
    and ``load_model_state(module, state_dict)`` loads it back (default: strict).
    ``extra_state`` entries are stored at the top level of every checkpoint.
    """

    def __init__(
        self,
        params: AttributeDict,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler,
        train_dl,
        compute_loss: LossFn,
        device: torch.device,
        precision: MixedPrecision,
        valid_dl=None,
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
        self.kind = sampler_kind(train_dl)
        if self.kind == "step" and params.num_iters <= 0:
            raise ValueError("step-based training data yields batches forever: set num_iters > 0")
        if int(params.accum_grad) < 1:
            raise ValueError(f"accum_grad must be >= 1, got {params.accum_grad}")
        if float(params.max_grad_norm) < 0:
            raise ValueError(f"max_grad_norm must be >= 0 (0 = off), got {params.max_grad_norm}")
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
        self.adapter_only = model_state_dict is None and is_peft_model(unwrap(model))
        if self.adapter_only:
            model_state_dict = trainable_state_dict
            if load_model_state is None:
                load_model_state = load_trainable_state_dict
            n = len(trainable_state_dict(unwrap(model)))
            logger.info("peft model: checkpoints hold only its %d trainable (adapter) tensors", n)
        self.model_state_dict = model_state_dict or (lambda m: m.state_dict())
        self.load_model_state = load_model_state
        if params.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.exp_dir = Path(params.exp_dir)
        self.batches_per_epoch = batches_per_epoch
        self.extra_state = dict(extra_state or {})
        # loop state saved in checkpoints
        self.tot_loss = MetricsTracker()  # decayed running sums for the log
        self.epoch_loss = MetricsTracker()  # plain sums over the current epoch
        self.epoch_batches = 0  # batches consumed in the current epoch
        # the group of batches accumulated for the next update (empty at every checkpoint)
        self._accum_count = 0
        self._ref_frames = 1.0
        self._group_frames = 0.0
        self._group_metrics = MetricsTracker()
        self.last_grad_norm: float | None = None
        self._pending_rng: dict | None = None
        self._resumed_mid_epoch = False
        self._last_valid_batch = -1
        self._bar: tqdm | None = None
        self._last_log_time = time.monotonic()
        self._frames_since_log = 0.0

    # -- checkpoints -----------------------------------------------------------

    @property
    def sampler(self):
        return self.train_dl if self.kind == "step" else self.train_dl.sampler

    def _sampler_state(self) -> dict:
        """The sampler's state as of the batches the loop consumed (see the module docstring)."""
        state = copy.deepcopy(self.sampler.state_dict())
        diag = state.get("diagnostics") if isinstance(state, dict) else None
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

    def save_model(self, filename: Path, to_state: Callable[[nn.Module], dict] | None = None) -> Path | None:
        """Write the model alone (rank 0; others return None), e.g. a package's release layout.

        ``to_state(unwrapped_model)`` gives what is stored (default: ``{"model": state}``
        with the checkpoints' ``model_state_dict``).
        """
        if self.rank != 0:
            return None
        module = unwrap(self.model)
        state = to_state(module) if to_state is not None else {"model": self.model_state_dict(module)}
        path = atomic_save(state, filename)
        logger.info("saved %s", path)
        return path

    def _load_model(self, module: nn.Module, state: dict, filename: Path) -> None:
        if self.load_model_state is load_trainable_state_dict:
            load_trainable_state_dict(module, state, str(filename))
        elif self.load_model_state is not None:
            self.load_model_state(module, state)
        else:
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise InputError(f"{filename}: does not fit the model ({str(e).splitlines()[0]})") from e

    def resume(self, filename: Path, mid_epoch: bool, expect: dict | None = None) -> dict:
        """Restore a checkpoint written by :meth:`save` (see the module docstring).

        ``expect`` names top-level entries (from ``extra_state``) the checkpoint must
        have with these values, e.g. ``{"phase": 1}``; a mismatch is an InputError.
        Returns the checkpoint.
        """
        ckpt = safe_load(filename)
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            raise InputError(f"{filename}: not a training checkpoint (no 'model' entry)")
        for key, value in (expect or {}).items():
            if ckpt.get(key) != value:
                raise InputError(f"{filename}: a checkpoint of {key} {ckpt.get(key)!r}, this run has {key} {value!r}")
        self._load_model(unwrap(self.model), strip_module_prefix(ckpt["model"]), filename)
        if self.model_avg is not None and "model_avg" in ckpt:
            self._load_model(self.model_avg, ckpt["model_avg"], filename)
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
            return ckpt
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
        return ckpt

    def resume_latest(self, expect: dict | None = None) -> Path | None:
        """Resume exactly from the newest ``EXP/checkpoint-B.pt``, if there is one; returns its path."""
        found = find_checkpoints(self.exp_dir)
        if not found:
            return None
        self.resume(Path(found[0]), mid_epoch=True, expect=expect)
        return Path(found[0])

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

    # -- one update -------------------------------------------------------------

    def _step_lr(self) -> None:
        p = self.params
        self.scheduler.step_batch(p.batch_idx_train)
        if p.lr_hours > 0:
            seconds = p.batch_idx_train * p.accum_grad * p.max_duration * self.world_size
            self.scheduler.step_epoch(seconds / 3600)

    def _optimized_params(self) -> list[torch.Tensor]:
        return [q for group in self.optimizer.param_groups for q in group["params"]]

    @torch.no_grad()
    def _scale_grads(self, factor: float) -> None:
        if factor != 1.0:
            for q in self._optimized_params():
                if q.grad is not None:
                    q.grad.mul_(factor)

    @torch.no_grad()
    def _all_reduce_grads(self) -> None:
        """Mean of the gradients over the ranks (for a group that ended without a synced backward)."""
        import torch.distributed as dist

        for q in self._optimized_params():
            if q.grad is None:
                q.grad = torch.zeros_like(q)
            dist.all_reduce(q.grad)
            q.grad.div_(self.world_size)

    def train_step(self, batch) -> MetricsTracker:
        """Forward and backward of one batch, accumulated into the gradients of the next update.

        With ``accum_grad = N > 1`` the gradient of the update is that of
        ``sum_i f_i loss_i / sum_i f_i`` over the group's batches (``f_i`` their
        ``frames``, ``loss_i`` a mean over them), i.e. of one batch holding all the
        frames: batch ``i`` is back-propagated with weight ``f_i / f_1`` (keeping the
        gradients at their usual size for fp16), and before the group's last
        backward the gradients gathered so far are rescaled to ``f_1 / sum f``, the
        last batch taking ``f_N / sum f``. Under DDP only that last backward
        synchronises (the others run in ``no_sync``), so every rank applies its own
        frame weights and DDP then averages the ranks, as it does without
        accumulation.
        """
        p = self.params
        n = int(p.accum_grad)
        last = self._accum_count + 1 >= n
        sync = contextlib.nullcontext()
        if not last and isinstance(self.model, nn.parallel.DistributedDataParallel):
            sync = self.model.no_sync()
        with sync:
            with self.precision.autocast():
                loss, metrics = self.compute_loss(self.model, batch, True)
            if not self.precision.scaling and not bool(torch.isfinite(loss.detach())):
                ids = batch.get("cut_ids", []) if isinstance(batch, dict) else []
                raise RuntimeError(
                    f"non-finite loss {loss.item()} at batch {p.batch_idx_train + 1}"
                    + (f" (cuts: {', '.join(map(str, ids[:10]))})" if ids else "")
                    + "; rerun with --inf-check 1 (where the binary has it) to find the module"
                )
            if n > 1:
                frames = float(metrics.get(MetricsTracker.norm_key, 1.0))
                if self._accum_count == 0:
                    self._ref_frames = frames if frames > 0 else 1.0
                    self._group_frames = 0.0
                self._group_frames += frames
                if last:
                    total = self._group_frames if self._group_frames > 0 else 1.0
                    self._scale_grads(self._ref_frames / total)
                    loss = loss * (frames / total)
                else:
                    loss = loss * (frames / self._ref_frames)
            self.precision.scaler.scale(loss).backward()
        self._accum_count += 1
        self._group_metrics = self._group_metrics + metrics
        return metrics

    def optimizer_step(self) -> None:
        """One update from the gradients of the batches accumulated since the last one."""
        p = self.params
        n = int(p.accum_grad)
        if n > 1 and 0 < self._accum_count < n:  # a group cut short by the end of the epoch
            total = self._group_frames if self._group_frames > 0 else 1.0
            self._scale_grads(self._ref_frames / total)
            if is_distributed():
                self._all_reduce_grads()
        self._accum_count = 0
        p.batch_idx_train += 1
        self._step_lr()
        if p.max_grad_norm > 0:
            self.precision.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self._optimized_params(), float(p.max_grad_norm))
            self.last_grad_norm = float(norm)
        self.precision.scaler.step(self.optimizer)
        self.precision.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.after_batch(p.batch_idx_train)
        if self.rank == 0 and self.model_avg is not None and p.batch_idx_train % p.average_period == 0:
            update_averaged_model(p.average_period, p.batch_idx_train, self.model, self.model_avg)
        self.after_step()

    def after_step(self) -> None:
        """Called after every optimizer update (e.g. to update an EMA teacher); does nothing here."""

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
            n = int(p.accum_grad)
            per_epoch = math.ceil(self.batches_per_epoch / n)
            remaining_epochs = p.num_epochs - max(p.cur_epoch, p.start_epoch) + 1
            return int(p.batch_idx_train - math.ceil(self.epoch_batches / n) + per_epoch * remaining_epochs)
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
        norm = f", grad norm {self.last_grad_norm:.3g}" if self.last_grad_norm is not None else ""
        logger.info(
            "epoch %d, batch %d (global %d): loss %.4f (running %.4f), lr %.3e, grad scale %g%s, "
            "batch size %d, %.0f frames/s%s",
            p.cur_epoch, self.epoch_batches, p.batch_idx_train, cur.averages().get("loss", math.nan),
            tot.averages().get("loss", math.nan), lr, self.precision.scale, norm,
            int(cur.get("utterances", 0)), frames_per_s, eta,
        )
        scalars = {"loss": cur.averages().get("loss", math.nan), "running_loss": tot.averages().get("loss", math.nan),
                   "lr": lr, "frames_per_second": frames_per_s}
        if self.last_grad_norm is not None:
            scalars["grad_norm"] = self.last_grad_norm
        if self.precision.scaling:
            scalars["grad_scale"] = self.precision.scale
        self.tb.add_scalars("train/", scalars, p.batch_idx_train)

    # -- epochs -----------------------------------------------------------------------

    def _stop_now(self) -> bool:
        p = self.params
        return p.num_iters > 0 and p.batch_idx_train >= p.num_iters

    def _update(self) -> None:
        """The optimizer update for the accumulated group, then its bookkeeping."""
        p = self.params
        self.optimizer_step()
        metrics, self._group_metrics = self._group_metrics, MetricsTracker()
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

    def train_one_epoch(self) -> bool:
        """Train until the data are exhausted or ``num_iters`` is reached; True if stopped early."""
        p = self.params
        unwrap(self.model).train()
        self.model.train()
        batches = forever(self.train_dl) if self.kind == "step" else iter(self.train_dl)
        if self._pending_rng is not None:  # after creating the iterator, which draws a seed
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        if self._stop_now():
            return True
        for batch in batches:
            self.train_step(batch)
            self.epoch_batches += 1
            if self._accum_count >= p.accum_grad:
                self._update()
                if self._stop_now():
                    return True
        if self._accum_count > 0:
            self._update()
        return self._stop_now()

    def _end_of_epoch(self) -> None:
        p = self.params
        train_loss = self.epoch_loss.reduce(self.device).averages().get("loss", math.nan)
        p.train_loss = train_loss
        if train_loss < p.best_train_loss:
            p.best_train_loss, p.best_train_epoch = train_loss, p.cur_epoch
        if self.rank == 0:
            logger.info("epoch %d done: %d batches, train loss %.4f", p.cur_epoch, self.epoch_batches, train_loss)
            self.tb.add_scalars("train/", {"epoch_loss": train_loss}, p.batch_idx_train)
        self.batches_per_epoch = self.epoch_batches
        if p.num_iters > 0:  # a run measured in updates: validation and checkpoints go by updates only
            return
        if self.valid_dl is not None and self._last_valid_batch != p.batch_idx_train:
            self.validate()
        path = self.save(self.exp_dir / f"epoch-{p.cur_epoch}.pt")
        if path is not None:
            self._copy_best(path)

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
                if self.kind == "epoch":
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
