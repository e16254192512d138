"""Train a vocal → accompaniment model (image2image or controlnet mode) from one training config file.

The config (``acestep.config.TrainingConfig``, checked against the depth of ``--checkpoint-dir``'s
transformer) names the mode, the LoRA, the data (``dataset_path``: a folder with the latent caches
``vocal/`` and ``target/`` of ``acestep.bin.cache_latents``, paired by song key) and the
optimisation: ``learning_rate`` (AdamW, betas 0.8/0.9, ``weight_decay``), ``max_steps`` updates with
``warmup_steps`` of linear warm-up then linear decay to 0, ``batch_size`` pairs per batch,
``accumulate_grad_batches``, ``shift`` of the timestep draw, ``structure_loss_weight``,
``checkpoint_every_n_steps``, ``max_duration`` (longer pairs are cut to a random window). The
loss of each mode is described in ``docs/acestep_accompaniment.md`` and
:mod:`acestep.accompaniment.training`. ``ssl_coeff`` is ignored with a warning: the cache holds no
SSL targets.

``--dry-run true`` checks the config and the pairs, prints what would train and exits.

The experiment directory (``--exp-dir``, default ``logger_dir/exp_name``): ``checkpoint-N.pt`` (the
trainable tensors: LoRA and control encoder, optimizer and sampler state; the newest is resumed
exactly when the command runs again), ``checkpoints/step=N/`` (a model bundle at every checkpoint),
``bundle/`` (the final bundle: ``acestep.bin.generate_accompaniment --lora-path EXP/bundle``),
``log/``, ``tensorboard/``, ``accompaniment_config.json`` (the resolved config).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from acestep.accompaniment.trainer import (
    BUNDLE_DIR,
    CONFIG_NAME,
    Plan,
    add_run_arguments,
    check_run_arguments,
    cli_overrides,
    describe_plan,
    make_trainer,
    plan_training,
    write_final_bundle,
)
from shirabe.cli import ArgumentParser, InputError, add_bool_argument, get_logger, run_main
from shirabe.train.dist import cleanup_dist, launch
from shirabe.train.process import describe_experiment, setup_rank, setup_rank_logging

logger = get_logger("acestep.bin.train_accompaniment")
MODULE = "acestep.bin.train_accompaniment"


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.train_accompaniment", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="training config JSON/YAML (TrainingConfig; required)")
    p.add_argument("--exp-dir", type=Path, default=None,
                   help="experiment directory (default: None = the config's logger_dir/exp_name)")
    add_bool_argument(p, "--dry-run", False, "check the config and the data, print the plan, train nothing")
    p.add_argument("--num-iters", type=int, default=None,
                   help="override the config's max_steps (default: None = the config's)")
    p.add_argument("--keep-last-k", type=int, default=3, help="checkpoint-N.pt files kept (bundles are all kept)")
    add_run_arguments(p)
    return p


def run(rank: int, world_size: int, args, local_rank=None, use_env=False, *, plan: Plan) -> None:
    device, _ = setup_rank(rank, world_size, args, local_rank, use_env, log_file=args.exp_dir / "log" / "log-train.txt")
    if rank == 0:
        describe_experiment(args.exp_dir, MODULE, plan.argv,
                            files={CONFIG_NAME: json.dumps(plan.config.model_dump(mode="json"), indent=2) + "\n"})
        logger.info("plan:\n%s", describe_plan(plan, args.exp_dir))
    trainer = make_trainer(plan, args, args.exp_dir, device, rank, world_size, keep_last_k=args.keep_last_k,
                           tensorboard=args.tensorboard)
    try:
        trainer.fit()
    finally:
        trainer.tb.close()
        cleanup_dist()
    if rank == 0:
        write_final_bundle(trainer.model, plan.config, args.exp_dir)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    accum = args.accum_grad
    args.accum_grad = 1 if accum is None else accum  # the shared check; the config's value is used below
    check_run_arguments(args)
    args.accum_grad = accum
    if args.keep_last_k < 1:
        raise InputError(f"--keep-last-k must be positive, got {args.keep_last_k}")
    plan = plan_training(args.config, args.checkpoint_dir, cli_overrides(args), argv)
    if args.exp_dir is None:
        args.exp_dir = Path(plan.config.logger_dir) / plan.config.exp_name
    if args.dry_run:
        print(describe_plan(plan, args.exp_dir))
        print("dry run: nothing trained")
        return 0
    if (args.exp_dir / BUNDLE_DIR).is_dir() and (args.exp_dir / f"checkpoint-{plan.config.max_steps}.pt").is_file():
        setup_rank_logging(args.exp_dir, 0, 1, args.exp_dir / "log" / "log-train.txt", verbose=args.verbose)
        logger.info("%s exists after %d steps; nothing to do", args.exp_dir / BUNDLE_DIR, plan.config.max_steps)
        return 0
    return launch(partial(run, plan=plan), args, args.world_size, MODULE)


if __name__ == "__main__":
    run_main(main)
