"""The options every training binary shares (see ``docs/training.md``).

:func:`add_training_arguments` adds them to a binary's parser (a binary picks its
own defaults where they differ), :func:`check_training_arguments` rejects bad
values with one line, and :func:`loop_params` hands the loop's share to
:func:`shirabe.train.loop.new_training_params`.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    str2bool,
)
from shirabe.train.precision import PRECISIONS


def add_training_arguments(
    parser,
    *,
    seed: int = 42,
    dtype: str = "float32",
    max_grad_norm: float | None = 0.0,
    num_threads: int = 1,
    num_threads_help: str = "each training process",
    use_fp16_alias: bool = False,
):
    """Add the shared options to ``parser`` in a group of their own; returns the group.

    ``max_grad_norm=None`` means the binary takes the default from elsewhere (its
    config); ``use_fp16_alias`` also adds ``--use-fp16 BOOL`` for older command lines.
    """
    g = parser.add_argument_group("training (options every train binary shares)")
    add_device_argument(g, "each training process")
    add_num_threads_argument(g, default=num_threads, what=num_threads_help)
    g.add_argument("--world-size", type=int, default=1,
                   help="processes (GPUs) on this node for DDP training; leave it at 1 under torchrun, "
                        "which sets the world size itself")
    g.add_argument("--master-port", type=int, default=12356,
                   help="localhost port for the DDP rendezvous of --world-size > 1 (torchrun has its own)")
    g.add_argument("--seed", type=int, default=seed, help="random seed")
    add_bool_argument(g, "--tensorboard", True, "write TensorBoard events to EXP/tensorboard")
    g.add_argument("--dtype", choices=PRECISIONS, default=dtype,
                   help="training precision: float32, bf16 autocast (CUDA and CPU; no loss scaling) or fp16 "
                        "autocast with a GradScaler (CUDA only; float32 elsewhere)")
    if use_fp16_alias:
        g.add_argument("--use-fp16", type=str2bool, default=None, metavar="BOOL",
                       help="older spelling: true = --dtype fp16, false = --dtype float32 "
                            "(default: unset, --dtype decides)")
    g.add_argument("--accum-grad", type=int, default=1, metavar="N",
                   help="accumulate the gradients of N batches per optimizer update (an update then equals "
                        "one batch N times as large)")
    if max_grad_norm is None:
        g.add_argument("--max-grad-norm", type=float, default=None,
                       help="clip the gradient norm to this after unscaling; 0 = off (default: the config's)")
    else:
        g.add_argument("--max-grad-norm", type=float, default=max_grad_norm,
                       help="clip the gradient norm to this after unscaling; 0 = off")
    add_bool_argument(g, "--gradient-checkpointing", False,
                      "recompute activations in the backward pass to save memory (models that offer "
                      "gradient_checkpointing_enable(), e.g. transformers and peft models)")
    add_trust_checkpoint_argument(g)
    add_verbose_argument(g)
    return g


def add_schedule_arguments(parser, exp_dir: str, num_epochs: int, save_every_n: int) -> None:
    """The epoch-based binaries' run length, resumption and checkpoint cadence (icefall's names)."""
    g = parser.add_argument_group("schedule and checkpoints")
    g.add_argument("--exp-dir", type=Path, default=Path(exp_dir), help="experiment directory")
    g.add_argument("--num-epochs", type=int, default=num_epochs, help="epochs to train")
    g.add_argument("--num-iters", type=int, default=0,
                   help="stop after this many optimizer updates (> 0 overrides --num-epochs)")
    g.add_argument("--start-epoch", type=int, default=1, help="resume from EXP/epoch-(E-1).pt when > 1")
    g.add_argument("--start-batch", type=int, default=0,
                   help="resume exactly from EXP/checkpoint-B.pt when > 0 (overrides --start-epoch)")
    g.add_argument("--save-every-n", type=int, default=save_every_n, help="write EXP/checkpoint-B.pt every N updates")
    g.add_argument("--keep-last-k", type=int, default=30, help="keep only the newest K checkpoint-B.pt files")
    g.add_argument("--average-period", type=int, default=200, help="update the averaged model every N updates")
    g.add_argument("--log-interval", type=int, default=50, help="log (and TensorBoard) every N updates")
    g.add_argument("--valid-interval", type=int, default=None,
                   help="validate every N updates (default: every --save-every-n updates)")


def resume_point(args) -> tuple[Path, bool] | None:
    """``(checkpoint, mid_epoch)`` that ``--start-batch``/``--start-epoch`` resume from; None for a fresh run."""
    if args.start_batch > 0:
        return args.exp_dir / f"checkpoint-{args.start_batch}.pt", True
    if args.start_epoch > 1:
        return args.exp_dir / f"epoch-{args.start_epoch - 1}.pt", False
    return None


def check_schedule_arguments(args) -> None:
    """One-line errors for the options of :func:`add_schedule_arguments`."""
    if args.start_epoch < 1:
        raise InputError(f"--start-epoch must be >= 1, got {args.start_epoch}")
    if args.average_period < 1:
        raise InputError(f"--average-period must be >= 1, got {args.average_period}")
    point = resume_point(args)
    if point is not None and not point[0].is_file():
        raise InputError(f"{point[0]}: no such checkpoint to resume from")


def resolve_dtype(args) -> str:
    """``--dtype``, or what ``--use-fp16`` (where the binary has it and it was given) says."""
    use_fp16 = getattr(args, "use_fp16", None)
    if use_fp16 is None:
        return args.dtype
    return "fp16" if use_fp16 else "float32"


def check_training_arguments(args) -> None:
    """One-line errors for shared options out of range."""
    if args.accum_grad < 1:
        raise InputError(f"--accum-grad must be >= 1, got {args.accum_grad}")
    if args.max_grad_norm is not None and args.max_grad_norm < 0:
        raise InputError(f"--max-grad-norm must be >= 0 (0 = off), got {args.max_grad_norm}")
    if args.world_size < 1:
        raise InputError(f"--world-size must be >= 1, got {args.world_size}")
    if args.num_threads < 1:
        raise InputError(f"--num-threads must be >= 1, got {args.num_threads}")


def loop_params(args) -> dict:
    """The shared options the training loop reads."""
    return {
        "seed": args.seed,
        "accum_grad": args.accum_grad,
        "max_grad_norm": args.max_grad_norm or 0.0,
        "gradient_checkpointing": args.gradient_checkpointing,
        "dtype": resolve_dtype(args),
    }
