"""Turn a corpus TSV into lhotse manifests for ZipVoice training.

TSV lines: ``{utt_id}\\t{text}\\t{wav_path}`` or
``{utt_id}\\t{text}\\t{wav_path}\\t{start}\\t{end}`` (seconds, for segments).

Writes to --output-dir:
  {dataset}_recordings_{subset}.jsonl.gz, {dataset}_supervisions_{subset}.jsonl.gz,
  {dataset}_cuts_{subset}.jsonl.gz   (one cut per utterance, at --sampling-rate)
  {dataset}_rejects_{subset}.tsv     (skipped lines: source, line, utt_id, reason)

Bad lines (wrong field count, empty text, duplicate id, unreadable, too short or
silent audio) are skipped, counted and listed; the run fails only if nothing is left.

Example:
  python -m zipvoice.bin.prepare_dataset --input data/mini/speech/train.tsv \\
      --dataset mini --subset train --output-dir data/manifests
"""

from __future__ import annotations

import os
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.data.manifests import build_manifests, summarize_rejects
from shirabe.data.rejects import Rejects
from shirabe.data.tsv import parse_tsv

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="zipvoice.bin.prepare_dataset", description=__doc__)
    p.add_argument("--input", dest="tsv_path", type=Path, required=True, help="corpus TSV (required)")
    p.add_argument("--dataset", dest="prefix", default="custom", help="dataset name: the prefix of the manifest names")
    p.add_argument("--subset", default="train", help="manifest subset name")
    p.add_argument("--output-dir", type=Path, default=Path("data/manifests"), help="where manifests go")
    p.add_argument("--sampling-rate", type=int, default=24000, help="cuts are resampled to this rate")
    p.add_argument("--num-jobs", type=int, default=20, help="parallel audio checks (capped at the CPU count)")
    p.add_argument("--min-duration", type=float, default=0.1, help="shorter utterances are rejected (seconds)")
    p.add_argument("--language", default=None,
                   help="language tag stored in supervisions (e.g. ja) (default: none)")
    add_bool_argument(p, "--no-progress", False, "hide the progress bar")
    add_verbose_argument(p)
    return p


def _write(manifest, path: Path) -> None:
    tmp = path.with_name(".tmp." + path.name)
    manifest.to_file(tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.sampling_rate <= 0:
        raise InputError(f"--sampling-rate must be positive, got {args.sampling_rate}")
    rows, rejects = parse_tsv(args.tsv_path)
    logger.info("%s: %d lines read, %d malformed", args.tsv_path, len(rows) + len(rejects), len(rejects))
    recordings, supervisions, cuts, bad_audio = build_manifests(
        rows,
        source=str(args.tsv_path),
        sampling_rate=args.sampling_rate,
        num_jobs=args.num_jobs,
        min_duration=args.min_duration,
        language=args.language,
        progress=not args.no_progress,
    )
    rejects += bad_audio
    out, stem = args.output_dir, f"{args.prefix}_{{}}_{args.subset}"
    out.mkdir(parents=True, exist_ok=True)
    rejects_file = out / (stem.format("rejects") + ".tsv")
    listed = Rejects(("source", "line", "utt_id", "reason"))
    for r in sorted(rejects, key=lambda r: r.line_no):
        listed.add(r.source, r.line_no, r.utt_id, r.reason)
    listed.write(rejects_file)
    if len(supervisions) == 0:
        raise InputError(f"{args.tsv_path}: no usable utterances ({summarize_rejects(rejects)} rejected; see {rejects_file})")
    for kind, manifest in (("recordings", recordings), ("supervisions", supervisions), ("cuts", cuts)):
        _write(manifest, out / (stem.format(kind) + ".jsonl.gz"))
    hours = sum(s.duration for s in supervisions) / 3600
    logger.info(
        "wrote %s: %d utterances, %.2f h; rejected %s -> %s",
        out / (stem.format("cuts") + ".jsonl.gz"), len(supervisions), hours, summarize_rejects(rejects), rejects_file,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
