"""Objective metrics of generated accompaniments, per system, into a RESULTS.md table.

For each ``--systems NAME=DIR`` the generated files are paired with the input vocals (and the true
instrumentals of ``--references``, for the mel distance) by sample key, and every metric of
:mod:`acestep.accompaniment.metrics` is computed: beat alignment of vocal onsets with the
accompaniment's beats (higher is better), key agreement (higher), energy correlation between the
vocal and the accompaniment, log-mel distance to the true instrumental (dB, lower), vocal leakage
(dB, lower). The per-system means ± standard deviations are written as the section ``--section`` of
``--results`` (replaced when run again) and all values as JSON beside it; the true instrumentals
themselves are scored as the row ``reference`` (the ceiling the metrics allow).
"""

from __future__ import annotations

import json
from pathlib import Path

from acestep.accompaniment.metrics import METRICS, evaluate_folder
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.eval.results_md import upsert_section

logger = get_logger("acestep.bin.evaluate_accompaniment")
LOWER_IS_BETTER = {"mel_distance_db", "vocal_leakage_db"}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.evaluate_accompaniment", description=__doc__)
    p.add_argument("--systems", nargs="+", required=True, metavar="NAME=DIR",
                   help="generated accompaniments per system (required)")
    p.add_argument("--vocals", type=Path, required=True, help="folder of the input vocals (required)")
    p.add_argument("--references", type=Path, help="folder of the true instrumentals (default: none)")
    p.add_argument("--system-suffix", default="_accompaniment",
                   help="suffix of the generated files' names after the sample key")
    p.add_argument("--results", type=Path, required=True, help="RESULTS.md to update (required)")
    p.add_argument("--section", default="accompaniment metrics", help="section key in the results file")
    p.add_argument("--note", default="", help="a line written under the table (e.g. what the models are)")
    add_bool_argument(p, "--progress", True, "show progress bars")
    add_verbose_argument(p)
    return p


def parse_systems(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise InputError(f"--systems: expected NAME=DIR, got {item!r}")
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: system folder of {name!r} not found")
        out.append((name, Path(folder)))
    return out


def table(results: dict[str, dict]) -> str:
    names = [m for m in METRICS if any(m in r["summary"] for r in results.values())]
    arrows = {m: ("↓" if m in LOWER_IS_BETTER else "↑") for m in names}
    lines = ["| system | n | " + " | ".join(f"{m} {arrows[m]}" for m in names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for system, r in results.items():
        cells = []
        for m in names:
            s = r["summary"].get(m)
            cells.append("—" if s is None else f"{s['mean']:.3f} ± {s['std']:.3f}")
        lines.append(f"| {system} | {len(r['samples'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    systems = parse_systems(args.systems)
    results = {}
    for name, folder in systems:
        results[name] = evaluate_folder(folder, args.vocals, args.references, system_suffix=args.system_suffix,
                                        progress=args.progress)
        if not results[name]["samples"]:
            raise InputError(f"{folder}: no generated file of {name!r} matches a vocal in {args.vocals}")
    if args.references is not None:
        results["reference"] = evaluate_folder(args.references, args.vocals, args.references,
                                               progress=args.progress)
    body = f"### {args.section}\n\n{table(results)}\n"
    if args.note:
        body += f"\n{args.note}\n"
    upsert_section(args.results, args.section, body)
    out = args.results.with_name(args.results.stem + "_" + args.section.replace(" ", "_") + ".json")
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("wrote the section %r of %s and %s", args.section, args.results, out)
    for line in table(results).splitlines():
        logger.info("%s", line)
    return 0


if __name__ == "__main__":
    run_main(main)
