"""Validate an accompaniment config file and print it resolved (defaults and LoRA preset filled in).

A training file (``TrainingConfig``: ``lora``, ``accompaniment`` and the optimisation fields) or
an Optuna search file (``OptunaConfig``); ``--kind auto`` tells them apart by the search file's keys
(``search_space``, ``n_trials``, ``pruner_type``). Layer indices (``injection_layers`` in controlnet
mode, ``ssl_depths``) are checked against the transformer's depth: ``num_layers`` of
``--checkpoint-dir``'s ``ace_step_transformer/config.json`` when given, else ``--num-layers``.

An invalid file stops with one line, ``<file>: <field>: <message> (allowed: ...)``, and exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    from acestep.config import KINDS, RELEASED_NUM_LAYERS

    p = ArgumentParser(prog="python -m acestep.bin.validate_config", description=__doc__)
    p.add_argument("config", type=Path, help="the config file (.json, or .yaml/.yml)")
    p.add_argument("--kind", choices=["auto", *KINDS], default="auto", help="what the file holds")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="checkpoint folder whose ace_step_transformer/config.json gives the depth "
                        "(default: none = --num-layers)")
    p.add_argument("--num-layers", type=int, default=RELEASED_NUM_LAYERS,
                   help="transformer depth when no --checkpoint-dir is given (the released model's)")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from acestep.config import load_config

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    num_layers = args.num_layers
    if args.checkpoint_dir is not None:
        from acestep.models.config import load_config as load_model_config

        num_layers = load_model_config(args.checkpoint_dir / "ace_step_transformer" / "config.json").num_layers
    if num_layers < 1:
        raise InputError(f"--num-layers must be >= 1, got {num_layers}")
    config = load_config(args.config, args.kind, num_layers=num_layers)
    logger.info("%s: a valid %s (checked against %d transformer layers)", args.config,
                type(config).__name__, num_layers)
    print(json.dumps(config.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    run_main(main)
