#!/usr/bin/env python3
"""Pair prompts with texts of held-out speakers for zero-shot synthesis.

Reads a corpus TSV (``{utt_id}\\t{text}\\t{wav}``) of test speakers and writes
ZipVoice's test list (``{id}\\t{prompt_text}\\t{prompt_wav}\\t{text}``): each
utterance is the prompt for the text of the next utterance of the same speaker,
whose recording is the ground truth (``{id}\\t{wav}`` in --ground-truth). A
speaker with a single utterance is prompted with it and given the text of the
next speaker's utterance (no ground truth then). The speaker is the utterance
id up to its last ``_`` (``--speaker-sep``), as in the mini corpus.

Example:
  local/make_zero_shot_list.py --tsv data/mini/test.tsv --output exp/infer/test_list.tsv
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.data.tsv import parse_tsv


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="make_zero_shot_list.py", description=__doc__)
    p.add_argument("--tsv", type=Path, required=True, help="corpus TSV of the test speakers (required)")
    p.add_argument("--output", type=Path, required=True, help="test list to write (required)")
    p.add_argument("--ground-truth", type=Path, default=None, help="also write {id}\\t{ground-truth wav}")
    p.add_argument("--speaker-sep", default="_", help="the speaker is the utterance id before the last SEP")
    p.add_argument("--max-per-speaker", type=int, default=0, help="at most this many items per speaker (0: all)")
    return p


def make_pairs(rows, sep: str = "_", max_per_speaker: int = 0) -> list[tuple[str, str, str, str, str | None]]:
    """(id, prompt_text, prompt_wav, text, ground_truth_wav or None) per test item."""
    speakers: OrderedDict[str, list] = OrderedDict()
    for r in rows:
        speakers.setdefault(r.utt_id.rsplit(sep, 1)[0], []).append(r)
    names = list(speakers)
    pairs = []
    for k, name in enumerate(names):
        utts = speakers[name]
        if len(utts) > 1:
            for i, prompt in enumerate(utts[:max_per_speaker] if max_per_speaker > 0 else utts):
                target = utts[(i + 1) % len(utts)]
                pairs.append((f"{target.utt_id}_from_{prompt.utt_id}", prompt.text, prompt.wav, target.text, target.wav))
        else:
            prompt = utts[0]
            target = speakers[names[(k + 1) % len(names)]][0]
            if target is prompt:
                raise InputError(f"{prompt.utt_id}: a zero-shot list needs two utterances (one speaker, one utterance)")
            pairs.append((f"{prompt.utt_id}_says_{target.utt_id}", prompt.text, prompt.wav, target.text, None))
    return pairs


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    rows, rejects = parse_tsv(args.tsv)
    if rejects:
        r = rejects[0]
        raise InputError(f"{args.tsv}:{r.line_no}: {r.reason}")
    if not rows:
        raise InputError(f"{args.tsv}: no utterances")
    pairs = make_pairs(rows, args.speaker_sep, args.max_per_speaker)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        for utt, ptext, pwav, text, _ in pairs:
            f.write(f"{utt}\t{ptext}\t{pwav}\t{text}\n")
    if args.ground_truth:
        with open(args.ground_truth, "w", encoding="utf-8") as f:
            for utt, *_, gt in pairs:
                if gt is not None:
                    f.write(f"{utt}\t{gt}\n")
    print(f"{args.output}: {len(pairs)} prompt/text pairs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
