"""Optuna search over vocal → accompaniment training configs.

Starts or resumes the study ``--study-name`` in ``--storage`` (e.g. ``sqlite:///exp/optuna/study.db``)
and runs ``--n-trials`` trials in this process (default: the search file's ``n_trials``; a rerun adds
that many more). Several processes with the same storage and study name share one study (e.g.
parallel ``$cmd JOB=1:4`` jobs). Each trial draws its parameters from the search file's space
(``acestep.config.OptunaConfig``), trains the base config (``--config``) with them for its
``max_steps`` in ``OUT/trial-NNNN/`` and reports the validation loss every ``--valid-interval``
updates to the pruner (``pruner_type``), which may stop it early. Validation uses the held-out pairs
of ``--valid-dataset`` or, without it, the training pairs in a fixed order with no dropout. A trial
that fails is recorded as FAIL with its error (one line in the log) and the search goes on.

At the end: ``OUT/best_config.json`` (the base config with the best complete trial's values: a
training config for ``acestep.bin.train_accompaniment``) and ``OUT/trials.tsv`` (every trial of the
study: state, value, parameters, error).
"""

from __future__ import annotations

from pathlib import Path

import torch

from acestep.accompaniment.trainer import (
    add_run_arguments,
    check_run_arguments,
    transformer_config,
)
from acestep.config import load_config
from shirabe.cli import (
    ArgumentParser,
    InputError,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger("acestep.bin.optuna_search")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.optuna_search", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="base training config (TrainingConfig; required)")
    p.add_argument("--optuna-config", type=Path, required=True, help="search file (OptunaConfig; required)")
    p.add_argument("--storage", required=True, help="optuna storage URL, e.g. sqlite:///exp/optuna/study.db (required)")
    p.add_argument("--study-name", required=True, help="study name; an existing study is resumed (required)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="trial folders, best_config.json, trials.tsv (default: None = the config's "
                        "logger_dir/optuna_<study-name>)")
    p.add_argument("--n-trials", type=int, default=None,
                   help="trials this process runs (default: None = the search file's n_trials)")
    p.add_argument("--valid-interval", type=int, default=10, help="validate and report to the pruner every N updates")
    p.add_argument("--valid-dataset", type=Path, default=None,
                   help="held-out pairs (a folder with vocal/ and target/ latent caches); default: None = the "
                        "training pairs in a fixed order")
    p.add_argument("--sampler-seed", type=int, default=None,
                   help="seed of optuna's TPE sampler (default: None = random; give each parallel job its own)")
    add_run_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from acestep.accompaniment.search import SearchSetup, run_study, write_results

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    accum = args.accum_grad
    args.accum_grad = 1 if accum is None else accum
    check_run_arguments(args)
    args.accum_grad = accum
    if args.valid_interval < 1:
        raise InputError(f"--valid-interval must be positive, got {args.valid_interval}")
    if args.n_trials is not None and args.n_trials < 1:
        raise InputError(f"--n-trials must be positive, got {args.n_trials}")
    if args.world_size != 1:
        raise InputError("--world-size: the search trains in this process; run parallel jobs on one study instead")
    layers = transformer_config(args.checkpoint_dir).num_layers
    base = load_config(args.config, "training", num_layers=layers)
    overrides = {}
    if accum is not None:
        overrides["accumulate_grad_batches"] = accum
    if args.dataset_path is not None:
        overrides["dataset_path"] = str(args.dataset_path)
    if overrides:
        from acestep.config import apply_overrides

        base = apply_overrides(base, overrides, num_layers=layers, source="command line")
    search = load_config(args.optuna_config, "optuna", num_layers=layers)
    output_dir = args.output_dir or Path(base.logger_dir) / f"optuna_{args.study_name}"
    output_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    torch.set_num_threads(max(1, args.num_threads))
    setup = SearchSetup(base, args.config, search, args, output_dir, device, args.valid_dataset, args.valid_interval)
    study = run_study(setup, args.storage, args.study_name, args.n_trials or search.n_trials, search.timeout,
                      args.sampler_seed)
    best = write_results(study, base, output_dir, layers, str(args.config))
    if best is None:
        logger.error("no trial of study %s has completed; %s lists them", args.study_name, output_dir / "trials.tsv")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
