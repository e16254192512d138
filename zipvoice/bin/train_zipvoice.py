#!/usr/bin/env python3
"""Train (or fine-tune) ZipVoice with the flow-matching loss.

From scratch, 4 GPUs on one node:

    python -m zipvoice.bin.train_zipvoice --world-size 4 --dtype fp16 \\
        --num-iters 60000 --max-duration 500 --lr-hours 3800 \\
        --model-config zipvoice/configs/zipvoice_base.json --token-file data/tokens.txt \\
        --train-manifest data/fbank/mini_cuts_train.jsonl.gz \\
        --dev-manifest data/fbank/mini_cuts_dev.jsonl.gz --exp-dir exp/zipvoice

Fine-tuning a released model (constant learning rate; optionally LoRA/DoRA or
frozen decoder stacks, see ``--help``):

    python -m zipvoice.bin.train_zipvoice --finetune 1 --base-lr 1e-4 \\
        --checkpoint download/zipvoice/model.pt --num-iters 10000 --save-every-n 1000 \\
        --use-lora 1 --lora-rank 16 ... (manifests, token file, exp dir as above)

Resume: ``--start-batch B`` continues exactly from ``EXP/checkpoint-B.pt``
(model, averaged model, optimizer, scheduler, grad scaler, sampler position and
random state); ``--start-epoch E`` continues from ``EXP/epoch-(E-1).pt``.

Multi-node (or any launcher that sets ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``/
``MASTER_ADDR``/``MASTER_PORT``): start one process per GPU with torchrun and
leave ``--world-size`` out; it is taken from the environment:

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29400 -m zipvoice.bin.train_zipvoice ...

The experiment dir gets ``model.json`` and ``tokens.txt`` (so
``zipvoice.models.load_model(EXP, "epoch-N.pt")`` works), the checkpoints
(``epoch-N.pt``, ``checkpoint-B.pt``, ``best-{train,valid}-loss.pt``), logs
under ``log/``, TensorBoard events under ``tensorboard/`` and, in
``train-commands.txt``, every command line with its date, git revision and
package versions. In LoRA/DoRA mode checkpoints hold only the adapters (merge
them with ``python -m zipvoice.bin.merge_lora``).

Without a GPU training runs in float32 on CPU (``--dtype fp16`` is then ignored;
``--dtype bf16`` works) and DDP uses the gloo backend. The options shared by every
training binary (precision, accumulation, clipping, DDP) are in docs/training.md.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from functools import partial
from pathlib import Path

import torch
from torch import nn

from shirabe.cli import ArgumentParser, InputError, add_bool_argument, run_main
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.hooks import register_inf_check_hooks
from shirabe.train.loop import Trainer, new_training_params, num_parameters
from shirabe.train.lr_scheduler import Eden, FixedLRScheduler
from shirabe.train.metrics import MetricsTracker, TensorBoard
from shirabe.train.oom import scan_pessimistic_batches_for_oom
from shirabe.train.optim import ScaledAdam, parameter_groups_with_lr_scale
from shirabe.train.options import (
    add_schedule_arguments,
    add_training_arguments,
    check_schedule_arguments,
    check_training_arguments,
    resolve_dtype,
    resume_point,
)
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank
from shirabe.train.rng import seed_everything
from zipvoice.dataset import (
    DataOptions,
    TokenMapper,
    ZipVoiceDataset,
    add_data_arguments,
    load_cuts,
    make_dev_dataloader,
    make_train_dataloader,
    total_duration,
)
from zipvoice.finetune import (
    FinetuneOptions,
    add_finetune_arguments,
    finetune_metadata,
    load_trainable_state_dict,
    prepare_model_for_finetuning,
    trainable_state_dict,
)
from zipvoice.models import BASE_CONFIG, build_model, read_config
from zipvoice.tokenizer import TOKENIZER_NAMES, vocab_info

logger = logging.getLogger("zipvoice.train")


def get_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m zipvoice.bin.train_zipvoice", description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, seed=42, dtype="fp16", use_fp16_alias=True,
                           num_threads_help="each training process (more only pays off on an idle CPU)")
    g = parser.add_argument_group("run")
    add_bool_argument(g, "--inf-check", False,
                      "log the modules whose outputs or gradients are inf/NaN (slow; for debugging)")
    add_bool_argument(g, "--scan-oom", False,
                      "before training, run the heaviest batches of the first epoch to catch OOM early")
    add_schedule_arguments(parser, exp_dir="exp/zipvoice", num_epochs=11, save_every_n=5000)

    g = parser.add_argument_group("model")
    g.add_argument("--model-config", type=Path, default=None,
                   help="model.json ({'model': ..., 'feature': ...}) (default: zipvoice/configs/zipvoice_base.json)")
    g.add_argument("--token-file", type=Path, default=Path("data/tokens_emilia.txt"), help="tokens.txt (token<TAB>id)")
    g.add_argument("--tokenizer", default="emilia", choices=TOKENIZER_NAMES,
                   help="tokenizer for cuts without stored tokens (on the fly, slow)")
    g.add_argument("--lang", default="en-us", help="espeak voice of the espeak tokenizer")
    g.add_argument("--checkpoint", type=Path, default=None,
                   help="initialise the weights from this model.pt (or .safetensors), e.g. to fine-tune "
                        "(default: none, random weights)")
    g.add_argument("--base-token-file", type=Path, default=None,
                   help="tokens.txt of --checkpoint when the vocabulary is extended "
                        "(default: tokens.txt beside the checkpoint)")
    g.add_argument("--feat-scale", type=float, default=0.1, help="features are multiplied by this before the model")
    g.add_argument("--condition-drop-ratio", type=float, default=0.2, help="probability of dropping the text condition")

    g = parser.add_argument_group("optimizer and learning rate")
    g.add_argument("--optimizer", default="scaledadam", choices=("scaledadam", "adamw"), help="optimizer")
    g.add_argument("--base-lr", type=float, default=0.02, help="base learning rate")
    g.add_argument("--lr-batches", type=float, default=7500, help="Eden: batches over which the rate decays")
    g.add_argument("--lr-epochs", type=float, default=10, help="Eden: epochs over which the rate decays")
    g.add_argument("--lr-hours", type=float, default=0,
                   help="Eden: if > 0, decay over this many hours of audio seen instead of epochs")
    add_bool_argument(g, "--finetune", False, "fine-tuning mode: a constant learning rate")

    add_data_arguments(parser)

    add_finetune_arguments(parser)
    return parser


def compute_loss(model: nn.Module, batch: dict, is_training: bool, *, feat_scale: float,
                 condition_drop_ratio: float, device: torch.device):
    """Flow-matching loss of one batch; validation uses ``t = arange(B) / B``."""
    features = batch["features"].to(device) * feat_scale
    features_lens = batch["features_lens"].to(device)
    batch_size = features.size(0)
    noise = torch.randn_like(features)
    if is_training:
        t = torch.rand(batch_size, 1, 1, device=device)
    else:
        t = (torch.arange(batch_size, device=device, dtype=features.dtype) / batch_size).view(-1, 1, 1)
    with torch.set_grad_enabled(is_training):
        loss = model(tokens=batch["tokens"], features=features, features_lens=features_lens, noise=noise, t=t,
                     condition_drop_ratio=condition_drop_ratio)
    frames = float(features_lens.sum())
    return loss, MetricsTracker(loss=float(loss.detach()) * frames, frames=frames, utterances=batch_size)


def check_inputs(args) -> None:
    """Fail early, with one line, on the mistakes a user can fix."""
    if args.model_config is None:
        args.model_config = BASE_CONFIG
    if args.max_duration <= 0:
        raise InputError(f"--max-duration must be > 0, got {args.max_duration}")
    check_training_arguments(args)
    check_schedule_arguments(args)
    read_config(args.model_config)
    vocab_info(args.token_file)
    load_cuts(args.train_manifest, "training")
    if args.dev_manifest is not None:
        load_cuts(args.dev_manifest, "validation")
    FinetuneOptions.from_args(args)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise InputError(f"{args.checkpoint}: no such checkpoint file")


def start_process(rank: int, world_size: int, args, local_rank: int | None, use_env: bool,
                  module: str = "zipvoice.bin.train_zipvoice") -> tuple[torch.device, int, dict]:
    """:func:`shirabe.train.process.setup_rank`, then the model config; rank 0 records the
    experiment (command line, versions, ``model.json``, ``tokens.txt``). Returns
    (device, local_rank, model config)."""
    device, local_rank = setup_rank(rank, world_size, args, local_rank, use_env)
    config = read_config(args.model_config)
    if rank == 0:
        describe_experiment(args.exp_dir, module,
                            files={"model.json": json.dumps(config, indent=2) + "\n", "tokens.txt": args.token_file})
    return device, local_rank, config


def make_optimizer(args, model: nn.Module, uses_adapters: bool = False) -> torch.optim.Optimizer:
    if args.optimizer == "scaledadam":
        if uses_adapters:
            logger.warning("ScaledAdam scales each update by the tensor's RMS, and LoRA/DoRA B matrices start "
                           "at zero, so the adapters barely move: --optimizer adamw is recommended")
        return ScaledAdam(parameter_groups_with_lr_scale(model, lr=args.base_lr), lr=args.base_lr, clipping_scale=2.0)
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.base_lr)


def make_scheduler(args, optimizer):
    if args.finetune:
        return FixedLRScheduler(optimizer)
    return Eden(optimizer, args.lr_batches, args.lr_hours if args.lr_hours > 0 else args.lr_epochs)


def build_model_for_training(args, config: dict, opts: FinetuneOptions, rank: int, device: torch.device):
    """The model (initial weights, fine-tuning strategy applied, on ``device``) and, on rank 0, its
    float64 running average (kept on the CPU)."""
    vocab_size, pad_id = vocab_info(args.token_file)
    seed_everything(args.seed)
    model = build_model(config["model"], vocab_size, pad_id)
    model = prepare_model_for_finetuning(model, opts, init_checkpoint=args.checkpoint,
                                         base_token_file=args.base_token_file, token_file=args.token_file,
                                         trust=args.trust_checkpoint)
    trainable, total = num_parameters(model)
    logger.info("parameters: %d trainable of %d (%.2f %%), fine-tuning mode %s",
                trainable, total, 100.0 * trainable / max(total, 1), opts.mode)
    model_avg = copy.deepcopy(model).to(torch.float64) if rank == 0 else None
    model = model.to(device)
    if args.inf_check:
        register_inf_check_hooks(model)
    return model, model_avg


def build_data(args, dataset: ZipVoiceDataset, world_size: int, rank: int):
    """Training and validation loaders, and (rank 0, epoch-based runs) an estimate of the batches per epoch."""
    data_opts = DataOptions.from_args(args)
    train_dl, train_cuts, dropped = make_train_dataloader(load_cuts(args.train_manifest), dataset, data_opts,
                                                          world_size, rank)
    valid_dl = None
    if args.dev_manifest is not None:
        valid_dl = make_dev_dataloader(load_cuts(args.dev_manifest, "validation"), dataset, data_opts,
                                       world_size, rank)
    batches_per_epoch = None
    if rank == 0 and args.num_iters <= 0:
        dropped.update(short=0, long=0)
        seconds = total_duration(train_cuts)
        batches_per_epoch = max(1, math.ceil(seconds / (args.max_duration * world_size)))
        logger.info("training data: %.2f h after leaving out %d short (< %g s) and %d long (> %g s) cuts; "
                    "about %d batches per epoch", seconds / 3600, dropped["short"], args.min_len, dropped["long"],
                    args.max_len, batches_per_epoch)
    return train_dl, valid_dl, batches_per_epoch


def run(rank: int, world_size: int, args, local_rank: int | None = None, use_env: bool = False) -> None:
    device, local_rank, config = start_process(rank, world_size, args, local_rank, use_env)
    logger.info("device %s, world size %d, %d CPU threads", device, world_size, torch.get_num_threads())

    opts = FinetuneOptions.from_args(args)
    model, model_avg = build_model_for_training(args, config, opts, rank, device)
    ddp_model = wrap_ddp(model, device)
    optimizer = make_optimizer(args, model, opts.uses_adapters)
    precision = MixedPrecision(resolve_dtype(args), device)
    dataset = ZipVoiceDataset(TokenMapper(args.token_file, args.tokenizer, args.lang))
    train_dl, valid_dl, batches_per_epoch = build_data(args, dataset, world_size, rank)

    params = new_training_params(**{k: v for k, v in vars(args).items() if v is not None})
    params.update(
        valid_interval=args.valid_interval if args.valid_interval is not None else args.save_every_n,
        dtype=precision.dtype,
        world_size=world_size,
        finetune_mode=opts.mode,
    )
    params.vocab_size, params.pad_id = vocab_info(args.token_file)
    adapters = opts.uses_adapters
    trainer = Trainer(
        params, ddp_model, optimizer, make_scheduler(args, optimizer), train_dl,
        partial(compute_loss, feat_scale=args.feat_scale, condition_drop_ratio=args.condition_drop_ratio,
                device=device),
        device, precision, valid_dl=valid_dl, rank=rank, world_size=world_size, model_avg=model_avg,
        tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard, rank=rank),
        model_state_dict=(lambda m: trainable_state_dict(m, opts)) if adapters else None,
        load_model_state=(lambda m, sd: load_trainable_state_dict(m, sd, "checkpoint")) if adapters else None,
        batches_per_epoch=batches_per_epoch,
        extra_state={"finetune": finetune_metadata(opts)},
    )
    point = resume_point(args)
    if point is not None:
        trainer.resume(*point)
    if args.scan_oom and args.start_batch > 0:
        logger.info("--scan-oom skipped: the run resumes mid-epoch")
    elif args.scan_oom:
        scan_pessimistic_batches_for_oom(ddp_model, train_dl.sampler, dataset.__getitem__,
                                         lambda m, b: trainer.compute_loss(m, b, True)[0], optimizer,
                                         precision.autocast, args.max_duration)
    logger.info("training in %s", args.exp_dir)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    logger.info("done: checkpoints in %s", args.exp_dir)


def _user_error(e: InputError) -> InputError:
    """An InputError raised in a DataLoader worker comes back as "Caught InputError in DataLoader
    worker ..." followed by the traceback; keep only the original message."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    if lines and lines[0].startswith("Caught InputError"):
        return InputError(lines[-1].split("InputError: ", 1)[-1])
    return e


def run_checked(rank: int, world_size: int, args, **kwargs) -> None:
    try:
        run(rank, world_size, args, **kwargs)
    except InputError as e:
        raise _user_error(e) from e


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    check_inputs(args)
    return launch(run_checked, args, args.world_size, "train_zipvoice")


if __name__ == "__main__":
    run_main(main)
