"""Statistics of exported blind-comparison sheets: per-system means and Wilcoxon signed-rank tests.

Reads the JSON sheets that the comparison page (``python -m acestep.bin.compare``) exports, one per
rater, un-blinds them through their label mapping and prints, per axis (the five rating axes and
``overall``, their mean): each system's mean ± standard deviation and count, and for each pair of
systems the two-sided Wilcoxon signed-rank test over paired ratings (the same sample rated for
both systems on the same sheet). ``--output`` also writes the numbers as JSON.

A malformed sheet stops with one line naming the file and the field, exit status 2.
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
    p = ArgumentParser(prog="python -m acestep.bin.rating_stats", description=__doc__)
    p.add_argument("sheets", type=Path, nargs="+", help="exported evaluation sheets (JSON)")
    p.add_argument("--output", type=Path, default=None, help="also write the statistics here as JSON (default: none)")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from acestep.accompaniment.ratings import format_statistics, rating_statistics, read_sheets

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    ratings = read_sheets(args.sheets)
    if not ratings:
        raise InputError(f"{args.sheets[0]}: the sheets hold no complete rating")
    stats = rating_statistics(ratings)
    stats["sheets"] = [str(p) for p in args.sheets]
    print(format_statistics(stats))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(args.output)
        logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    run_main(main)
