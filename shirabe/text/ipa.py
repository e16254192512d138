"""OpenJTalk phonemes and prosody marks → the closest espeak IPA tokens.

The table (``data/openjtalk_ipa.tsv``: a header line, then
``token<TAB>JSON list of espeak tokens<TAB>note``) lists, for every phoneme and mark the
Japanese schemes emit, one or more tokens of the espeak IPA inventory (the
tokens of the released Emilia table). It is used to initialise the embedding
rows of new Japanese tokens from trained rows: a new row starts as the mean of
the rows of its IPA tokens. Katakana tokens of the ``kana`` scheme map to the
IPA of their phonemes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

from shirabe.text.phonemes import LONG_VOWEL_MARK, MORA_KANA


@lru_cache(maxsize=1)
def ipa_map() -> dict[str, tuple[str, ...]]:
    """``{openjtalk token: (espeak token, ...)}`` from the shipped table."""
    text = (files("shirabe.text") / "data" / "openjtalk_ipa.tsv").read_text(encoding="utf-8")
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines()[1:]:  # the first line is the header
        if not line:
            continue
        token, ipa, *_ = line.split("\t")
        table[token] = tuple(json.loads(ipa))
    return table


@lru_cache(maxsize=1)
def _kana_phones() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for phones, kana in MORA_KANA.items():
        out.setdefault(kana, phones)
    return out


def ipa_tokens(token: str) -> tuple[str, ...]:
    """espeak tokens closest to one Japanese token (empty if it has none, e.g. ``ー``)."""
    table = ipa_map()
    if token in table:
        return table[token]
    phones = _kana_phones().get(token)
    if phones is None or token == LONG_VOWEL_MARK:
        return ()
    return tuple(ipa for p in phones for ipa in table[p])


def init_source_ids(tokens, token2id: dict[str, int]) -> dict[str, list[int]]:
    """For each of ``tokens``, the ids (in ``token2id``) of its IPA tokens; tokens
    whose IPA tokens are all missing from the table map to an empty list."""
    return {t: [token2id[i] for i in ipa_tokens(t) if i in token2id] for t in tokens}
