#!/usr/bin/env python3
"""Train the small CTC phone recognizer (shirabe.asr) on a speech corpus.

    python -m shirabe.bin.train_phone_recognizer --corpus-dir data/mini/speech --exp-dir exp/phone_recognizer

The corpus directory holds ``train.tsv`` and, optionally, ``dev.tsv`` (lines
``utt_id<TAB>text<TAB>wav``, the layout of local/make_mini_corpus.py; a whole
mini corpus directory with ``speech/`` inside works too). Training uses the
train split and validates on dev once per epoch (the log's ``per`` is the dev
phone error rate). Features are cached in ``EXP/fbank/``.

The experiment directory receives the model (``model.pt``, ``model.json``,
``phones.txt``; score with ``python -m shirabe.bin.score_phones --model-dir EXP``),
``train-summary.json`` (time taken, dev PER, sizes), the last training
checkpoint ``checkpoint-N.pt``, logs under ``log/`` and ``train-commands.txt``.
A run is deterministic for a seed on one device and thread count. The options
shared by every training binary (precision, accumulation, clipping) are in
docs/training.md; this binary runs in one process (no DDP). See
docs/phone_recognizer.md.
"""

from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path

import torch

from shirabe.asr.data import BatchSampler, eval_batches, find_split, read_utterance_list
from shirabe.asr.model import (
    FEATURE_NORMS,
    SUBSAMPLINGS,
    ModelConfig,
    PhoneCTCModel,
    num_parameters,
)
from shirabe.asr.phones import TextPhones, phone_table
from shirabe.asr.recognizer import save_recognizer
from shirabe.asr.training import compute_loss, load_examples, nonspeech_examples, total_frames
from shirabe.cli import ArgumentParser, InputError, add_bool_argument, get_logger, run_main
from shirabe.train.dist import torchrun_env
from shirabe.train.loop import Trainer, new_training_params
from shirabe.train.lr_scheduler import WarmupCosine
from shirabe.train.metrics import MetricsTracker, TensorBoard
from shirabe.train.options import add_training_arguments, check_training_arguments, loop_params
from shirabe.train.precision import MixedPrecision
from shirabe.train.process import describe_experiment, setup_rank
from shirabe.train.rng import seed_everything

MODULE = "shirabe.bin.train_phone_recognizer"
SUMMARY_FILE = "train-summary.json"
logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    defaults = ModelConfig(num_classes=2)
    p = ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--corpus-dir", type=Path, required=True,
                   help="directory with train.tsv and optionally dev.tsv (or a mini corpus with speech/) (required)")
    p.add_argument("--exp-dir", type=Path, default=Path("exp/phone_recognizer"), help="experiment directory")
    add_training_arguments(p, seed=42, max_grad_norm=5.0, num_threads=1,
                           num_threads_help="training (1 is faster when other jobs hold the cores)")

    g = p.add_argument_group("schedule")
    g.add_argument("--num-epochs", type=int, default=30, help="passes over the training utterances")
    g.add_argument("--batch-size", type=int, default=12, help="utterances per batch")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    g.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    g.add_argument("--warmup-epochs", type=float, default=1.0,
                   help="epochs of linear warm-up; then a cosine decay to 2 %% of --lr at the end")
    g.add_argument("--log-interval", type=int, default=0, help="log every N updates (0: once per epoch)")
    g.add_argument("--save-every-n", type=int, default=0,
                   help="write EXP/checkpoint-B.pt every N updates (0: only at the end)")
    g.add_argument("--keep-last-k", type=int, default=1, help="keep only the newest K checkpoint-B.pt files")

    g = p.add_argument_group("model")
    g.add_argument("--feature-norm", choices=FEATURE_NORMS, default=defaults.feature_norm,
                   help="per-utterance normalisation of each mel bin: subtract the mean, or also divide by the "
                        "standard deviation")
    g.add_argument("--subsampling", type=int, choices=SUBSAMPLINGS, default=defaults.subsampling,
                   help="frame-rate reduction of the convolutional front end")
    g.add_argument("--conv-channels", type=int, default=defaults.conv_channels,
                   help="channels of the convolutions (and of the LSTMs' residual path)")
    g.add_argument("--conv-blocks", type=int, default=defaults.conv_blocks,
                   help="residual convolution blocks after the front end")
    g.add_argument("--hidden-size", type=int, default=defaults.hidden_size, help="LSTM units per direction")
    g.add_argument("--num-layers", type=int, default=defaults.num_layers, help="bidirectional LSTM layers")
    g.add_argument("--dropout", type=float, default=defaults.dropout,
                   help="dropout in the convolution blocks, between and after the LSTMs")
    add_bool_argument(g, "--spec-augment", True, "mask random time spans and mel bands in training")
    g.add_argument("--nonspeech-ratio", type=float, default=0.3,
                   help="add this many synthetic non-speech clips (noise, pulse trains, tones, silence) with no "
                        "phones per training utterance, so that non-speech decodes to nothing")
    return p


def model_config(args, num_classes: int) -> ModelConfig:
    masks = {} if args.spec_augment else {"time_masks": 0, "freq_masks": 0}
    try:
        return ModelConfig(num_classes=num_classes, feature_norm=args.feature_norm, subsampling=args.subsampling,
                           conv_channels=args.conv_channels, conv_blocks=args.conv_blocks,
                           hidden_size=args.hidden_size, num_layers=args.num_layers, dropout=args.dropout, **masks)
    except ValueError as e:
        raise InputError(f"bad model option: {e}") from e


def check_inputs(args) -> tuple[Path, Path | None]:
    """One-line errors for the mistakes a user can fix; returns the train and dev TSVs."""
    check_training_arguments(args)
    if args.world_size != 1 or torchrun_env() is not None:
        raise InputError("this binary trains in one process: leave --world-size at 1 and do not use torchrun")
    for name in ("num_epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        raise InputError(f"--lr must be > 0, got {args.lr}")
    if args.warmup_epochs < 0:
        raise InputError(f"--warmup-epochs must be >= 0, got {args.warmup_epochs}")
    if not 0 <= args.nonspeech_ratio <= 1:
        raise InputError(f"--nonspeech-ratio must lie in [0, 1], got {args.nonspeech_ratio}")
    if args.keep_last_k < 1:
        raise InputError(f"--keep-last-k must be >= 1, got {args.keep_last_k}")
    if not args.corpus_dir.is_dir():
        raise InputError(f"{args.corpus_dir}: no such corpus directory")
    train = find_split(args.corpus_dir, "train")
    if not train.is_file():
        raise InputError(f"{args.corpus_dir}: no train.tsv (nor speech/train.tsv)")
    if not read_utterance_list(train):
        raise InputError(f"{train}: no utterances to train on")
    dev = find_split(args.corpus_dir, "dev")
    if not dev.is_file() or not read_utterance_list(dev):
        dev = None
    model_config(args, 2)
    return train, dev


@torch.no_grad()
def evaluate(model, batches, device) -> MetricsTracker:
    was_training = model.training
    model.eval()
    tot = MetricsTracker()
    for batch in batches:
        tot = tot + compute_loss(model, batch, False, device=device)[1]
    model.train(was_training)
    return tot


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    train_tsv, dev_tsv = check_inputs(args)
    start = time.monotonic()
    device, _ = setup_rank(0, 1, args)
    describe_experiment(args.exp_dir, MODULE, argv)
    logger.info("device %s, %d CPU threads", device, torch.get_num_threads())

    table = phone_table()
    to_phones = TextPhones(quiet=True)
    train = load_examples(train_tsv, table, args.exp_dir / "fbank" / "train.pt", to_phones)
    dev = load_examples(dev_tsv, table, args.exp_dir / "fbank" / "dev.pt", to_phones) if dev_tsv else []
    logger.info("training on %d utterances (%.1f min) of %s; validating on %d of %s", len(train),
                total_frames(train) * 256 / 24000 / 60, train_tsv, len(dev), dev_tsv or "(no dev.tsv)")
    num_speech = len(train)
    nonspeech = nonspeech_examples(round(args.nonspeech_ratio * num_speech), train, args.seed)
    if nonspeech:
        logger.info("plus %d synthetic non-speech clips without phones", len(nonspeech))
    train = train + nonspeech

    config = model_config(args, len(table))
    seed_everything(args.seed)
    model = PhoneCTCModel(config).to(device)
    logger.info("model: %d parameters, %s", num_parameters(model), json.dumps(config.to_dict()))

    sampler = BatchSampler(train, args.batch_size, args.seed)
    per_epoch = sampler.batches_per_epoch
    num_iters = per_epoch * args.num_epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = min(round(args.warmup_epochs * per_epoch), num_iters - 1)
    scheduler = WarmupCosine(optimizer, total_batches=num_iters, warmup_batches=warmup, warmup_start=0.1,
                             min_ratio=0.02)
    precision = MixedPrecision(loop_params(args)["dtype"], device)
    dev_batches = eval_batches(dev, args.batch_size) if dev else None

    params = new_training_params(**loop_params(args))
    params.update(
        exp_dir=args.exp_dir, num_iters=num_iters, valid_interval=per_epoch,
        log_interval=args.log_interval or per_epoch, save_every_n=args.save_every_n, keep_last_k=args.keep_last_k,
        average_period=num_iters + 1, dtype=precision.dtype, batches_per_epoch=per_epoch,
    )
    trainer = Trainer(
        params, model, optimizer, scheduler, sampler, partial(compute_loss, device=device), device, precision,
        valid_dl=dev_batches, tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard),
    )
    initial = evaluate(model, dev_batches, device).averages() if dev_batches else {}
    logger.info("%d epochs of %d batches: %d updates", args.num_epochs, per_epoch, num_iters)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
    path = save_recognizer(model, table, args.exp_dir)
    seconds = time.monotonic() - start

    summary = {"seconds": round(seconds, 1), "updates": num_iters, "epochs": args.num_epochs,
               "parameters": num_parameters(model), "train_utterances": num_speech, "nonspeech_clips": len(nonspeech), "dev_utterances": len(dev),
               "threads": torch.get_num_threads(), "device": str(device),
               "running_train_loss": trainer.tot_loss.averages().get("loss", math.nan)}
    if dev_batches:
        dev_metrics = evaluate(model, dev_batches, device).averages()
        summary.update(initial_dev_loss=initial["loss"], initial_dev_per=initial["per"], dev_loss=dev_metrics["loss"],
                       dev_per=dev_metrics["per"])
        logger.info("dev PER %.2f %% (loss %.4f)", 100 * dev_metrics["per"], dev_metrics["loss"])
    (args.exp_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info("saved %s (%d parameters) in %.1f s", path, summary["parameters"], seconds)
    return 0


if __name__ == "__main__":
    run_main(main)
