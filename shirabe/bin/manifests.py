"""Split a lhotse manifest into parts for ``$cmd JOB=1:N`` jobs, or join parts back.

  python -m shirabe.bin.manifests split --num-parts 8 data/manifests/x_cuts_train.jsonl.gz data/manifests/split8
      -> data/manifests/split8/x_cuts_train.{1..8}.jsonl.gz (contiguous, sizes differ by at most one)
  python -m shirabe.bin.manifests combine data/fbank/x_cuts_train.jsonl.gz data/fbank/split8/x_cuts_train.*.jsonl.gz
      -> the parts concatenated in the order given (numeric JOB order when given a glob)

Both stream (constant memory) and write atomically; a split whose parts are newer
than its input is not redone.
"""

from __future__ import annotations

import re
from pathlib import Path

from shirabe.cli import ArgumentParser, add_verbose_argument, get_logger, run_main, setup_logging
from shirabe.data.splits import combine_manifests, split_manifest

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="shirabe.bin.manifests", description=__doc__)
    add_verbose_argument(p)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split", help="split a manifest into N parts")
    s.add_argument("--num-parts", type=int, required=True, help="number of parts (required)")
    s.add_argument("manifest", type=Path, help="input manifest (.jsonl.gz)")
    s.add_argument("out_dir", type=Path, help="directory for the parts")
    c = sub.add_parser("combine", help="concatenate parts into one manifest")
    c.add_argument("output", type=Path, help="output manifest (.jsonl.gz)")
    c.add_argument("parts", type=Path, nargs="+", help="part manifests")
    return p


def _job_order(path: Path):
    m = re.search(r"\.(\d+)\.jsonl(\.gz)?$", path.name)
    return (0, int(m.group(1)), str(path)) if m else (1, 0, str(path))


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "split":
        parts = split_manifest(args.manifest, args.out_dir, args.num_parts)
        logger.info("%s -> %d parts in %s", args.manifest, len(parts), args.out_dir)
    else:
        parts = sorted(args.parts, key=_job_order)
        n = combine_manifests(parts, args.output)
        logger.info("wrote %s: %d items from %d parts", args.output, n, len(parts))
    return 0


if __name__ == "__main__":
    run_main(main)
