"""Write a ZipVoice token table (``token<TAB>id`` per line, ``_`` is the pad).

From scratch, the table holds every token the chosen scheme can emit (not only
those seen in data) with ``_`` as id 0. With --extend FILE, the table in FILE
(e.g. the released 360-token Emilia table or ZipVoice-ja's
tokens_japanese_extended.txt) is kept as it is, every id unchanged, and the
scheme's tokens it lacks are appended after its largest id, so a released
checkpoint's embedding rows stay valid. New rows can be initialised from the
espeak IPA tokens listed in shirabe/text/data/openjtalk_ipa.tsv.

Examples:
  python -m zipvoice.bin.prepare_token_file --tokenizer japanese --scheme prosody --output data/tokens.txt
  python -m zipvoice.bin.prepare_token_file --tokenizer japanese --scheme hl \\
      --extend download/zipvoice/tokens.txt --output data/tokens_emilia_ja.txt
"""

from __future__ import annotations

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
from shirabe.text import SCHEMES, get_scheme
from shirabe.text.ipa import ipa_tokens
from shirabe.text.schemes import DEFAULT_SCHEME
from shirabe.text.tokens import PAD, TokenTable, TokenTableError, extend_table, scheme_table

logger = get_logger(__name__)

TOKENIZERS = ("japanese",)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="zipvoice.bin.prepare_token_file", description=__doc__)
    p.add_argument("--tokenizer", default="japanese", help=f"tokenizer: {', '.join(TOKENIZERS)}")
    p.add_argument("--scheme", default=DEFAULT_SCHEME, help=f"japanese token scheme: {', '.join(SCHEMES)}")
    add_bool_argument(p, "--lowercase-devoiced", False,
                      "the tokenizer writes devoiced vowels in lower case, so I/U/... are left out "
                      "(false: upper-case devoiced vowels are included)")
    p.add_argument("--extend", type=Path, default=None,
                   help="existing token file to keep (all ids unchanged) and append to (default: none, "
                        "build from scratch)")
    p.add_argument("--output", type=Path, required=True, help="token file to write (required)")
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.tokenizer not in TOKENIZERS:
        raise InputError(f"unknown tokenizer {args.tokenizer!r} (choose from {', '.join(TOKENIZERS)})")
    if args.scheme not in SCHEMES:
        raise InputError(f"unknown scheme {args.scheme!r} (choose from {', '.join(SCHEMES)})")
    scheme = get_scheme(args.scheme, lowercase_devoiced=args.lowercase_devoiced)
    if args.extend is None:
        table = scheme_table(scheme)
        logger.info("%s scheme: %d tokens, pad '%s' = %d", args.scheme, len(table), PAD, table.pad_id)
    else:
        if not args.extend.is_file():
            raise InputError(f"{args.extend}: no such token file")
        try:
            base = TokenTable.read(args.extend)
        except TokenTableError as e:
            raise InputError(str(e)) from e
        table = extend_table(base, scheme)
        added = [t for t in table.token2id if t not in base]
        logger.info("%s: %d tokens kept, %d added (ids %d..%d): %s", args.extend, len(base), len(added),
                    base.next_id, table.next_id - 1, " ".join(added) if added else "none")
        if PAD not in base:
            logger.warning("%s has no pad token '%s'; it was appended with id %d", args.extend, PAD, table.pad_id)
        no_init = [t for t in added if not ipa_tokens(t)]
        if no_init:
            logger.info("no IPA initialisation for: %s", " ".join(no_init))
    try:
        table.write(args.output)
    except OSError as e:
        raise InputError(f"{args.output}: cannot write ({e})") from e
    logger.info("wrote %s (%d tokens)", args.output, len(table))
    return 0


if __name__ == "__main__":
    run_main(main)
