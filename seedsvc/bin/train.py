"""Train SeedSVC: V2 (phase 0), F0 adapters (phase 1) or the DiT with them (phase 2).

The experiment directory describes itself: ``config.yaml`` (the resolved model and
training config), ``command.txt`` (each command line with its date, git revision and
package versions), ``checkpoint-N.pt`` (the full training state of
:class:`shirabe.train.loop.Trainer`, written atomically; the newest is resumed
exactly), ``model.pth`` (the result in upstream's ``{'net': {'cfm',
'length_regulator'}}`` layout), ``log-train-phaseN.txt`` and ``tensorboard/``. See
:mod:`seedsvc.training` for what each phase trains.

Phase 1 starts from a V2 checkpoint (``--checkpoint``; upstream's
``cfm_small.pth`` or a phase-0 ``model.pth``) and the V1 F0 embedding
(``--v1-f0-checkpoint``; without it the embedding is a seeded random table, which
the log says). Phase 2 starts from a phase-1 ``model.pth``.

Training is step-based: :class:`seedsvc.dataset.SegmentSampler` draws random crops
for ``num_steps`` optimizer updates. The options shared by every training binary
(precision, accumulation, clipping, DDP/torchrun) are described in docs/training.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml
from lhotse import CutSet

from seedsvc.dataset import SegmentSampler
from seedsvc.models import build_cfm, build_length_regulator, read_config, read_net
from seedsvc.models.loading import F0_KEY_PREFIXES, f0_block, load_part
from seedsvc.training import (
    SeedSVCTrainingModel,
    count_params,
    describe_groups,
    lr_scales,
    select_trainable,
)
from shirabe.cli import ArgumentParser, InputError, add_bool_argument, get_logger, run_main
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.loop import SEED_STRIDE_PER_RANK, Trainer, new_training_params
from shirabe.train.lr_scheduler import Eden
from shirabe.train.metrics import MetricsTracker, TensorBoard
from shirabe.train.optim import parameter_groups_by_prefix
from shirabe.train.options import add_training_arguments, check_training_arguments, resolve_dtype
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank, setup_rank_logging

logger = get_logger("seedsvc.bin.train")

MODULE = "seedsvc.bin.train"
TRAINING_DEFAULTS = {
    "segment_frames": 400,
    "batch_size": 8,
    "prompt_min": 0.1,
    "prompt_max": 0.5,
    "grad_clip": 1.0,
    "save_every": 200,
    "log_every": 25,
    "keep_checkpoints": 2,
    "phase0": {"lr": 2e-4, "num_steps": 1000, "warmup": 100},
    "phase1": {"lr": 1e-4, "num_steps": 1000, "warmup": 100},
    "phase2": {"lr": 1e-4, "num_steps": 500, "warmup": 50, "dit_lr_scale": 0.2},
}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.train", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="model/training YAML, e.g. conf/seedsvc_v1.yaml (required)")
    p.add_argument("--phase", type=int, choices=(0, 1, 2), required=True, help="training phase (required)")
    p.add_argument("--cuts", type=Path, required=True, help="training cuts with mel, f0, style, content (required)")
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment directory (required)")
    p.add_argument("--checkpoint", dest="init_checkpoint", type=Path, default=None, help="starting weights ({'net': ...} layout; needed by phases 1 and 2) (default: none, random weights)")
    p.add_argument("--v1-f0-checkpoint", type=Path, default=None, help="V1 singing checkpoint holding the F0 embedding (default: none, a seeded random table unless "
                        "--checkpoint has one)")
    add_bool_argument(p, "--no-f0", False, "build the model without F0 (the baseline)")
    p.add_argument("--num-iters", dest="num_steps", type=int, default=None,
                   help="optimizer updates (default: the config's training.phaseN.num_steps)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's training.phaseN.lr)")
    p.add_argument("--batch-size", type=int, default=None, help="crops per batch (default: the config's training.batch_size)")
    add_training_arguments(p, seed=0, dtype="float32", max_grad_norm=None, num_threads=torch.get_num_threads(),
                           num_threads_help="training (default: as many as PyTorch picks on this machine)")
    return p


def training_config(cfg: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TRAINING_DEFAULTS.items()}
    for k, v in (cfg.get("training") or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def check_content(cuts: CutSet, lr_block: dict, config: Path) -> None:
    """The cuts' content must suit the length regulator: token ids for ``is_discrete``, float features otherwise.

    Checks the first cut (kind, shape, id range); sets ``in_channels`` of a
    continuous regulator from its feature dim. Ids of every batch are checked in
    the training loop (:func:`check_batch_ids`).
    """
    cut = next(iter(cuts))
    if not cut.has_custom("content"):
        raise InputError(f"cut {cut.id} has no content features (run seedsvc.bin.compute_content)")
    c = np.asarray(cut.load_custom("content"))
    integer = np.issubdtype(c.dtype, np.integer)
    if lr_block.get("is_discrete", True):
        if not integer or c.ndim != 1:
            raise InputError(f"cut {cut.id}: content is {c.dtype} {list(c.shape)} features, but {config}: "
                             "cfm_length_regulator.is_discrete is true and takes (T,) token ids "
                             "(compute content with --content-extractor astral, or set is_discrete: false)")
        check_batch_ids(torch.from_numpy(c), lr_block, config, f"cut {cut.id}")
        return
    if integer or c.ndim != 2:
        raise InputError(f"cut {cut.id}: content is {c.dtype} {list(c.shape)} token ids, but {config}: "
                         "cfm_length_regulator.is_discrete is false and takes (T, D) float features "
                         "(set is_discrete: true and codebook_size, or use a continuous content extractor)")
    dim = int(c.shape[1])
    if lr_block.get("in_channels") not in (None, dim):
        raise InputError(f"{config}: cfm_length_regulator.in_channels is {lr_block['in_channels']}, "
                         f"the cuts' content has {dim} dims")
    lr_block["in_channels"] = dim


def check_batch_ids(ids: torch.Tensor, lr_block: dict, config: Path, where: str) -> None:
    """Token ids must be integers in [0, cfm_length_regulator.codebook_size)."""
    n = int(lr_block.get("codebook_size", 2048))
    if ids.is_floating_point():
        raise InputError(f"{where}: content is float features, {config} takes token ids (is_discrete: true)")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise InputError(f"{where}: content ids span [{int(ids.min())}, {int(ids.max())}], outside {config}'s "
                         f"cfm_length_regulator.codebook_size {n}")


@dataclass
class Plan:
    """What the checks before training found out, handed to every training process."""

    cfg: dict
    tcfg: dict
    pcfg: dict
    cuts: CutSet
    use_f0: bool
    discrete: bool
    num_steps: int
    lr: float
    batch_size: int
    argv: list[str] | None


def plan_training(args, argv: list[str] | None) -> Plan:
    """Read and check the config and the cuts (one-line errors before any process starts)."""
    cfg = read_config(args.config)
    tcfg = training_config(cfg)
    pcfg = dict(tcfg[f"phase{args.phase}"])
    use_f0 = args.phase > 0 and not args.no_f0
    if use_f0 and f0_block(cfg) is None:
        raise InputError(f"{args.config}: phase {args.phase} needs an enabled 'f0' block (or pass --no-f0)")
    if args.phase > 0 and args.init_checkpoint is None:
        raise InputError(f"phase {args.phase} starts from trained weights: pass --checkpoint")
    if not args.cuts.is_file():
        raise InputError(f"{args.cuts}: no such cuts file")
    cuts = CutSet.from_file(args.cuts)
    lr_block = cfg["cfm_length_regulator"]
    check_content(cuts, lr_block, args.config)
    if not use_f0:
        cfg["f0"] = {**(cfg.get("f0") or {}), "enabled": False}
    return Plan(cfg=cfg, tcfg=tcfg, pcfg=pcfg, cuts=cuts, use_f0=use_f0,
                discrete=bool(lr_block.get("is_discrete", True)),
                num_steps=args.num_steps or int(pcfg["num_steps"]), lr=args.lr or float(pcfg["lr"]),
                batch_size=args.batch_size or int(tcfg["batch_size"]), argv=argv)


def build_model(args, plan: Plan) -> SeedSVCTrainingModel:
    """The CFM and length regulator with their starting weights, trainable parts set for the phase."""
    torch.manual_seed(args.seed)
    cfm = build_cfm(plan.cfg, with_f0=plan.use_f0)
    lr_mod = build_length_regulator(plan.cfg)
    has_f0_weights = False
    if args.init_checkpoint is not None:
        net = read_net(args.init_checkpoint, trust=args.trust_checkpoint)
        for part in ("cfm", "length_regulator"):
            if part not in net:
                raise InputError(f"{args.init_checkpoint}: no ['net']['{part}'] entry")
        load_part(cfm, net["cfm"], "cfm", args.init_checkpoint, allow_missing=F0_KEY_PREFIXES)
        load_part(lr_mod, net["length_regulator"], "length_regulator", args.init_checkpoint)
        has_f0_weights = any(k.startswith(F0_KEY_PREFIXES) for k in net["cfm"])
    if plan.use_f0:
        if args.v1_f0_checkpoint is not None:
            cfm.estimator.f0_encoder.load_v1(args.v1_f0_checkpoint, trust=args.trust_checkpoint)
            logger.info("F0 embedding: V1's, from %s (frozen)", args.v1_f0_checkpoint)
        elif not has_f0_weights:
            logger.warning("no --v1-f0-checkpoint: the frozen F0 embedding is a seeded random N(0, 1) table")
    select_trainable(cfm, lr_mod, args.phase)
    return SeedSVCTrainingModel(cfm, lr_mod, plan.use_f0)


def compute_loss(model, batch: dict, is_training: bool, *, device: torch.device, check_ids=None):
    """The CFM loss of a batch; it is a mean over the frames after the prompts, the normaliser."""
    if check_ids is not None:
        check_ids(batch["content"])
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.set_grad_enabled(is_training):
        loss = model(batch)
    frames = float((batch["x_lens"] - batch["prompt_lens"]).clamp(min=0).sum())
    return loss, MetricsTracker(loss=float(loss.detach()) * frames, frames=frames, utterances=batch["mel"].size(0))


def log_file(args) -> Path:
    return args.exp_dir / f"log-train-phase{args.phase}.txt"


def run(rank: int, world_size: int, args, local_rank: int | None = None, use_env: bool = False, *,
        plan: Plan) -> None:
    device, local_rank = setup_rank(rank, world_size, args, local_rank, use_env, log_file=log_file(args))
    exp, phase, tcfg, pcfg = args.exp_dir, args.phase, plan.tcfg, plan.pcfg
    if rank == 0:
        describe_experiment(exp, MODULE, plan.argv, files={"config.yaml": yaml.safe_dump(plan.cfg, sort_keys=False)},
                            commands_file="command.txt")
    model = build_model(args, plan)
    groups = parameter_groups_by_prefix(model, plan.lr, lr_scales(model.cfm, phase, float(pcfg.get("dit_lr_scale", 0.1))))
    trainable, frozen = count_params([model])
    logger.info("phase %d%s: %d trainable parameters (%s), %d frozen; the optimizer gets %d", phase,
                " (no F0)" if args.no_f0 else "", trainable,
                describe_groups(model, groups),
                frozen, sum(p.numel() for g in groups for p in g["params"]))
    model.to(device).train()
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    scheduler = Eden(optimizer, lr_batches=max(plan.num_steps, 1) * 2, lr_epochs=1e9,
                     warmup_batches=float(pcfg.get("warmup", 100)), warmup_start=0.05)
    sampler = SegmentSampler(plan.cuts, int(tcfg["segment_frames"]), plan.batch_size, float(tcfg["prompt_min"]),
                             float(tcfg["prompt_max"]), seed=args.seed + SEED_STRIDE_PER_RANK * rank,
                             cross_prompt_prob=float(pcfg.get("cross_prompt_prob", tcfg.get("cross_prompt_prob", 0.0))))
    lr_block = plan.cfg["cfm_length_regulator"]
    check_ids = partial(check_batch_ids, lr_block=lr_block, config=args.config, where=str(args.cuts)) \
        if plan.discrete else None
    max_grad_norm = args.max_grad_norm if args.max_grad_norm is not None else float(tcfg["grad_clip"])
    params = new_training_params(
        exp_dir=exp, seed=args.seed, num_iters=plan.num_steps, save_every_n=int(tcfg["save_every"]),
        keep_last_k=int(tcfg["keep_checkpoints"]), log_interval=int(tcfg["log_every"]), valid_interval=0,
        accum_grad=args.accum_grad, max_grad_norm=max_grad_norm, gradient_checkpointing=args.gradient_checkpointing,
        phase=phase, world_size=world_size, batch_size=plan.batch_size, lr=plan.lr, dtype=resolve_dtype(args),
    )
    trainer = Trainer(params, wrap_ddp(model, device), optimizer, scheduler, sampler,
                      partial(compute_loss, device=device, check_ids=check_ids), device,
                      MixedPrecision(resolve_dtype(args), device), rank=rank, world_size=world_size,
                      tb=TensorBoard(exp / "tensorboard", enabled=args.tensorboard, rank=rank),
                      extra_state={"phase": phase})
    trainer.resume_latest(expect={"phase": phase})
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    steps = int(params.batch_idx_train)
    final = trainer.save_model(exp / "model.pth", lambda m: m.release_state(steps, phase))
    if final is not None:
        logger.info("wrote %s after %d steps (phase %d, running loss %.4f)", final, steps, phase,
                    trainer.tot_loss.averages().get("loss", float("nan")))


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    check_training_arguments(args)
    final = args.exp_dir / "model.pth"
    if final.is_file():
        setup_rank_logging(args.exp_dir, 0, 1, log_file(args), verbose=args.verbose)
        logger.info("%s exists; nothing to do", final)
        return 0
    plan = plan_training(args, argv)
    return launch(partial(run, plan=plan), args, args.world_size, "seedsvc.bin.train")


if __name__ == "__main__":
    run_main(main)
