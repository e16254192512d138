"""Evaluate a set of synthesised utterances: per-utterance metrics and their means.

Each :class:`EvalItem` is one synthesis: its prompt (the voice to clone), the
text, the output wav and, when the corpus has one, a ground-truth recording of
that text by the prompt's speaker. Per utterance (keys of the result):

- ``sim``: CAM++ cosine similarity of prompt and output (zero-shot SIM);
- with a ground truth: ``sim_gt`` (ground truth vs output), ``mcd`` (dB),
  ``f0_rmse_cents``, ``log_f0_corr``, ``vuv_error`` (DTW-aligned, see
  :mod:`shirabe.eval.aligned`) and ``duration_ratio`` (output / ground truth);
- with an ASR model: ``transcript`` and ``cer`` (:mod:`shirabe.eval.cer`);
- with a phone recognizer (:mod:`shirabe.eval.per`): ``per``, the phone error rate
  of the output against the text's phones in percent (with ``per_errors``,
  ``per_ref_phones`` and the recognized phones ``per_hyp``), and with a ground
  truth ``per_gt``, the same recognizer on the ground-truth recording: the ceiling;
- always ``seconds`` (output length).

A metric that cannot be computed for an utterance (audio too short for the
speaker encoder, no jointly voiced frame) is ``None`` there and left out of
the mean; ``count`` says how many utterances each mean covers. The means of
CER and PER are corpus rates (summed edits over summed reference length).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shirabe.audio import load_audio
from shirabe.eval.aligned import compare_to_reference
from shirabe.eval.cer import cer as char_error_rate
from shirabe.eval.duration import duration_ratio

logger = logging.getLogger(__name__)

#: metric keys in table order, with their column titles
METRICS = {
    "sim": "SIM (prompt)",
    "sim_gt": "SIM (ground truth)",
    "mcd": "MCD (dB)",
    "f0_rmse_cents": "log-F0 RMSE (cents)",
    "log_f0_corr": "log-F0 corr",
    "vuv_error": "V/UV error",
    "duration_ratio": "duration ratio",
    "cer": "CER",
    "per": "PER (%)",
    "per_gt": "PER ground truth (%)",
}
#: metrics whose mean is summed errors over summed reference length: (errors key, length key, scale)
CORPUS_RATES = {"cer": ("cer_edits", "cer_ref_chars", 1.0),
                "per": ("per_errors", "per_ref_phones", 100.0),
                "per_gt": ("per_gt_errors", "per_gt_ref_phones", 100.0)}
#: decimals of a column in :func:`markdown_table` (default: its ``digits``)
DIGITS = {"per": 1, "per_gt": 1}


@dataclass(frozen=True)
class EvalItem:
    utt_id: str
    prompt_wav: Path
    text: str
    hyp_wav: Path
    gt_wav: Path | None = None


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Evaluator:
    """Computes the metrics of :class:`EvalItem` s; ``encoder`` a CAM++ ``SpeakerEncoder``,
    ``asr`` an object with ``transcribe(audio, sr) -> str`` (or None), ``phones`` a
    :class:`shirabe.eval.per.PhoneJudge` (or None)."""

    def __init__(self, encoder, asr=None, f0_method: str = "harvest", cer_kana: bool = False, phones=None):
        self.encoder = encoder
        self.asr = asr
        self.phones = phones
        self.f0_method = f0_method
        self.cer_kana = cer_kana
        self._embeddings: dict[Path, object] = {}

    def _embedding(self, path: Path, audio=None, sr=None):
        from shirabe.speaker import embed

        if path not in self._embeddings:
            if audio is None:
                audio, sr = load_audio(path)
            try:
                self._embeddings[path] = embed(audio, sr, self.encoder)
            except ValueError as e:  # too short for CAM++
                logger.warning("%s: no speaker embedding (%s)", path, e)
                self._embeddings[path] = None
        return self._embeddings[path]

    def _similarity(self, a: Path, b: Path, audio_b=None, sr_b=None) -> float | None:
        from shirabe.speaker import cosine_similarity

        ea, eb = self._embedding(a), self._embedding(b, audio_b, sr_b)
        return None if ea is None or eb is None else cosine_similarity(ea, eb)

    def reference_phones(self, item: EvalItem) -> list[str] | None:
        """The phones of the item's text (None without a phone recognizer); phones the
        recognizer does not know are a one-line InputError naming the item."""
        if self.phones is None:
            return None
        return self.phones.text_reference(item.text, f"test item {item.utt_id!r}")

    def evaluate(self, item: EvalItem) -> dict:
        hyp, sr = load_audio(item.hyp_wav)
        out: dict = {"id": item.utt_id, "seconds": len(hyp) / sr, "sim": self._similarity(item.prompt_wav, item.hyp_wav, hyp, sr)}
        if item.gt_wav is not None:
            gt, gt_sr = load_audio(item.gt_wav)
            out["sim_gt"] = self._similarity(item.gt_wav, item.hyp_wav, hyp, sr)
            out.update(compare_to_reference(gt, hyp, gt_sr, hyp_sr=sr, f0_method=self.f0_method))
            out["duration_ratio"] = duration_ratio(gt, hyp, gt_sr, hyp_sr=sr)
        if self.asr is not None:
            out["transcript"] = self.asr.transcribe(hyp, sr)
            rate, edits, length = char_error_rate(item.text, out["transcript"], kana=self.cer_kana)
            out.update(cer=rate, cer_edits=edits, cer_ref_chars=length)
        if self.phones is not None:
            from shirabe.eval.per import per_fields

            ref = self.reference_phones(item)
            out.update(per_fields(self.phones.score((hyp, sr), ref), "per"))
            if item.gt_wav is not None:
                out.update(per_fields(self.phones.score(item.gt_wav, ref, cache_key=item.gt_wav), "per_gt"))
        return {k: _clean(v) for k, v in out.items()}


def summarize(rows: list[dict]) -> tuple[dict, dict]:
    """``(means, counts)`` of :data:`METRICS` over ``rows`` (None values left out)."""
    means, counts = {}, {}
    for key in METRICS:
        if key in CORPUS_RATES:
            err_key, len_key, scale = CORPUS_RATES[key]
            edits = [r[err_key] for r in rows if r.get(err_key) is not None]
            length = sum(r[len_key] for r in rows if r.get(err_key) is not None and r.get(len_key) is not None)
            if edits and length:
                means[key], counts[key] = scale * sum(edits) / length, len(edits)
            continue
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            means[key], counts[key] = float(np.mean(values)), len(values)
    return means, counts


def evaluate_items(evaluator: Evaluator, items: list[EvalItem], progress: bool = True) -> dict:
    """Per-utterance rows plus ``mean`` and ``count`` (see :func:`summarize`).

    The items' reference phones are checked before any audio is processed."""
    for it in items:
        evaluator.reference_phones(it)
    rows = [evaluator.evaluate(it) for it in tqdm(items, desc="evaluating", unit="utt", disable=not progress)]
    means, counts = summarize(rows)
    return {"num_utterances": len(rows), "mean": means, "count": counts, "utterances": rows}


def markdown_table(results: dict[str, dict], digits: int = 3) -> str:
    """One row per system (``{name: evaluate_items(...) result}``), the metrics any system has."""
    keys = [k for k in METRICS if any(k in r["mean"] for r in results.values())]
    lines = ["| system | utterances | " + " | ".join(METRICS[k] for k in keys) + " |",
             "|---|---:|" + "---:|" * len(keys)]
    for name, r in results.items():
        cells = [f"{r['mean'][k]:.{DIGITS.get(k, digits)}f}" if k in r["mean"] else "–" for k in keys]
        lines.append(f"| {name} | {r['num_utterances']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
