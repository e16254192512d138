"""Fine-tune the ACE-Step v1 transformer on a latent cache: LoRA (``--lora-config``) or the whole transformer.

Data: the cache of ``acestep.bin.cache_latents`` (``--cache-dir``): only the transformer is loaded,
no DCAE or UMT5. One song per batch by default, as the released trainer; ``--batch-frames`` packs
songs into padded batches of at most that many latent frames (10.77 frames per second of audio),
``--crop-frames`` trains on random windows of long songs.

Objective, condition dropouts (text 0.15, speaker 0.5, lyrics 0.15 per song), AdamW (weight decay
1e-2, betas 0.8/0.9), lr 1e-4 with ``--warmup-steps`` linear warm-up then linear decay to 0 at
``--num-iters``, gradient clipping at 0.5: the released trainer's (:mod:`acestep.training.loss`,
``docs/acestep_training.md``). The options every training binary shares (``--dtype bf16``,
``--accum-grad``, ``--gradient-checkpointing``, ``--device``, DDP with ``--world-size`` or
torchrun) are described in docs/training.md.

The experiment directory: ``checkpoint-N.pt`` (the full training state; for LoRA only the adapter
tensors; the newest is resumed exactly when the command is run again), ``log/``, ``tensorboard/``;
for LoRA ``checkpoints/step=N_lora/`` (``pytorch_lora_weights.safetensors`` + ``lora_config.json``) with every checkpoint and at
the end ``lora/pytorch_lora_weights.safetensors`` + ``lora/lora_config.json`` (the released
adapter layout; ``acestep.bin.generate --lora-path EXP/lora``); for a full fine-tune
``ace_step_transformer/`` (config.json + weights, float32) at the end.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from acestep.training.data import FrameBudgetSampler, load_songs
from acestep.training.lora import LoraSpec, read_lora_spec
from acestep.training.loss import LYRICS_DROPOUT, SPEAKER_DROPOUT, TEXT_DROPOUT, compute_loss
from acestep.training.lr import WarmupLinear
from shirabe.cli import ArgumentParser, InputError, get_logger, run_main
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.loop import SEED_STRIDE_PER_RANK, Trainer, new_training_params, unwrap
from shirabe.train.metrics import TensorBoard
from shirabe.train.options import add_training_arguments, check_training_arguments, resolve_dtype
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank, setup_rank_logging

logger = get_logger("acestep.bin.train")
MODULE = "acestep.bin.train"
TRANSFORMER_DIR = "ace_step_transformer"
LORA_DIR = "lora"
LORA_CONFIG_NAME = "lora_config.json"
BETAS = (0.8, 0.9)
BASE_DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.train", description=__doc__)
    p.add_argument("--checkpoint-dir", type=Path, required=True,
                   help="released checkpoint folder; its ace_step_transformer/ is loaded (required)")
    p.add_argument("--cache-dir", type=Path, required=True,
                   help="latent cache written by acestep.bin.cache_latents (required)")
    p.add_argument("--exp-dir", type=Path, required=True, help="experiment directory (required)")
    p.add_argument("--lora-config", type=Path, default=None,
                   help="LoRA config JSON in the released trainer's format (r, lora_alpha, use_rslora, "
                        "target_modules, optional lora_dropout); default: none = fine-tune the whole transformer")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    p.add_argument("--num-iters", type=int, default=2000, help="optimizer updates")
    p.add_argument("--warmup-steps", type=int, default=10, help="warm-up updates (linear from 0)")
    p.add_argument("--ssl-coeff", type=float, default=0.0,
                   help="weight of the REPA (MERT/mHuBERT) losses; the cache holds no SSL targets, so only 0 "
                        "is possible")
    p.add_argument("--text-dropout", type=float, default=TEXT_DROPOUT, help="per-song probability of zeroed prompt states")
    p.add_argument("--speaker-dropout", type=float, default=SPEAKER_DROPOUT,
                   help="per-song probability of a zeroed speaker embedding")
    p.add_argument("--lyrics-dropout", type=float, default=LYRICS_DROPOUT,
                   help="per-song probability of zeroed lyric ids and mask")
    p.add_argument("--batch-frames", type=int, default=0,
                   help="latent frames per padded batch (songs x longest); 0 = one song per batch")
    p.add_argument("--crop-frames", type=int, default=0,
                   help="train on a random window of this many latent frames of longer songs (0 = whole songs)")
    p.add_argument("--base-dtype", choices=list(BASE_DTYPES), default="float32",
                   help="storage precision of the frozen base weights with LoRA (bf16 halves their memory; "
                        "needs --dtype bf16); a full fine-tune trains float32 weights")
    p.add_argument("--save-every-n", type=int, default=200,
                   help="write checkpoint-N.pt (and for LoRA checkpoints/step=N_lora/) every N updates")
    p.add_argument("--keep-last-k", type=int, default=5, help="checkpoint-N.pt files kept (adapter folders are all kept)")
    p.add_argument("--log-interval", type=int, default=25, help="log every N updates")
    add_training_arguments(p, seed=42, dtype="float32", max_grad_norm=0.5)
    return p


@dataclass
class Plan:
    songs: list
    lora: LoraSpec | None
    argv: list[str] | None


def plan_training(args, argv) -> Plan:
    """Check the options and read the cache before any process starts (one-line errors)."""
    for name in ("num_iters", "save_every_n", "keep_last_k", "log_interval"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.warmup_steps < args.num_iters:
        raise InputError(f"--warmup-steps {args.warmup_steps} must be at least 0 and below --num-iters {args.num_iters}")
    if args.ssl_coeff != 0:
        raise InputError(f"--ssl-coeff {args.ssl_coeff}: the cache holds no MERT/mHuBERT targets; use 0")
    for name in ("text_dropout", "speaker_dropout", "lyrics_dropout"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise InputError(f"--{name.replace('_', '-')} must lie in [0, 1], got {getattr(args, name)}")
    if args.batch_frames < 0 or args.crop_frames < 0:
        raise InputError("--batch-frames and --crop-frames must be >= 0")
    if args.lr <= 0 or args.weight_decay < 0:
        raise InputError(f"--lr must be positive and --weight-decay >= 0, got {args.lr}, {args.weight_decay}")
    folder = args.checkpoint_dir / TRANSFORMER_DIR
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no transformer folder (config.json) in --checkpoint-dir")
    lora = read_lora_spec(args.lora_config) if args.lora_config is not None else None
    if args.base_dtype != "float32":
        if lora is None:
            raise InputError("--base-dtype bf16 needs --lora-config (a full fine-tune trains float32 weights)")
        if resolve_dtype(args) != "bf16":
            raise InputError("--base-dtype bf16 needs --dtype bf16 (bf16 weights under float32 compute)")
    songs = load_songs(args.cache_dir)
    return Plan(songs, lora, argv)


def build_model(args, plan: Plan):
    from acestep.models import load_transformer

    dtype = BASE_DTYPES[args.base_dtype] if plan.lora is not None else torch.float32
    model = load_transformer(args.checkpoint_dir / TRANSFORMER_DIR, dtype=dtype)
    model.gradient_checkpointing = bool(args.gradient_checkpointing)
    if plan.lora is None:
        return model.train()
    from acestep.training.lora import wrap_transformer

    torch.manual_seed(args.seed)  # the adapters' initial A: the same in every run with this seed
    return wrap_transformer(model, plan.lora, str(args.lora_config)).train()


class AceStepTrainer(Trainer):
    """The shared loop, plus the released adapter layout next to every checkpoint (LoRA runs)."""

    lora_dir: Path | None = None
    lora_config: Path | None = None

    def after_step(self) -> None:
        p = self.params
        if self.lora_dir is None or self.rank != 0:
            return
        if p.batch_idx_train % p.save_every_n == 0 or p.batch_idx_train >= p.num_iters:
            save_adapter(self.model, self.lora_dir / f"step={p.batch_idx_train}_lora", self.lora_config)


def save_adapter(model, folder: Path, lora_config: Path | None = None) -> Path:
    """The adapter in the released layout, with its LoRA config beside it (generation reads its scaling)."""
    from acestep.models.lora import adapter_from_peft, save_lora

    path = save_lora(folder, adapter_from_peft(unwrap(model)))
    if lora_config is not None:
        tmp = folder / f".{LORA_CONFIG_NAME}.tmp"
        shutil.copyfile(lora_config, tmp)
        os.replace(tmp, folder / LORA_CONFIG_NAME)
    logger.info("saved %s", path)
    return path


def final_output(args, lora: bool) -> Path:
    return args.exp_dir / (LORA_DIR if lora else TRANSFORMER_DIR)


def run(rank: int, world_size: int, args, local_rank=None, use_env=False, *, plan: Plan) -> None:
    device, local_rank = setup_rank(rank, world_size, args, local_rank, use_env,
                                    log_file=args.exp_dir / "log" / "log-train.txt")
    files = {LORA_CONFIG_NAME: args.lora_config} if plan.lora is not None else None
    if rank == 0:
        describe_experiment(args.exp_dir, MODULE, plan.argv, files=files)
    model = build_model(args, plan)
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    logger.info("%s: %.2f M of %.2f M parameters train", "LoRA" if plan.lora else "full fine-tune", trainable / 1e6,
                total / 1e6)
    frames = sum(s.frames for s in plan.songs)
    logger.info("%d training songs, %d latent frames (%.1f min)", len(plan.songs), frames, frames / 10.7666 / 60)
    model.to(device)
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=BETAS, weight_decay=args.weight_decay)
    scheduler = WarmupLinear(optimizer, total_batches=args.num_iters, warmup_batches=args.warmup_steps)
    sampler = FrameBudgetSampler(plan.songs, args.batch_frames, args.crop_frames,
                                 seed=args.seed + SEED_STRIDE_PER_RANK * rank)
    mode = "lora" if plan.lora is not None else "full"
    params_ = new_training_params(
        exp_dir=args.exp_dir, seed=args.seed, num_iters=args.num_iters, save_every_n=args.save_every_n,
        keep_last_k=args.keep_last_k, log_interval=args.log_interval, valid_interval=0, accum_grad=args.accum_grad,
        max_grad_norm=args.max_grad_norm, gradient_checkpointing=False, world_size=world_size, lr=args.lr,
        dtype=resolve_dtype(args), mode=mode)
    extra = {"mode": mode, "lora": plan.lora.as_dict() if plan.lora is not None else None}
    loss_fn = partial(compute_loss, device=device, ssl_coeff=args.ssl_coeff, text_dropout=args.text_dropout,
                      speaker_dropout=args.speaker_dropout, lyrics_dropout=args.lyrics_dropout)
    trainer = AceStepTrainer(params_, wrap_ddp(model, device), optimizer, scheduler, sampler, loss_fn, device,
                             MixedPrecision(resolve_dtype(args), device), rank=rank, world_size=world_size,
                             tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard, rank=rank),
                             extra_state=extra, batches_per_epoch=len(sampler))
    if plan.lora is not None:
        trainer.lora_dir = args.exp_dir / "checkpoints"
        trainer.lora_config = args.lora_config
    trainer.resume_latest(expect=extra)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    if rank == 0:
        write_final(args, plan, trainer.model)


def write_final(args, plan: Plan, model) -> None:
    out = final_output(args, plan.lora is not None)
    tmp = out.with_name(f".tmp.{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    if plan.lora is not None:
        tmp.mkdir(parents=True)
        save_adapter(model, tmp, args.lora_config)
    else:
        from acestep.models import save_transformer

        save_transformer(unwrap(model), tmp)
    tmp.rename(out)
    logger.info("wrote %s", out)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    check_training_arguments(args)
    lora = args.lora_config is not None
    final = final_output(args, lora)
    if final.is_dir():
        setup_rank_logging(args.exp_dir, 0, 1, args.exp_dir / "log" / "log-train.txt", verbose=args.verbose)
        logger.info("%s exists; nothing to do", final)
        return 0
    plan = plan_training(args, argv)
    return launch(partial(run, plan=plan), args, args.world_size, MODULE)


if __name__ == "__main__":
    run_main(main)
