"""Print the SongBloom symbols of Japanese lyrics (and their ids with ``--ids true``).

Lyrics come as arguments or, one song per line of ``--input`` (plain text,
``\\n`` inside a line for line breaks, or a JSONL with a ``lyrics`` field as
SongBloom's inference input has). Symbols the vocabulary lacks are an error
naming the line, unless ``--allow-unknown true``, which only counts them.

    python -m songbloom.bin.g2p "[verse] かえるのうたが、きこえてくるよ。"
    [verse] k a e r u n o o t a g a , k I k o e t e k u r u y o .
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    run_main,
    setup_logging,
)
from songbloom.g2p import LyricError, load_vocab, lyrics_to_phonemes, tokenize


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.g2p", description=__doc__)
    p.add_argument("lyrics", nargs="*", help="lyrics (SongBloom format, Japanese text)")
    p.add_argument("--input", type=Path, default=None, help="text or JSONL file, one song per line (default: none)")
    p.add_argument("--vocab", type=Path, default=None, help="vocab_g2p.yaml (default: the released one, shipped)")
    p.add_argument("--user-dict", type=Path, default=None, help="MeCab CSV user dictionary (default: none)")
    add_bool_argument(p, "--ids", False, "print vocabulary ids instead of symbols")
    add_bool_argument(p, "--allow-unknown", False, "count symbols the vocabulary lacks instead of failing")
    add_verbose_argument(p)
    return p


def songs(args) -> list[tuple[str, str]]:
    items = [(f"argument {i}", text) for i, text in enumerate(args.lyrics, 1)]
    if args.input is not None:
        if not args.input.is_file():
            raise InputError(f"{args.input}: no such file")
        for lineno, line in enumerate(args.input.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    line = json.loads(line)["lyrics"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise InputError(f"{args.input}:{lineno}: a JSON line needs a 'lyrics' string") from None
            items.append((f"{args.input}:{lineno}", line.replace("\\n", "\n")))
    if not items:
        raise InputError("no lyrics: give them as arguments or with --input")
    return items


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    vocab = load_vocab(args.vocab)
    for where, text in songs(args):
        try:
            out = lyrics_to_phonemes(text, allow_unknown=args.allow_unknown, vocab=vocab, user_dict=args.user_dict,
                                     where=where)
        except LyricError as e:
            raise InputError(str(e)) from None
        if args.ids:
            print(" ".join(str(i) for i in tokenize(out.text, vocab).ids))
        else:
            print(out.text)
        if out.unknown:
            print(f"{where}: {sum(out.unknown.values())} symbols not in the vocabulary: "
                  + ", ".join(f"{s!r} x{n}" for s, n in out.unknown.most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
