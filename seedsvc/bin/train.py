"""Train SeedSVC: V2 (phase 0), F0 adapters (phase 1) or the DiT with them (phase 2).

The experiment directory describes itself: ``config.yaml`` (the resolved model and
training config), ``command.txt`` (the command lines), ``checkpoint-N.pt`` (full
training state, written atomically; the newest is resumed), ``model.pth`` (the
result in upstream's ``{'net': {'cfm', 'length_regulator'}}`` layout) and
``tensorboard/``. See :mod:`seedsvc.training` for what each phase trains.

Phase 1 starts from a V2 checkpoint (``--init-checkpoint``; upstream's
``cfm_small.pth`` or a phase-0 ``model.pth``) and the V1 F0 embedding
(``--v1-f0-checkpoint``; without it the embedding is a seeded random table, which
the log says). Phase 2 starts from a phase-1 ``model.pth``.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from lhotse import CutSet
from tqdm import tqdm

from seedsvc.dataset import SegmentSampler
from seedsvc.models import build_cfm, build_length_regulator, read_config, read_net
from seedsvc.models.loading import F0_KEY_PREFIXES, f0_block, load_part
from seedsvc.training import count_params, select_trainable
from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.train.checkpoint import atomic_save, find_checkpoints, remove_checkpoints, safe_load
from shirabe.train.lr_scheduler import Eden

logger = logging.getLogger("seedsvc.train")

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
    p.add_argument("--init-checkpoint", type=Path, default=None, help="starting weights ({'net': ...} layout)")
    p.add_argument("--v1-f0-checkpoint", type=Path, default=None, help="V1 singing checkpoint holding the F0 embedding")
    p.add_argument("--no-f0", action="store_true", help="build the model without F0 (baseline)")
    p.add_argument("--num-steps", type=int, default=None, help="override the phase's number of steps")
    p.add_argument("--lr", type=float, default=None, help="override the phase's learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="override the batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow pickle in checkpoints you trust")
    p.add_argument("--verbose", action="store_true", help="debug logging")
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


def net_state(cfm, lr_mod) -> dict:
    return {"cfm": cfm.state_dict(), "length_regulator": lr_mod.state_dict()}


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    exp = args.exp_dir
    exp.mkdir(parents=True, exist_ok=True)
    setup_logging(args.verbose, exp / f"log-train-phase{args.phase}.txt")
    with (exp / "command.txt").open("a", encoding="utf-8") as f:
        f.write(" ".join(shlex.quote(a) for a in [sys.executable, "-m", "seedsvc.bin.train", *(argv or sys.argv[1:])]) + "\n")
    final = exp / "model.pth"
    if final.is_file():
        logger.info("%s exists; nothing to do", final)
        return 0
    cfg = read_config(args.config)
    tcfg = training_config(cfg)
    pcfg = dict(tcfg[f"phase{args.phase}"])
    num_steps = args.num_steps or int(pcfg["num_steps"])
    lr = args.lr or float(pcfg["lr"])
    batch_size = args.batch_size or int(tcfg["batch_size"])
    use_f0 = args.phase > 0 and not args.no_f0
    if use_f0 and f0_block(cfg) is None:
        raise InputError(f"{args.config}: phase {args.phase} needs an enabled 'f0' block (or pass --no-f0)")
    if not args.cuts.is_file():
        raise InputError(f"{args.cuts}: no such cuts file")
    cuts = CutSet.from_file(args.cuts)
    lr_block = cfg["cfm_length_regulator"]
    check_content(cuts, lr_block, args.config)
    discrete = bool(lr_block.get("is_discrete", True))
    if not use_f0:
        cfg["f0"] = {**(cfg.get("f0") or {}), "enabled": False}
    (exp / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")

    torch.manual_seed(args.seed)
    cfm = build_cfm(cfg, with_f0=use_f0)
    lr_mod = build_length_regulator(cfg)
    if args.init_checkpoint is not None:
        net = read_net(args.init_checkpoint, trust=args.trust_checkpoint)
        for part in ("cfm", "length_regulator"):
            if part not in net:
                raise InputError(f"{args.init_checkpoint}: no ['net']['{part}'] entry")
        load_part(cfm, net["cfm"], "cfm", args.init_checkpoint, allow_missing=F0_KEY_PREFIXES)
        load_part(lr_mod, net["length_regulator"], "length_regulator", args.init_checkpoint)
        has_f0_weights = any(k.startswith(F0_KEY_PREFIXES) for k in net["cfm"])
    elif args.phase > 0:
        raise InputError(f"phase {args.phase} starts from trained weights: pass --init-checkpoint")
    else:
        has_f0_weights = False
    if use_f0:
        if args.v1_f0_checkpoint is not None:
            cfm.estimator.f0_encoder.load_v1(args.v1_f0_checkpoint, trust=args.trust_checkpoint)
            logger.info("F0 embedding: V1's, from %s (frozen)", args.v1_f0_checkpoint)
        elif not has_f0_weights:
            logger.warning("no --v1-f0-checkpoint: the frozen F0 embedding is a seeded random N(0, 1) table")
    groups = select_trainable(cfm, lr_mod, args.phase, lr, float(pcfg.get("dit_lr_scale", 0.1)))
    trainable, frozen = count_params([cfm, lr_mod])
    opt_params = sum(p.numel() for g in groups for p in g["params"])
    logger.info("phase %d%s: %d trainable parameters (%s), %d frozen; the optimizer gets %d", args.phase,
                " (no F0)" if args.no_f0 else "", trainable,
                ", ".join(f"{g['name']} {sum(p.numel() for p in g['params'])} @ lr {g['lr']:g}" for g in groups),
                frozen, opt_params)
    device = torch.device(args.device)
    cfm.to(device).train()
    lr_mod.to(device).train()
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    scheduler = Eden(optimizer, lr_batches=max(num_steps, 1) * 2, lr_epochs=1e9,
                     warmup_batches=float(pcfg.get("warmup", 100)), warmup_start=0.05)
    sampler = SegmentSampler(cuts, int(tcfg["segment_frames"]), batch_size, float(tcfg["prompt_min"]),
                             float(tcfg["prompt_max"]), seed=args.seed,
                             cross_prompt_prob=float(pcfg.get("cross_prompt_prob", tcfg.get("cross_prompt_prob", 0.0))))
    step = 0
    latest = find_checkpoints(exp)
    if latest:
        state = safe_load(latest[0])
        if state.get("phase") != args.phase:
            raise InputError(f"{latest[0]}: a phase {state.get('phase')} checkpoint, not phase {args.phase}")
        cfm.load_state_dict(state["net"]["cfm"])
        lr_mod.load_state_dict(state["net"]["length_regulator"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["iters"])
        logger.info("resumed from %s at step %d", latest[0], step)

    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(exp / "tensorboard"))
    trainable_params = [p for g in groups for p in g["params"]]
    bar = tqdm(total=num_steps, initial=step, desc=f"phase {args.phase}", unit="step")
    running = 0.0
    while step < num_steps:
        batch = sampler.batch()
        if discrete:
            check_batch_ids(batch["content"], lr_block, args.config, str(args.cuts))
        batch = {k: v.to(device) for k, v in batch.items()}
        mu, _ = lr_mod(batch["content"], batch["x_lens"])
        loss = cfm(batch["mel"], batch["x_lens"], batch["prompt_lens"], mu, batch["style"],
                   f0=batch["f0"] if use_f0 else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable_params, float(tcfg["grad_clip"]))
        optimizer.step()
        step += 1
        scheduler.step_batch(step)
        running += loss.item()
        bar.update()
        if step % int(tcfg["log_every"]) == 0 or step == num_steps:
            n = int(tcfg["log_every"]) if step % int(tcfg["log_every"]) == 0 else step % int(tcfg["log_every"])
            tb.add_scalar("train/loss", running / n, step)
            tb.add_scalar("train/grad_norm", float(grad_norm), step)
            tb.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
            bar.set_postfix(loss=f"{running / n:.4f}")
            logger.info("step %d: loss %.4f, lr %.2e", step, running / n, optimizer.param_groups[0]["lr"])
            running = 0.0
        if step % int(tcfg["save_every"]) == 0 and step < num_steps:
            atomic_save({"net": net_state(cfm, lr_mod), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                         "torch_rng": torch.get_rng_state(), "iters": step, "epoch": 0, "phase": args.phase},
                        exp / f"checkpoint-{step}.pt")
            remove_checkpoints(exp, int(tcfg["keep_checkpoints"]))
    bar.close()
    tb.close()
    atomic_save({"net": net_state(cfm.cpu(), lr_mod.cpu()), "iters": step, "epoch": 0, "phase": args.phase}, final)
    logger.info("wrote %s after %d steps (phase %d, last loss %.4f)", final, step, args.phase, loss.item())
    return 0


if __name__ == "__main__":
    run_main(main)
