"""Train SongGeneration's LeLM on prepared songs: full fine-tuning, LoRA, or from scratch.

Everything comes from ``train_config.yaml`` (``--config``; see ``docs/songgeneration_training.md``):
``paths.base_model_path`` (a checkpoint folder, ``config.yaml`` + ``model.pt``), the prepared data
of ``paths.prepared_data_dir`` (``songgeneration.bin.prepare_data``), the experiment folder
``paths.output_dir`` and the ``training`` and ``lora`` sections. ``training.type`` is ``full``
(every weight trains, the condition tables included) or ``lora`` (peft adapters on both decoders);
``training.from_scratch`` builds the model of the base ``config.yaml`` with random weights.

Objective: cross-entropy per stream through the delay pattern, EOS at each song's end, with the
checkpoint config's condition dropouts (:mod:`songgeneration.training.loss`). AdamW (betas
0.9/0.95, ``training.weight_decay``), learning rate ``training.learning_rate`` with a linear
warm-up over ``training.warmup_steps`` updates, then a half cosine down to 0 at the last update;
gradient clipping at ``--max-grad-norm``. The run length is ``training.max_steps`` updates, or
``training.epochs`` passes over the songs when it is 0.

The shared training options (docs/training.md: ``--device``, DDP with ``--world-size`` or
torchrun, ...) are taken; ``--dtype``, ``--accum-grad``, ``--gradient-checkpointing`` and
``--seed`` override ``training.precision``, ``training.grad_accum``,
``training.gradient_checkpointing`` and ``training.seed`` when given.

The experiment folder: ``checkpoint-N.pt`` every ``training.save_every_n`` updates (the whole
training state; for LoRA only the adapter tensors; the newest is resumed exactly when the command is
run again), ``log/``, ``tensorboard/``, ``train_config.yaml`` (a copy); at the end ``final/``
(``config.yaml`` + ``model.pt`` in upstream's format, loadable with
``songgeneration.models.load_lelm``) for a full run, or ``lora/`` (``adapter_model.safetensors`` +
``adapter_config.json``, peft's layout; ``songgeneration.bin.merge_lora`` folds it into a full
checkpoint) for LoRA.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from shirabe.cli import ArgumentParser, InputError, get_logger, run_main
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.loop import SEED_STRIDE_PER_RANK, Trainer, new_training_params
from shirabe.train.lora import base_model, unwrap
from shirabe.train.lr_scheduler import WarmupCosine
from shirabe.train.metrics import TensorBoard
from shirabe.train.options import add_training_arguments, check_training_arguments
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank, setup_rank_logging
from songgeneration.models.config import LeLMConfig, load_config
from songgeneration.train_config import TrainConfig, load_train_config
from songgeneration.training.data import (
    Song,
    SongSampler,
    fixed_batches,
    load_manifest,
    text_ids_of,
)
from songgeneration.training.loss import compute_loss, dropout_rates

logger = get_logger("songgeneration.bin.train")
MODULE = "songgeneration.bin.train"
FINAL_DIR = "final"
LORA_DIR = "lora"
CONFIG_NAME = "config.yaml"
BETAS = (0.9, 0.95)
SAVE_DTYPES = {"float16": torch.float16, "bf16": torch.bfloat16, "float32": torch.float32}
#: shared options whose default is the config's value: {dest: training field}
FROM_CONFIG = {"dtype": "precision", "accum_grad": "grad_accum", "gradient_checkpointing": "gradient_checkpointing",
               "seed": "seed"}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.train", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="train_config.yaml (required)")
    p.add_argument("--keep-last-k", type=int, default=3, help="checkpoint-N.pt files kept")
    p.add_argument("--log-interval", type=int, default=10, help="log (and TensorBoard) every N updates")
    p.add_argument("--save-dtype", choices=list(SAVE_DTYPES), default="float16",
                   help="precision of final/model.pt of a full run (the releases are float16)")
    add_training_arguments(p, seed=42, dtype="float32", max_grad_norm=1.0)
    for action in p._actions:
        if action.dest in FROM_CONFIG:
            action.default = None
            action.help = f"{action.help} (default: the config's training.{FROM_CONFIG[action.dest]})"
    return p


@dataclass
class Plan:
    config: TrainConfig
    lm_config: LeLMConfig
    base_dir: Path
    tokenizer_dir: Path
    songs: list[Song]
    num_iters: int
    argv: list[str] | None


def resolve_tokenizer_dir(config: TrainConfig, lm_config: LeLMConfig, base_dir: Path) -> Path:
    """``paths.text_tokenizer_path``, else the base config's ``token_path`` (absolute or beside the checkpoint)."""
    if config.paths.text_tokenizer_path is not None:
        folder = config.resolve(config.paths.text_tokenizer_path)
        if not folder.is_dir():
            raise InputError(f"{config.source}: paths.text_tokenizer_path: {folder} is not a folder")
        return folder
    token_path = Path(lm_config.lyric.token_path)
    for cand in ([token_path] if token_path.is_absolute() else [base_dir / token_path, Path.cwd() / token_path]):
        if cand.is_dir():
            return cand
    raise InputError(f"{config.source}: no Qwen2 tokenizer folder at the base config's token_path "
                     f"'{lm_config.lyric.token_path}'; set paths.text_tokenizer_path")


def apply_config_defaults(args, config: TrainConfig) -> None:
    t = config.training
    for dest, field in FROM_CONFIG.items():
        if getattr(args, dest) is None:
            setattr(args, dest, getattr(t, field))


def plan_training(args, argv) -> Plan:
    """Read and check the config, the base checkpoint and the data before any process starts."""
    config = load_train_config(args.config)
    apply_config_defaults(args, config)
    t = config.training
    for name in ("keep_last_k", "log_interval"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    base_dir = config.resolve(config.paths.base_model_path)
    lm_config = load_config(base_dir / CONFIG_NAME)
    if not t.from_scratch and not (base_dir / "model.pt").is_file():
        raise InputError(f"{config.source}: paths.base_model_path: no model.pt in {base_dir} "
                         "(set training.from_scratch: true to start from random weights)")
    if t.from_scratch and t.type == "lora":
        raise InputError(f"{config.source}: training.type lora needs trained base weights; "
                         "training.from_scratch takes training.type full")
    dropout_rates(lm_config)
    tokenizer_dir = resolve_tokenizer_dir(config, lm_config, base_dir)
    songs = load_manifest(config.resolve(config.paths.prepared_data_dir), lm_config.code_size,
                          lm_config.prompt_frames)
    batches = math.ceil(len(songs) / t.batch_size)
    num_iters = t.max_steps if t.max_steps > 0 else math.ceil(t.epochs * batches / args.accum_grad)
    if not t.warmup_steps < num_iters:
        raise InputError(f"{config.source}: training.warmup_steps ({t.warmup_steps}) must be below the number of "
                         f"updates ({num_iters})")
    args.exp_dir = config.resolve(config.paths.output_dir)
    return Plan(config, lm_config, base_dir, tokenizer_dir, songs, num_iters, argv)


def build_model(plan: Plan, seed: int, gradient_checkpointing: bool):
    """The LeLM to train (base weights or random), wrapped with adapters for LoRA."""
    from songgeneration.models import attach_tokenizer, build_lelm, load_lelm

    t = plan.config.training
    if t.from_scratch:
        torch.manual_seed(seed)
        model = build_lelm(plan.lm_config)
        attach_tokenizer(model, plan.tokenizer_dir)
    else:
        model = load_lelm(plan.base_dir, dtype=torch.float32, tokenizer_dir=plan.tokenizer_dir)
    for decoder in (model.transformer, model.transformer2):
        decoder.model.gradient_checkpointing = bool(gradient_checkpointing)
    if t.type == "lora":
        from songgeneration.training.lora import wrap_lelm

        torch.manual_seed(seed)  # the adapters' initial A: the same in every run with this seed
        model = wrap_lelm(model, plan.config.lora, plan.config.source)
    return model.train()


def run(rank: int, world_size: int, args, local_rank=None, use_env=False, *, plan: Plan) -> None:
    device, local_rank = setup_rank(rank, world_size, args, local_rank, use_env,
                                    log_file=args.exp_dir / "log" / "log-train.txt")
    if rank == 0:
        describe_experiment(args.exp_dir, MODULE, plan.argv, files={"train_config.yaml": Path(args.config)})
    t = plan.config.training
    model = build_model(plan, args.seed, args.gradient_checkpointing)
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    logger.info("%s%s: %.2f M of %.2f M parameters train", t.type, " from scratch" if t.from_scratch else "",
                trainable / 1e6, total / 1e6)
    frames = sum(s.frames for s in plan.songs)
    logger.info("%d songs, %d frames (%.1f min); %d updates", len(plan.songs), frames, frames / 25 / 60,
                plan.num_iters)
    model.to(device)
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=t.learning_rate,
                                  betas=BETAS, weight_decay=t.weight_decay)
    scheduler = WarmupCosine(optimizer, total_batches=plan.num_iters, warmup_batches=t.warmup_steps)
    lm = base_model(model)
    text = text_ids_of(lm)
    cfg = plan.lm_config
    sampler = SongSampler(plan.songs, t.batch_size, text, cfg.code_size, cfg.prompt_frames,
                          seed=args.seed + SEED_STRIDE_PER_RANK * rank)
    valid = fixed_batches(plan.songs, t.batch_size, text, cfg.code_size, cfg.prompt_frames) \
        if t.valid_every_n > 0 else None
    params = new_training_params(
        exp_dir=args.exp_dir, seed=args.seed, num_iters=plan.num_iters, save_every_n=t.save_every_n,
        keep_last_k=args.keep_last_k, log_interval=args.log_interval, valid_interval=t.valid_every_n,
        accum_grad=args.accum_grad, max_grad_norm=args.max_grad_norm, gradient_checkpointing=False,
        world_size=world_size, lr=t.learning_rate, dtype=args.dtype, mode=t.type)
    extra = {"mode": t.type, "from_scratch": t.from_scratch}
    loss_fn = partial(compute_loss, device=device, rates=dropout_rates(cfg))
    trainer = Trainer(params, wrap_ddp(model, device), optimizer, scheduler, sampler, loss_fn, device,
                      MixedPrecision(args.dtype, device), rank=rank, world_size=world_size, valid_dl=valid,
                      tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard, rank=rank),
                      extra_state=extra, batches_per_epoch=len(sampler))
    trainer.resume_latest(expect=extra)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    if rank == 0:
        write_final(args, plan, trainer.model)


def final_output(args, plan_or_type) -> Path:
    kind = plan_or_type if isinstance(plan_or_type, str) else plan_or_type.config.training.type
    return args.exp_dir / (LORA_DIR if kind == "lora" else FINAL_DIR)


def write_final(args, plan: Plan, model) -> Path:
    out = final_output(args, plan)
    if plan.config.training.type == "lora":
        from songgeneration.training.lora import save_adapter

        save_adapter(unwrap(model), out)
    else:
        from songgeneration.models import save_lelm

        tmp = out.with_name(f".tmp.{out.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copyfile(plan.base_dir / CONFIG_NAME, tmp / CONFIG_NAME)
        save_lelm(base_model(model), tmp, dtype=SAVE_DTYPES[args.save_dtype])
        tmp.rename(out)
    logger.info("wrote %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    config = load_train_config(args.config)
    apply_config_defaults(args, config)
    check_training_arguments(args)
    args.exp_dir = config.resolve(config.paths.output_dir)
    final = final_output(args, config.training.type)
    if final.is_dir():
        setup_rank_logging(args.exp_dir, 0, 1, args.exp_dir / "log" / "log-train.txt", verbose=args.verbose)
        logger.info("%s exists; nothing to do", final)
        return 0
    plan = plan_training(args, argv)
    return launch(partial(run, plan=plan), args, args.world_size, MODULE)


if __name__ == "__main__":
    run_main(main)
