"""Train SongBloom: from scratch (small configs) or from a released model, fully or with LoRA.

Loss: cross-entropy over sketch ids plus 0.1 × the DiT's flow-matching MSE,
with upstream's condition dropouts and logit-normal flow times
(:mod:`songbloom.training.loss`). What trains (``--mode``, ``--lyric-rows``,
``--lora-*``, ``--init-japanese-rows``) is described in
:mod:`songbloom.training.modes` and ``docs/songbloom_training.md``.

Data: the feature cuts of ``songbloom.bin.extract_features`` (latents, sketch
ids, prompt latents, lyric symbols), in batches budgeted by LM positions
(``--max-tokens``; :mod:`songbloom.training.data`). Schedule: linear warm-up
then cosine decay over ``--num-iters`` updates (AdamW, betas 0.9/0.95). The
options every training binary shares (``--dtype bf16``, ``--accum-grad``,
``--gradient-checkpointing``, DDP/torchrun, ``--device``) are in docs/training.md.

The experiment directory: ``checkpoint-N.pt`` (full training state, or only
the trainable tensors for LoRA; the newest is resumed exactly), ``log/``,
``tensorboard/``, and at the end a model folder that generation loads as it
is: ``songbloom.yaml`` + ``model.pt`` (upstream's layout; merged for LoRA) +
``vae.json`` + ``vocab_g2p.yaml``, and for LoRA ``adapter.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from lhotse import CutSet

from shirabe.cli import ArgumentParser, InputError, add_bool_argument, get_logger, run_main
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.loop import SEED_STRIDE_PER_RANK, Trainer, new_training_params
from shirabe.train.lora import unwrap
from shirabe.train.lr_scheduler import WarmupCosine
from shirabe.train.metrics import TensorBoard
from shirabe.train.options import add_training_arguments, check_training_arguments, resolve_dtype
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank, setup_rank_logging
from songbloom.models import SongBloom, load_config, load_model
from songbloom.training import release
from songbloom.training.data import TokenBudgetSampler, fixed_batches, load_examples
from songbloom.training.loss import FLOW_WEIGHT, compute_loss
from songbloom.training.modes import (
    LYRIC_ROWS,
    MODES,
    TrainingMode,
    describe,
    parameter_groups,
    prepare,
)

logger = get_logger("songbloom.bin.train")
MODULE = "songbloom.bin.train"


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.train", description=__doc__)
    p.add_argument("--config", type=Path, required=True,
                   help="model config in upstream's YAML schema, e.g. songbloom_full_150s.yaml or "
                        "songbloom/models/configs/songbloom_tiny_mini.yaml (required)")
    p.add_argument("--config-dir", type=Path, default=None,
                   help="the folder '???' stands for in the config (its files: VAE json/ckpt, vocab); "
                        "default: the config's folder")
    p.add_argument("--cuts", type=Path, required=True, help="training feature cuts (required)")
    p.add_argument("--dev-manifest", dest="dev_cuts", type=Path, default=None,
                   help="held-out feature cuts for the dev loss (default: none)")
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment directory (required)")
    p.add_argument("--checkpoint", dest="init_from", type=Path, default=None,
                   help="start from this checkpoint (a released {name}.pt: vae.vae.* + model.*) instead of random "
                        "weights (default: none)")
    p.add_argument("--mode", choices=MODES, default="full", help="full fine-tuning or LoRA adapters")
    p.add_argument("--lyric-rows", choices=LYRIC_ROWS, default=None,
                   help="rows of the lyric embedding that train: all, japanese (the 19 rows Chinese/English "
                        "training never reached) or none (default: all for full, japanese for lora)")
    add_bool_argument(p, "--init-japanese-rows", None,
                      "start the untrained Japanese lyric rows from their IPA neighbours (default: true with "
                      "--checkpoint, false from scratch)")
    p.add_argument("--lora-rank", type=int, default=16, help="LoRA rank")
    p.add_argument("--lora-alpha", type=float, default=32.0, help="LoRA alpha")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="dropout on the LoRA input")
    p.add_argument("--lora-targets", default="q_proj,v_proj,to_qkv",
                   help="comma-separated layer names (or name suffixes) that get adapters")
    add_bool_argument(p, "--lora-train-all", False, "adapters on every linear layer instead of --lora-targets")
    p.add_argument("--num-iters", type=int, default=2000, help="optimizer updates")
    p.add_argument("--max-tokens", type=int, default=10240,
                   help="LM positions per batch, padding included (a 150 s song is ~5,100 with its prefix)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="songs are cut to this many seconds (default: the config's max_dur)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=200, help="warm-up updates (linear from 0)")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    p.add_argument("--flow-weight", type=float, default=FLOW_WEIGHT, help="λ: weight of the flow-matching loss")
    p.add_argument("--save-every-n", type=int, default=200, help="write checkpoint-N.pt every N updates")
    p.add_argument("--keep-last-k", type=int, default=5, help="checkpoints kept")
    p.add_argument("--log-interval", type=int, default=25, help="log every N updates")
    p.add_argument("--valid-interval", type=int, default=200, help="dev loss every N updates (with --dev-manifest)")
    add_bool_argument(p, "--allow-unknown", False, "drop lyric symbols the vocabulary lacks instead of failing")
    add_training_arguments(p, seed=0, dtype="float32", max_grad_norm=1.0)
    return p


@dataclass
class Plan:
    config: object
    train: list
    dev: list
    mode: TrainingMode
    argv: list[str] | None


def plan_training(args, argv) -> Plan:
    """Read and check the config and the data before any process starts (one-line errors)."""
    config = load_config(args.config, args.config_dir)
    m = config.model
    if args.init_from is not None and not args.init_from.is_file():
        raise InputError(f"{args.init_from}: no such checkpoint")
    for name in ("num_iters", "max_tokens", "save_every_n"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.warmup < args.num_iters:
        raise InputError(f"--warmup {args.warmup} must be below --num-iters {args.num_iters}")
    max_frames = int((args.max_seconds or config.max_dur) * 25)

    def examples(path):
        if not path.is_file():
            raise InputError(f"{path}: no such cuts file")
        return load_examples(CutSet.from_file(path), m.vocab, m.block_size, max_frames, m.max_sentence_per_structure,
                             m.num_pitch, args.allow_unknown)

    train = examples(args.cuts)
    dev = examples(args.dev_cuts) if args.dev_cuts is not None else []
    dims = {e.latent.shape[0] for e in train + dev}
    if dims != {m.latent_dim}:
        raise InputError(f"{args.cuts}: latents have {sorted(dims)} channels, {args.config} expects {m.latent_dim} "
                         "(features from another VAE?)")
    init_rows = args.init_japanese_rows if args.init_japanese_rows is not None else args.init_from is not None
    mode = TrainingMode(args.mode, args.lyric_rows, init_rows, args.lora_rank, args.lora_alpha, args.lora_dropout,
                        tuple(t for t in args.lora_targets.split(",") if t), args.lora_train_all)
    return Plan(config, train, dev, mode, argv)


def build(args, plan: Plan):
    """The MVSA-DiTAR with its starting weights and what trains set; the VAE's weights for the release."""
    if args.init_from is not None:
        song = load_model(plan.config, args.init_from, trust=args.trust_checkpoint)
    else:
        torch.manual_seed(args.seed)
        song = SongBloom(plan.config)
    vae_state = {k: v.clone() for k, v in song.vae.vae.state_dict().items()} if song.vae is not None else None
    model = song.model.train()
    if args.gradient_checkpointing:
        model.gradient_checkpointing = True
    return prepare(model, plan.mode, plan.config.model.vocab), vae_state


def run(rank: int, world_size: int, args, local_rank=None, use_env=False, *, plan: Plan) -> None:
    device, local_rank = setup_rank(rank, world_size, args, local_rank, use_env,
                                    log_file=args.exp_dir / "log" / "log-train.txt")
    if rank == 0:
        describe_experiment(args.exp_dir, MODULE, plan.argv,
                            files={"train-config.yaml": args.config.read_text(encoding="utf-8")})
    model, vae_state = build(args, plan)
    logger.info("%s", describe(model, plan.mode, plan.config.model.vocab))
    logger.info("%d training songs (%.1f min), %d dev songs", len(plan.train),
                sum(e.frames for e in plan.train) / 25 / 60, len(plan.dev))
    model.to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.weight_decay), betas=(0.9, 0.95))
    scheduler = WarmupCosine(optimizer, total_batches=args.num_iters, warmup_batches=args.warmup)
    m = plan.config.model
    prefix = m.prefix_len + 1
    sampler = TokenBudgetSampler(plan.train, args.max_tokens, m.block_size, prefix, m.eos_id,
                                 seed=args.seed + SEED_STRIDE_PER_RANK * rank)
    valid = fixed_batches(plan.dev, args.max_tokens, m.block_size, prefix, m.eos_id) if plan.dev else None
    params = new_training_params(
        exp_dir=args.exp_dir, seed=args.seed, num_iters=args.num_iters, save_every_n=args.save_every_n,
        keep_last_k=args.keep_last_k, log_interval=args.log_interval,
        valid_interval=args.valid_interval if valid else 0, accum_grad=args.accum_grad,
        max_grad_norm=args.max_grad_norm, gradient_checkpointing=False, world_size=world_size,
        lr=args.lr, dtype=resolve_dtype(args), mode=plan.mode.mode)
    trainer = Trainer(params, wrap_ddp(model, device), optimizer, scheduler, sampler,
                      partial(compute_loss, config=plan.config, device=device, flow_weight=args.flow_weight), device,
                      MixedPrecision(resolve_dtype(args), device), rank=rank, world_size=world_size,
                      valid_dl=valid, tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard, rank=rank),
                      extra_state={"mode": plan.mode.mode}, batches_per_epoch=len(sampler))
    trainer.resume_latest(expect={"mode": plan.mode.mode})
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    if rank == 0:
        write_release(args, plan, trainer.model, vae_state)


def write_release(args, plan: Plan, model, vae_state) -> None:
    exp = args.exp_dir
    yaml_path = release.write_model_folder(exp, args.config, plan.config, vae_state)
    release.save_release(exp / release.MODEL_NAME, release.release_state(model, vae_state))
    if plan.mode.mode == "lora":
        mode = plan.mode
        release.save_release(exp / release.ADAPTER_NAME, release.adapter_state(
            unwrap(model),
            {"rank": mode.lora_rank, "alpha": mode.lora_alpha, "dropout": mode.lora_dropout,
             "targets": list(mode.lora_targets), "train_all": mode.lora_train_all, "lyric_rows": mode.lyric_rows}))
    logger.info("model folder %s: %s + %s%s (load with songbloom.models.load_model(%s))", exp, yaml_path.name,
                release.MODEL_NAME, " + adapter.pt" if plan.mode.mode == "lora" else "", yaml_path)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    check_training_arguments(args)
    final = args.exp_dir / release.MODEL_NAME
    if final.is_file():
        setup_rank_logging(args.exp_dir, 0, 1, args.exp_dir / "log" / "log-train.txt", verbose=args.verbose)
        logger.info("%s exists; nothing to do", final)
        return 0
    plan = plan_training(args, argv)
    return launch(partial(run, plan=plan), args, args.world_size, MODULE)


if __name__ == "__main__":
    run_main(main)
