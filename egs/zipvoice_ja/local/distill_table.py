#!/usr/bin/env python3
"""Compare dev losses of a teacher and its distilled students and write the table to RESULTS.md.

Each input is a JSON written by ``python -m zipvoice.bin.compute_dev_loss --out``; the first
is the reference (the teacher at its usual number of steps). The section says, for every
model, its steps, guidance and dev sampling loss, the loss relative to the reference, and
whether it lies within ``--margin`` (relative) of it.

Example:
  local/distill_table.py --results-md RESULTS.md --key distill:exp/zipvoice_ja \\
      exp/distill/teacher16.json exp/distill/student4.json exp/distill/student8.json
"""

from __future__ import annotations

import json
from pathlib import Path

from shirabe.cli import ArgumentParser, InputError, run_main
from shirabe.eval.results_md import upsert_section


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="distill_table.py", description=__doc__)
    p.add_argument("results", type=Path, nargs="+", help="compute_dev_loss JSONs, the reference first")
    p.add_argument("--results-md", type=Path, default=Path("RESULTS.md"), help="Markdown file to update")
    p.add_argument("--key", default="distill", help="section key in --results-md")
    p.add_argument("--margin", type=float, default=0.10,
                   help="a student passes when its loss is at most (1 + MARGIN) x the reference's")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    rows = []
    for path in args.results:
        if not path.is_file():
            raise InputError(f"{path}: no such result (run zipvoice.bin.compute_dev_loss --output first)")
        rows.append(json.loads(path.read_text(encoding="utf-8")))
    ref = rows[0]["loss"]
    lines = ["| model | steps | guidance | dev sampling loss | vs reference | within margin |",
             "|---|---:|---:|---:|---:|:---:|"]
    for k, r in enumerate(rows):
        ratio = r["loss"] / ref
        ok = "reference" if k == 0 else ("yes" if ratio <= 1.0 + args.margin else "no")
        lines.append(f"| {r['label']} | {r['num_step']} | {r['guidance_scale']:g} | {r['loss']:.5f} | "
                     f"{100 * (ratio - 1):+.1f} % | {ok} |")
    body = (f"## Distillation: {args.key.split(':', 1)[-1]}\n\nDev sampling loss: mean squared error (0.1·log-mel) of the features "
            f"each model generates for a hidden 70-100 % span of every dev utterance (same spans and noise for "
            f"all, seed {rows[0]['seed']}, {rows[0]['utterances']} utterances). Margin: {100 * args.margin:g} % "
            f"above the reference.\n\n" + "\n".join(lines))
    upsert_section(args.results_md, args.key, body)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    run_main(main)
