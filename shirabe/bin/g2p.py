"""Japanese text → tokens, one line of space-separated tokens per input line.

Schemes (see shirabe.text.schemes):
  prosody  phonemes + Kurihara-style marks: ^ $ ? _ # [ ]   (default)
  hl       phonemes + [H]/[L] after each mora, | between accent phrases, _ pause, [Q] question
  phone    phonemes and _ pauses only
  kana     one katakana token per mora and _ pauses

Text comes from the TEXT arguments (one line each), from --input FILE, or,
given neither, from standard input (one text per line; --input - reads it too).
Ruby {漢字|かんじ} forces a reading. Empty input, a line
with nothing to pronounce or an unknown scheme is a one-line error (exit 2);
nothing is printed then.

Examples:
  python -m shirabe.bin.g2p 箸が折れた。
    ^ h a ] sh i g a # o ] r e t a $
  python -m shirabe.bin.g2p --scheme kana 東京タワー
  python -m shirabe.bin.g2p --scheme hl --user-dict words.csv --input lines.txt
  echo 東京タワー | python -m shirabe.bin.g2p --scheme kana
"""

from __future__ import annotations

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
from shirabe.text import SCHEMES, TextError, TokenTable, UnknownTokenError
from shirabe.text.batch import tokenize_texts
from shirabe.text.frontend import JapaneseFrontend
from shirabe.text.schemes import DEFAULT_SCHEME
from shirabe.text.tokens import TokenTableError


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="shirabe.bin.g2p", description=__doc__)
    p.add_argument("text", nargs="*", metavar="TEXT",
                   help="input lines (default: the lines of --input, else of standard input)")
    p.add_argument("--scheme", default=DEFAULT_SCHEME, help=f"token scheme: {', '.join(SCHEMES)}")
    p.add_argument("--input", type=Path, default=None,
                   help="read input lines from this UTF-8 file ('-' for standard input) instead of TEXT "
                        "(default: standard input when no TEXT is given)")
    p.add_argument("--user-dict", type=Path, default=None,
                   help="MeCab CSV user dictionary in pyopenjtalk-plus's format, compiled once and cached "
                        "(default: none)")
    add_bool_argument(p, "--lowercase-devoiced", False,
                      "write devoiced vowels I/U as i/u (false: keep OpenJTalk's upper case)")
    p.add_argument("--token-file", type=Path, default=None,
                   help="check every token against this tokens.txt; a token missing from it is an error "
                        "(default: no check)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="cache for compiled user dictionaries (default: $SHIRABE_CACHE_DIR, "
                        "$XDG_CACHE_HOME/shirabe or ~/.cache/shirabe)")
    p.add_argument("--num-jobs", type=int, default=1, help="worker processes for long inputs")
    add_verbose_argument(p)
    return p


def _read_lines(args) -> list[str]:
    if args.input is not None and args.text:
        raise InputError("give TEXT arguments or --input, not both")
    if args.text:
        return list(args.text)
    src = "-" if args.input is None else str(args.input)
    try:
        if src == "-":
            if sys.stdin is None:
                raise InputError("empty input: no TEXT, no --input and no standard input")
            if sys.stdin.isatty():
                print("reading lines from standard input (end with Ctrl-D)", file=sys.stderr)
            data = sys.stdin.read()
        else:
            data = args.input.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{'standard input' if src == '-' else src}: cannot read ({e})") from e
    return data.splitlines()


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.scheme not in SCHEMES:
        raise InputError(f"unknown scheme {args.scheme!r} (choose from {', '.join(SCHEMES)})")
    if args.num_jobs < 1:
        raise InputError(f"--num-jobs must be at least 1, got {args.num_jobs}")
    lines = _read_lines(args)
    if not lines or all(not ln.strip() for ln in lines):
        raise InputError("empty input: nothing to convert")
    where = "text" if args.text else "line"
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise InputError(f"{where} {i} is empty")
    table = None
    if args.token_file is not None:
        try:
            table = TokenTable.read(args.token_file)
        except TokenTableError as e:
            raise InputError(str(e)) from e
    try:
        if args.num_jobs > 1:
            result = tokenize_texts(lines, args.scheme, num_jobs=args.num_jobs, user_dict=args.user_dict,
                                    lowercase_devoiced=args.lowercase_devoiced, cache_dir=args.cache_dir,
                                    quiet=True)
            if result.failures:
                i, why = result.failures[0]
                raise InputError(f"{where} {i + 1}: {why}: {lines[i]!r}")
            outputs = result.tokens
        else:
            g2p = JapaneseFrontend(args.scheme, user_dict=args.user_dict,
                                   lowercase_devoiced=args.lowercase_devoiced, cache_dir=args.cache_dir, quiet=True)
            outputs = []
            for i, line in enumerate(lines, 1):
                try:
                    outputs.append(g2p(line))
                except TextError as e:
                    raise InputError(f"{where} {i}: {e}: {line!r}") from e
    except TextError as e:  # user dictionary problems
        raise InputError(str(e)) from e
    if table is not None:
        for i, tokens in enumerate(outputs, 1):
            try:
                table.ids(tokens)
            except UnknownTokenError as e:
                raise InputError(f"{where} {i}: {e} ({args.token_file})") from e
    sys.stdout.write("".join(" ".join(tokens) + "\n" for tokens in outputs))
    return 0


if __name__ == "__main__":
    run_main(main)
