"""Write a stand-in ACE-Step checkpoint folder: the released layout with tiny random networks.

``ace_step_transformer/``, ``music_dcae_f8c8/``, ``music_vocoder/`` and ``umt5-base/``, loadable
by every ACE-Step binary, so recipes and tests run on a CPU without the released download. The
audio they make is noise (see :mod:`acestep.standins`).
"""

from __future__ import annotations

from pathlib import Path

from acestep.standins import make_standin_checkpoint
from shirabe.cli import ArgumentParser, add_verbose_argument, get_logger, run_main, setup_logging

logger = get_logger("acestep.bin.make_standins")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.make_standins", description=__doc__)
    p.add_argument("--output-dir", type=Path, required=True, help="checkpoint folder to write (required)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    root = make_standin_checkpoint(args.output_dir, args.seed)
    logger.info("wrote stand-in checkpoint %s (%s)", root, ", ".join(sorted(p.name for p in root.iterdir())))
    return 0


if __name__ == "__main__":
    run_main(main)
