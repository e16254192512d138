#!/usr/bin/env python3
"""Distil a trained ZipVoice into ZipVoiceDistill, which samples in a few steps without CFG batches.

Two stages, as upstream:

* ``--distill-stage first``: the teacher is the frozen ZipVoice ``--teacher-model``
  (with classifier-free guidance ``w ~ U(0, 2)``); the student is a ZipVoiceDistill
  initialised from the same weights (its guidance-scale embedding is new).
* ``--distill-stage second``: ``--teacher-model`` is the (averaged) first-stage
  student; the student starts from it and the teacher is an exponential moving
  average of the student (``--ema-decay``, saved as ``model_ema`` in every
  checkpoint), with ``w ~ U(1, 3)``.

In both stages only ``fm_decoder.*`` is trained, with a constant learning rate; the
loss is described in ``zipvoice/distill/loss.py`` (one student step imitates two
guided teacher steps).

    python -m zipvoice.bin.train_zipvoice_distill --teacher-model exp/zipvoice/epoch-11-avg-4.pt \\
        --distill-stage first --num-iters 60000 --base-lr 0.0005 --exp-dir exp/zipvoice_distill_1stage \\
        --train-manifest data/fbank/cuts_train.jsonl.gz --dev-manifest data/fbank/cuts_dev.jsonl.gz
    python -m zipvoice.bin.generate_averaged_model --exp-dir exp/zipvoice_distill_1stage --iter 60000 --avg 7
    python -m zipvoice.bin.train_zipvoice_distill --teacher-model exp/zipvoice_distill_1stage/iter-60000-avg-7.pt \\
        --distill-stage second --num-iters 2000 --base-lr 0.0001 --exp-dir exp/zipvoice_distill ...

``--model-config`` and ``--token-file`` default to ``model.json`` and ``tokens.txt``
beside ``--teacher-model``. Checkpoints, averaging and resuming (``--start-batch``,
``--start-epoch``) work as in ``zipvoice.bin.train_zipvoice``; the averaged result
loads with ``--model-name zipvoice_distill`` (e.g. ``infer_zipvoice --model-name
zipvoice_distill --num-step 4``).
"""

from __future__ import annotations

import copy
import logging
from functools import partial
from pathlib import Path

import torch
from torch import nn

from shirabe.cli import ArgumentParser, InputError, run_main
from shirabe.train.checkpoint import load_state_dict_file, safe_load
from shirabe.train.dist import cleanup_dist, launch, wrap_ddp
from shirabe.train.loop import Trainer, new_training_params, num_parameters
from shirabe.train.lr_scheduler import FixedLRScheduler
from shirabe.train.metrics import MetricsTracker, TensorBoard
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
from shirabe.train.rng import seed_everything
from zipvoice.bin.train_zipvoice import start_process
from zipvoice.dataset import (
    DataOptions,
    TokenMapper,
    ZipVoiceDataset,
    add_data_arguments,
    load_cuts,
    make_dev_dataloader,
    make_train_dataloader,
)
from zipvoice.distill import DistillStudent, distill_loss, ema_update
from zipvoice.models import build_model, read_config
from zipvoice.tokenizer import TOKENIZER_NAMES, vocab_info

logger = logging.getLogger("zipvoice.train_distill")

NEW_STUDENT_KEYS = ("fm_decoder.guidance_scale_embed.weight",)


def get_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m zipvoice.bin.train_zipvoice_distill",
                            description=__doc__.split("\n\n")[0])
    g = parser.add_argument_group("distillation")
    g.add_argument("--teacher-model", type=Path, required=True,
                   help="teacher weights ({'model': state_dict}): a ZipVoice for the first stage, the averaged "
                        "first-stage student for the second (required)")
    g.add_argument("--distill-stage", choices=("first", "second"), required=True, help="distillation stage (required)")
    g.add_argument("--ema-decay", type=float, default=0.9999, help="second stage: decay of the EMA teacher")

    add_training_arguments(parser, seed=42, dtype="fp16", use_fp16_alias=True)
    add_schedule_arguments(parser, exp_dir="exp/zipvoice_distill", num_epochs=1, save_every_n=1000)
    g = parser.add_argument_group("optimizer")
    g.add_argument("--base-lr", type=float, default=0.001, help="learning rate (constant)")

    g = parser.add_argument_group("model")
    g.add_argument("--model-config", type=Path, default=None, help="model.json (default: beside --teacher-model)")
    g.add_argument("--token-file", type=Path, default=None, help="tokens.txt (default: beside --teacher-model)")
    g.add_argument("--tokenizer", default="japanese", choices=TOKENIZER_NAMES,
                   help="tokenizer for cuts without stored tokens (on the fly, slow)")
    g.add_argument("--lang", default="en-us", help="espeak voice of the espeak tokenizer")
    g.add_argument("--feat-scale", type=float, default=0.1, help="features are multiplied by this before the model")

    add_data_arguments(parser)
    return parser


def resolve_paths(args) -> None:
    """Default --model-config / --token-file to the files beside --teacher-model; check inputs."""
    if not args.teacher_model.is_file():
        raise InputError(f"{args.teacher_model}: no such teacher checkpoint")
    if args.model_config is None:
        args.model_config = args.teacher_model.parent / "model.json"
    if args.token_file is None:
        args.token_file = args.teacher_model.parent / "tokens.txt"
    read_config(args.model_config)
    vocab_info(args.token_file)
    if not 0.0 <= args.ema_decay < 1.0:
        raise InputError(f"--ema-decay must lie in [0, 1), got {args.ema_decay}")
    if args.max_duration <= 0:
        raise InputError(f"--max-duration must be > 0, got {args.max_duration}")
    check_training_arguments(args)
    check_schedule_arguments(args)
    load_cuts(args.train_manifest, "training")
    if args.dev_manifest is not None:
        load_cuts(args.dev_manifest, "validation")


def load_teacher_and_student(args, config: dict, vocab_size: int, pad_id: int) -> tuple[nn.Module, DistillStudent]:
    """The frozen teacher and the student, both from --teacher-model (module docstring)."""
    state = load_state_dict_file(args.teacher_model, trust=args.trust_checkpoint, key="model")
    name = "zipvoice" if args.distill_stage == "first" else "zipvoice_distill"
    teacher = build_model(config["model"], vocab_size, pad_id, name)
    try:
        teacher.load_state_dict(state, strict=True)
    except RuntimeError as e:
        hint = (" (the first stage needs a ZipVoice, the second the averaged first-stage student)")
        raise InputError(f"{args.teacher_model}: not a {name} checkpoint of this config: "
                         f"{str(e).splitlines()[0]}{hint}") from e
    cfg = {k: v for k, v in config["model"].items() if k not in ("vocab_size", "pad_id")}
    student = DistillStudent(**cfg, vocab_size=vocab_size, pad_id=pad_id)
    missing, unexpected = student.load_state_dict(state, strict=False)
    if unexpected or set(missing) - set(NEW_STUDENT_KEYS):
        raise InputError(f"{args.teacher_model}: does not fit the student (missing {missing}, unexpected {unexpected})")
    for name_, p in student.named_parameters():
        p.requires_grad_(name_.startswith("fm_decoder."))
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval(), student


def compute_loss(model, batch: dict, is_training: bool, *, teacher, stage: str, feat_scale: float, device):
    with torch.set_grad_enabled(is_training):
        loss, ref_loss, frames = distill_loss(model, teacher, batch, stage, feat_scale, device)
    return loss, MetricsTracker(loss=float(loss.detach()) * frames, ref_loss=float(ref_loss) * frames,
                                frames=frames, utterances=batch["features"].size(0))


class DistillTrainer(Trainer):
    """The training loop plus, in the second stage, the EMA teacher update after every optimizer update."""

    def __init__(self, *args, ema: nn.Module | None = None, ema_decay: float = 0.9999, **kwargs):
        super().__init__(*args, **kwargs)
        self.ema, self.ema_decay = ema, ema_decay

    def after_step(self) -> None:
        if self.ema is not None:
            ema_update(self.ema, self.model, self.ema_decay)


def run(rank: int, world_size: int, args, local_rank: int | None = None, use_env: bool = False) -> None:
    device, local_rank, config = start_process(rank, world_size, args, local_rank, use_env,
                                               module="zipvoice.bin.train_zipvoice_distill")
    vocab_size, pad_id = vocab_info(args.token_file)
    seed_everything(args.seed)
    teacher, student = load_teacher_and_student(args, config, vocab_size, pad_id)
    ema = None
    if args.distill_stage == "second":
        teacher = copy.deepcopy(student).eval()  # the EMA of the student, starting from it
        for p in teacher.parameters():
            p.requires_grad_(False)
        ema = teacher
        point = resume_point(args)
        if point is not None:
            ckpt = safe_load(point[0])
            if "model_ema" not in ckpt:
                raise InputError(f"{point[0]}: has no model_ema to resume the second stage from")
            ema.load_state_dict(ckpt["model_ema"], strict=True)
    trainable, total = num_parameters(student)
    logger.info("distillation stage %s from %s: %d of %d student parameters trained (fm_decoder)",
                args.distill_stage, args.teacher_model, trainable, total)
    model_avg = copy.deepcopy(student).to(torch.float64) if rank == 0 else None
    student, teacher = student.to(device), teacher.to(device)
    model = wrap_ddp(student, device)
    optimizer = ScaledAdam(parameter_groups_with_lr_scale(student, lr=args.base_lr), lr=args.base_lr,
                           clipping_scale=2.0)
    scheduler = FixedLRScheduler(optimizer)
    precision = MixedPrecision(resolve_dtype(args), device)

    data_opts = DataOptions.from_args(args)
    dataset = ZipVoiceDataset(TokenMapper(args.token_file, args.tokenizer, args.lang))
    train_dl, _, _ = make_train_dataloader(load_cuts(args.train_manifest), dataset, data_opts, world_size, rank)
    valid_dl = None
    if args.dev_manifest is not None:
        valid_dl = make_dev_dataloader(load_cuts(args.dev_manifest, "validation"), dataset, data_opts,
                                       world_size, rank)
    params = new_training_params(**{k: v for k, v in vars(args).items() if v is not None})
    params.update(
        valid_interval=args.valid_interval if args.valid_interval is not None else args.save_every_n,
        dtype=precision.dtype, world_size=world_size, vocab_size=vocab_size, pad_id=pad_id,
        model_name="zipvoice_distill", lr_hours=0.0,
    )
    extra = {"distill_stage": args.distill_stage}
    if ema is not None:
        # the tensors of ema.state_dict() share storage with the EMA weights, so every
        # checkpoint stores the EMA as it is when the checkpoint is written
        extra["model_ema"] = ema.state_dict()
    trainer = DistillTrainer(
        params, model, optimizer, scheduler, train_dl,
        partial(compute_loss, teacher=teacher, stage=args.distill_stage, feat_scale=args.feat_scale, device=device),
        device, precision, valid_dl=valid_dl, rank=rank, world_size=world_size, model_avg=model_avg,
        tb=TensorBoard(args.exp_dir / "tensorboard", enabled=args.tensorboard, rank=rank),
        extra_state=extra, ema=ema, ema_decay=args.ema_decay,
    )
    point = resume_point(args)
    if point is not None:
        trainer.resume(*point)
    logger.info("distilling in %s", args.exp_dir)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    logger.info("done: checkpoints in %s (average them, then load with --model-name zipvoice_distill)", args.exp_dir)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    resolve_paths(args)
    return launch(run, args, args.world_size, "train_zipvoice_distill")


if __name__ == "__main__":
    run_main(main)
