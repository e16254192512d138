"""Phone error rate (PER) for the evaluation tables: does the audio say what it should?

A :class:`PhoneJudge` wraps the offline phone recognizer of :mod:`shirabe.asr`
(docs/phone_recognizer.md) for the evaluation binaries. A reference is a text
(its phones come from the Japanese frontend, as in the recognizer's training)
or a phone sequence given directly (a song's phone timings); silence and pause
symbols are dropped from the latter. Per item the PER is given in percent with
its counts; a mean over items is the corpus PER (summed errors over summed
reference phones), so long items weigh more, as in the CER.

The same recognizer applied to a reference recording (the ground truth, a
conversion's source) gives the ceiling: how well this recognizer can do on
the real thing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from shirabe.asr import PhoneRecognizer, edit_counts, load_recognizer
from shirabe.asr.phones import TextPhones, phone_ids
from shirabe.cli import InputError

logger = logging.getLogger(__name__)

#: symbols of a phone sequence that are not phones (silence, pauses)
NON_PHONES = frozenset({"sil", "pau", "sp", "_", "<sil>"})


class PhoneJudge:
    """Scores audio against reference phones with one loaded recognizer."""

    def __init__(self, recognizer: PhoneRecognizer, model_dir: str | Path | None = None):
        self.recognizer = recognizer
        self.model_dir = Path(model_dir) if model_dir is not None else recognizer.model_dir
        self._text_phones: TextPhones | None = None
        self._by_text: dict[str, list[str]] = {}
        self._cached: dict[tuple, dict] = {}

    @classmethod
    def load(cls, model_dir: str | Path, device="cpu", option: str = "--phone-model-dir") -> PhoneJudge:
        """Load a recognizer directory; a missing or broken one is a one-line InputError naming ``option``."""
        try:
            return cls(load_recognizer(model_dir, device), model_dir)
        except InputError as e:
            raise InputError(f"{option} {e}") from e

    def text_reference(self, text: str, where: str) -> list[str]:
        """Reference phones of ``text`` (cached); phones missing from the model's table are an
        InputError naming ``where``."""
        if text not in self._by_text:
            if self._text_phones is None:
                self._text_phones = TextPhones(quiet=True)
            try:
                phones = self._text_phones(text)
            except InputError as e:
                raise InputError(f"{where}: {e}") from e
            self._by_text[text] = self.check(phones, where)
        return self._by_text[text]

    def phone_reference(self, phones: Iterable[str], where: str) -> list[str]:
        """A given phone sequence without silence/pause symbols, checked against the model's table."""
        return self.check([p for p in phones if p not in NON_PHONES], where)

    def check(self, phones: Sequence[str], where: str) -> list[str]:
        phone_ids(self.recognizer.table, phones, where, self.recognizer.phones_file)
        return list(phones)

    def score(self, audio, reference: Sequence[str] | None, cache_key=None) -> dict | None:
        """``{"per" (%), "errors", "ref_phones", "hyp"}`` of ``audio`` (a path or a
        ``(samples, sample_rate)`` pair) against ``reference``; None without reference phones.
        ``cache_key`` (e.g. a recording's path) reuses an earlier result for the same reference."""
        if not reference:
            return None
        key = None if cache_key is None else (str(cache_key), tuple(reference))
        if key is not None and key in self._cached:
            return self._cached[key]
        hyp = self.recognizer.recognize([audio])[0]
        counts = edit_counts(list(reference), hyp)
        result = {"per": 100.0 * counts.per, "errors": counts.errors, "ref_phones": counts.ref_len,
                  "hyp": " ".join(hyp)}
        if key is not None:
            self._cached[key] = result
        return result


def per_fields(result: dict | None, prefix: str = "per") -> dict:
    """Row fields of a :meth:`PhoneJudge.score` result: ``prefix`` (PER in %), ``prefix_errors``,
    ``prefix_ref_phones`` and ``prefix_hyp`` (the recognized phones); all None without a result."""
    if result is None:
        return {prefix: None, f"{prefix}_errors": None, f"{prefix}_ref_phones": None, f"{prefix}_hyp": None}
    return {prefix: result["per"], f"{prefix}_errors": result["errors"],
            f"{prefix}_ref_phones": result["ref_phones"], f"{prefix}_hyp": result["hyp"]}


def corpus_per(rows: Iterable[dict], prefix: str = "per") -> tuple[float, int] | None:
    """``(PER in %, items)`` summed over the rows that have ``prefix_errors``, or None if none has."""
    errors = phones = items = 0
    for r in rows:
        if r.get(f"{prefix}_errors") is None or not r.get(f"{prefix}_ref_phones"):
            continue
        errors += r[f"{prefix}_errors"]
        phones += r[f"{prefix}_ref_phones"]
        items += 1
    return (100.0 * errors / phones, items) if items else None


def per_summary(per: float | None, ceiling: float | None, ceiling_name: str = "ground truth") -> str:
    """The log line ``PER 23.4 % (ground truth 9.2 %)``; ``n/a`` where a value is missing."""
    def pct(v):
        return "n/a" if v is None else f"{v:.1f} %"

    return f"PER {pct(per)} ({ceiling_name} {pct(ceiling)})"
