"""Add tokens to every supervision of a cut manifest (``supervision.custom["tokens"]``).

Training then reads the tokens instead of running G2P in the data loader. The
japanese tokenizer runs pyopenjtalk-plus in --num-jobs processes; cuts whose
text cannot be tokenised are left out, counted and listed in --rejects
(default: next to the output, ``*_token_rejects.tsv``). With --token-file,
tokens missing from that table are counted and reported (and fail the run
with --strict true), so a table that does not cover the corpus is noticed here and
not as silently dropped tokens in training.

Example:
  python -m zipvoice.bin.prepare_tokens --tokenizer japanese --scheme prosody \\
      --input data/fbank/mini_cuts_train.jsonl.gz \\
      --output data/fbank/mini_cuts_train_tokens.jsonl.gz --token-file data/tokens.txt
"""

from __future__ import annotations

import os
from collections import Counter
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
from shirabe.text.schemes import DEFAULT_SCHEME

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    from zipvoice.tokenizer import TOKENIZER_NAMES

    p = ArgumentParser(prog="zipvoice.bin.prepare_tokens", description=__doc__)
    p.add_argument("--input", type=Path, required=True, help="cut manifest to read (required)")
    p.add_argument("--output", type=Path, required=True, help="cut manifest to write (required)")
    p.add_argument("--tokenizer", default="japanese", choices=TOKENIZER_NAMES, help="tokenizer")
    p.add_argument("--scheme", default=DEFAULT_SCHEME, help="japanese token scheme (prosody, hl, phone, kana)")
    p.add_argument("--lang", default="en-us", help="espeak voice for --tokenizer espeak")
    p.add_argument("--token-file", type=Path, default=None,
                   help="token table to check the tokens against (default: no check)")
    add_bool_argument(p, "--strict", False, "fail if any token is missing from --token-file")
    p.add_argument("--num-jobs", type=int, default=4, help="G2P processes (capped at the CPU count)")
    p.add_argument("--rejects", type=Path, default=None, help="where to list cuts left out (default: beside the output)")
    add_verbose_argument(p)
    return p


def tokenize(texts: list[str], args) -> tuple[list[list[str] | None], list[tuple[int, str]], Counter]:
    """Tokens per text (None where it failed), the failures and the unknown-token counts."""
    table = None
    if args.token_file is not None:
        from shirabe.text.tokens import TokenTable, TokenTableError

        try:
            table = TokenTable.read(args.token_file)
        except TokenTableError as e:
            raise InputError(str(e)) from e
    if args.tokenizer == "japanese":
        from shirabe.text.batch import tokenize_texts

        result = tokenize_texts(texts, args.scheme, num_jobs=args.num_jobs, token_table=table, quiet=True)
        return result.tokens, result.failures, result.unknown
    from zipvoice.tokenizer import get_tokenizer

    tok = get_tokenizer(args.tokenizer, None, lang=args.lang)
    tokens, failures, unknown = [], [], Counter()
    for i, text in enumerate(texts):
        try:
            toks = tok.texts_to_tokens([text])[0]
        except Exception as e:  # noqa: BLE001 - any G2P failure rejects the one text
            tokens.append(None)
            failures.append((i, f"{type(e).__name__}: {e}"))
            continue
        if not toks:
            tokens.append(None)
            failures.append((i, "no tokens"))
            continue
        if table is not None:
            unknown.update(t for t in toks if t not in table)
        tokens.append(toks)
    return tokens, failures, unknown


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    from lhotse import CutSet

    from shirabe.data.manifests import read_cuts
    from shirabe.data.rejects import Rejects

    cuts = read_cuts(args.input)
    texts = []
    for cut in cuts:
        if len(cut.supervisions) != 1:
            raise InputError(f"{args.input}: cut {cut.id} has {len(cut.supervisions)} supervisions (need 1)")
        texts.append(cut.supervisions[0].text or "")
    tokens, failures, unknown = tokenize(texts, args)
    for i, toks in enumerate(tokens):  # empty token lists are failures too
        if toks is not None and not toks:
            failures.append((i, "no tokens"))
            tokens[i] = None

    rejects = args.rejects or args.output.with_name(
        args.output.name.replace(".jsonl.gz", "").replace(".jsonl", "") + "_token_rejects.tsv")
    cut_list = list(cuts)
    listed = Rejects(("cut_id", "text", "reason"))
    for i, why in sorted(failures):
        listed.add(cut_list[i].id, texts[i], why)
    listed.write(rejects)

    kept = []
    for cut, toks in zip(cut_list, tokens):
        if toks is None:
            continue
        sup = cut.supervisions[0]
        sup.custom = {**(sup.custom or {}), "tokens": toks}
        kept.append(cut)
    if unknown:
        shown = ", ".join(f"{t!r} x{c}" for t, c in unknown.most_common(10))
        msg = f"{sum(unknown.values())} token(s) of {len(unknown)} type(s) are not in {args.token_file}: {shown}"
        if args.strict:
            raise InputError(msg)
        logger.warning("%s (they are dropped at training time)", msg)
    if not kept:
        raise InputError(f"{args.input}: no text could be tokenised (see {rejects})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(".tmp." + args.output.name)
    CutSet.from_cuts(kept).to_file(tmp)
    os.replace(tmp, args.output)
    inventory = Counter(t for toks in tokens if toks for t in toks)
    logger.info("wrote %s: %d cuts tokenised, %s left out (%s), %d token types",
                args.output, len(kept), listed.summary(), rejects, len(inventory))
    return 0


if __name__ == "__main__":
    run_main(main)
