"""Carry a checkpoint's token embedding over to a larger (extended) token table.

Rows are matched by token string, so a table extended by appending (ids
unchanged, see :func:`shirabe.text.tokens.extend_table`) keeps every trained
row where it was. A token the base table lacks gets a row from the tokens that
sound like it, through the frontend's phoneme → IPA table
(``shirabe/text/data/openjtalk_ipa.tsv``, :func:`shirabe.text.ipa.ipa_tokens`).

Every base token has a reading, a sequence of IPA tokens: a table written in
OpenJTalk phonemes (it holds ``cl`` or ``ッ``) is read through the IPA table
(``ky`` → ``k ʲ``, ``[`` → ``↑``), any other table (espeak IPA, like the
released Emilia table) literally, each token as itself. For a new token:

1. its IPA sequence (a kana token gives the IPA of its phonemes) is covered
   greedily by base readings, longest first (``キャ`` = ``k ʲ a`` → ``ky`` +
   ``a`` in an OpenJTalk table, ``k`` + ``ʲ`` + ``a`` in an espeak one); an IPA
   token no reading covers is retried without its marks (``ː``, ``ʲ``, stress
   and other modifier or combining characters), else skipped;
2. if that found nothing: the new token without its marks (brackets, digits,
   modifier letters), if the base has it (or, through step 1, its IPA);
3. otherwise no source.

A new row is the mean of its source rows (one source: an exact copy), or the
mean of all base rows when there is none.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from shirabe.text.ipa import ipa_tokens

logger = logging.getLogger(__name__)

#: tokens that only a table written in OpenJTalk phonemes (or its kana) holds
OPENJTALK_MARKERS = ("cl", "ッ")


def strip_marks(token: str) -> str:
    """Only the letters of ``token``: drops punctuation, brackets, digits, modifier letters
    (``ː``, ``ʲ``, ``ˈ``) and combining marks."""
    return "".join(ch for ch in token if unicodedata.category(ch) in ("Lu", "Ll", "Lt", "Lo"))


@dataclass
class EmbeddingPlan:
    """How every row of the new table is filled."""

    copied: dict[str, str] = field(default_factory=dict)  # new token -> same token in base
    ipa: dict[str, list[str]] = field(default_factory=dict)  # new token -> base source tokens
    mean: list[str] = field(default_factory=list)  # new tokens initialised from the mean row
    dropped: list[str] = field(default_factory=list)  # base tokens absent from the new table

    def summary(self) -> str:
        text = (f"{len(self.copied)} rows copied, {len(self.ipa)} IPA-initialised, "
                f"{len(self.mean)} mean-initialised")
        if self.dropped:
            text += f", {len(self.dropped)} base tokens not in the new table"
        return text


def reads_openjtalk(base: dict[str, int]) -> bool:
    """Whether ``base`` is written in OpenJTalk phonemes (it has ``cl`` or ``ッ``)."""
    return any(tok in base for tok in OPENJTALK_MARKERS)


def base_readings(base: dict[str, int]) -> dict[tuple[str, ...], str]:
    """``{IPA token sequence: base token}``; the lowest id wins for a reading.

    A table written in OpenJTalk phonemes is read through the IPA table (``ky`` →
    ``k ʲ``, ``[`` → ``↑``); any other table (espeak IPA, e.g. the released Emilia
    table) is read literally, every token as itself.
    """
    openjtalk = reads_openjtalk(base)
    readings: dict[tuple[str, ...], str] = {}
    for tok in sorted(base, key=base.get):
        reading = (ipa_tokens(tok) or (tok,)) if openjtalk else (tok,)
        readings.setdefault(tuple(reading), tok)
    return readings


def ipa_sources(units: tuple[str, ...], readings: dict[tuple[str, ...], str]) -> list[str]:
    """Base tokens covering the IPA sequence ``units``, matched greedily (longest reading first);
    a unit no reading covers is retried without its marks, else skipped."""
    longest = max((len(r) for r in readings), default=1)
    found: list[str] = []
    i = 0
    while i < len(units):
        for n in range(min(longest, len(units) - i), 0, -1):
            tok = readings.get(tuple(units[i : i + n]))
            if tok is not None:
                break
        else:
            n = 1
            bare = strip_marks(units[i])
            tok = readings.get((bare,)) if bare and bare != units[i] else None
        if tok is not None and tok not in found:
            found.append(tok)
        i += n
    return found


def plan_embedding(base: dict[str, int], new: dict[str, int]) -> EmbeddingPlan:
    """Decide the source of every row of ``new`` (``{token: id}``) from ``base``."""
    readings = base_readings(base)
    plan = EmbeddingPlan()
    for tok in sorted(new, key=new.get):
        if tok in base:
            plan.copied[tok] = tok
            continue
        sources = ipa_sources(ipa_tokens(tok), readings)
        if not sources:
            bare = strip_marks(tok)
            if bare and bare != tok:
                sources = [bare] if bare in base else ipa_sources(ipa_tokens(bare), readings)
        if sources:
            plan.ipa[tok] = sources
        else:
            plan.mean.append(tok)
    plan.dropped = [t for t in sorted(base, key=base.get) if t not in new]
    return plan


def extend_embedding(
    weight: torch.Tensor, base: dict[str, int], new: dict[str, int], plan: EmbeddingPlan | None = None
) -> tuple[torch.Tensor, EmbeddingPlan]:
    """The ``(len(new), D)`` embedding for table ``new`` from ``weight`` ``(len(base), D)``."""
    if weight.shape[0] != len(base):
        raise ValueError(f"embedding has {weight.shape[0]} rows, base table {len(base)} tokens")
    plan = plan or plan_embedding(base, new)
    out = torch.empty(len(new), weight.shape[1], dtype=weight.dtype)
    w = weight.detach().cpu()
    mean_row = w.float().mean(dim=0).to(w.dtype)
    for tok, idx in new.items():
        if tok in plan.copied:
            out[idx] = w[base[plan.copied[tok]]]
        elif tok in plan.ipa:
            rows = w[[base[s] for s in plan.ipa[tok]]]
            out[idx] = rows.float().mean(dim=0).to(w.dtype)
        else:
            out[idx] = mean_row
    return out.to(weight.device), plan


def describe(plan: EmbeddingPlan, limit: int = 20) -> Iterable[str]:
    """Log lines listing the initialised rows."""
    if plan.ipa:
        items = [f"{t}<-{'+'.join(s)}" for t, s in list(plan.ipa.items())[:limit]]
        more = f" (+{len(plan.ipa) - limit} more)" if len(plan.ipa) > limit else ""
        yield "IPA-initialised: " + " ".join(items) + more
    if plan.mean:
        yield "mean-initialised: " + " ".join(plan.mean[:limit]) + (
            f" (+{len(plan.mean) - limit} more)" if len(plan.mean) > limit else "")
    if plan.dropped:
        yield "dropped base tokens: " + " ".join(plan.dropped[:limit])
