#!/usr/bin/env python3
"""Phone error rate (PER) of recordings against their texts, by the phone recognizer.

    python -m shirabe.bin.score_phones --model-dir exp/phone_recognizer --wav a.wav --text こんにちは
    python -m shirabe.bin.score_phones --model-dir exp/phone_recognizer --tsv test.tsv --format json

The recognizer (trained by shirabe.bin.train_phone_recognizer) decodes each
recording greedily; the reference is the phone sequence the Japanese frontend
gives for the text (pauses left out). PER = (substitutions + deletions +
insertions) / reference phones, per item and, summed, overall. Audio at any
sample rate is resampled to 24 kHz.

``--tsv`` takes ``utt_id<TAB>text<TAB>wav`` lines (the mini corpus's layout; a
relative wav path is relative to the list). Output (stdout or ``--output``):
``--format tsv`` writes one line per item (``id per errors ref_phones
substitutions deletions insertions ref hyp``) and a line with id ``overall``;
``--format json`` writes ``{"overall": {...}, "items": [...]}``. With
``--nonspeech-baseline true`` the totals for white noise and a sine-click train
in place of every recording follow (TSV lines ``white_noise`` and ``clicks``,
JSON keys of the same names).
A reference phone that the model's phones.txt lacks is a one-line error naming
the item and the phones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from shirabe.asr.data import read_utterance_list
from shirabe.asr.recognizer import load_recognizer
from shirabe.asr.scoring import PERDetails, nonspeech_baselines, score
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

MODULE = "shirabe.bin.score_phones"
TSV_FIELDS = ("id", "per", "errors", "ref_phones", "substitutions", "deletions", "insertions", "ref", "hyp")
logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--model-dir", type=Path, required=True,
                   help="directory with model.pt, model.json and phones.txt (required)")
    p.add_argument("--wav", type=Path, default=None, help="one recording (with --text) (default: none)")
    p.add_argument("--text", default=None, help="the text --wav should say (default: none)")
    p.add_argument("--tsv", type=Path, default=None,
                   help="utt_id<TAB>text<TAB>wav lines to score instead of --wav/--text (default: none)")
    p.add_argument("--format", choices=("tsv", "json"), default="tsv", help="output format")
    p.add_argument("--output", type=Path, default=None, help="write the result here (default: standard output)")
    p.add_argument("--batch-size", type=int, default=8, help="recordings decoded together")
    add_bool_argument(p, "--nonspeech-baseline", False,
                      "also score white noise and a 1 kHz sine-click train of each recording's length and level "
                      "against the same texts (rows/keys white_noise and clicks); speech-free audio should score "
                      "near 100 %%")
    add_device_argument(p, "the recognizer")
    add_num_threads_argument(p, default=1)
    add_verbose_argument(p)
    return p


def format_tsv(details: PERDetails, baselines: dict[str, PERDetails]) -> str:
    rows = ["\t".join(TSV_FIELDS)]
    summaries = [{"id": "overall", **details.summary()}]
    summaries += [{"id": name, **b.summary()} for name, b in baselines.items()]
    for item in [*(i.to_dict() for i in details.items), *({**s, "ref": "", "hyp": ""} for s in summaries)]:
        rows.append("\t".join(f"{item[k]:.4f}" if k == "per" else str(item[k]) for k in TSV_FIELDS))
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.tsv is not None and (args.wav is not None or args.text is not None):
        raise InputError("give either --tsv or --wav with --text, not both")
    if args.tsv is None and (args.wav is None or args.text is None):
        raise InputError("give --tsv, or both --wav and --text")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.num_threads < 1:
        raise InputError(f"--num-threads must be >= 1, got {args.num_threads}")
    torch.set_num_threads(args.num_threads)
    recognizer = load_recognizer(args.model_dir, resolve_device(args.device))
    if args.tsv is not None:
        utts = read_utterance_list(args.tsv)
        if not utts:
            raise InputError(f"{args.tsv}: no utterances to score")
        wavs, texts = [str(u.wav) for u in utts], [u.text for u in utts]
        ids, where = [u.utt_id for u in utts], [u.where for u in utts]
    else:
        wavs, texts, ids, where = [str(args.wav)], [args.text], [args.wav.stem], ["--text"]
    for w in wavs:
        if not Path(w).is_file():
            raise InputError(f"{w}: no such audio file")
    details = score(recognizer, wavs, texts, ids=ids, where=where, batch_size=args.batch_size, quiet=True)
    baselines = {}
    if args.nonspeech_baseline:
        baselines = nonspeech_baselines(recognizer, wavs, texts, ids=ids, batch_size=args.batch_size, quiet=True)
    if args.format == "json":
        result = details.to_dict()
        result.update({name: b.summary() for name, b in baselines.items()})
        text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    else:
        text = format_tsv(details, baselines)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    c = details.counts
    logger.info("PER %.2f %% (%d errors in %d reference phones, %d items)", 100 * c.per, c.errors, c.ref_len,
                len(details.items))
    for name, b in baselines.items():
        logger.info("PER of %s instead of the recordings: %.2f %%", name.replace("_", " "), 100 * b.per)
    return 0


if __name__ == "__main__":
    run_main(main)
