#!/usr/bin/env python3
"""How close each Japanese romaniser of the ACE-Step lyric tokenizer comes to the training-time romaji.

The reference is cutlet (default settings) on the original line, lower-cased: the
spelling ACE-Step's training lyrics had. For every romaniser the lines are encoded
as ``[ja]`` lines and compared id by id with the reference ids:

* agreement = 1 − Σ edit distance / Σ reference ids (:func:`acestep.text.lyrics.id_agreement`),
* exact = share of lines whose ids equal the reference ids,
* ms/line = romanising and tokenising time per line (after a warm-up line).

    python bench/acestep_romaji.py                      # shirabe/minicorpus/sentences_ja.txt
    python bench/acestep_romaji.py --sentences my.txt --show-diffs 10

Lines starting with ``#`` or ``[`` and empty lines of the sentence file are skipped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from acestep.text.lyrics import LyricTokenizer, id_agreement  # noqa: E402
from acestep.text.romaji import CutletRomanizer, ReadingRomanizer  # noqa: E402
from shirabe.cli import ArgumentParser  # noqa: E402


def read_sentences(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("#", "["))]


def get_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--sentences", type=Path, default=ROOT / "shirabe" / "minicorpus" / "sentences_ja.txt",
                   help="Japanese sentences, one a line")
    p.add_argument("--show-diffs", type=int, default=0, help="print this many lines where reading differs")
    return p


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    sentences = read_sentences(args.sentences)
    tok = LyricTokenizer.from_file()
    reference = CutletRomanizer()
    ref_ids = [tok.tokenizer.encode("[ja]" + reference(s).replace(" ", "[SPACE]")).ids for s in sentences]
    rows = []
    variants = {"cutlet": CutletRomanizer(), "reading": ReadingRomanizer(),
                "reading, no English loanword spelling": ReadingRomanizer(foreign_spelling=False)}
    shown = {}
    for name, romanizer in variants.items():
        tok.__dict__["romanizer"] = romanizer
        tok.encode_line(sentences[0], "ja")  # warm-up (dictionary loading)
        t0 = time.perf_counter()
        hyp = [tok.encode_line(s, "ja") for s in sentences]
        ms = (time.perf_counter() - t0) * 1000 / len(sentences)
        exact = sum(h == r for h, r in zip(hyp, ref_ids, strict=True)) / len(sentences)
        rows.append((name, id_agreement(list(zip(hyp, ref_ids, strict=True))), exact, ms))
        if name == "reading":
            shown = {s: romanizer(s) for s, h, r in zip(sentences, hyp, ref_ids, strict=True) if h != r}
    print(f"{len(sentences)} lines of {args.sentences.name}, {sum(map(len, ref_ids))} reference ids\n")
    print("| romanizer | id agreement | exact lines | ms/line |")
    print("|---|---|---|---|")
    for name, agree, exact, ms in rows:
        print(f"| {name} | {agree:.3f} | {exact:.3f} | {ms:.1f} |")
    for s, roma in list(shown.items())[: args.show_diffs]:
        print(f"\n{s}\n  reading: {roma}\n  cutlet:  {reference(s)}")


if __name__ == "__main__":
    main()
