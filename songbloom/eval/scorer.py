"""The metrics of one song recording (a generated sample or the ground truth) against its lyrics and prompt.

:class:`SongScorer` holds the loaded judges, each optional:

* a :class:`shirabe.eval.per.PhoneJudge`: ``per`` (%), the phone error rate of the recording
  against the phones of the sung text (:func:`songbloom.eval.lyrics.sung_text`), with
  ``per_errors``, ``per_ref_phones`` and the recognized phones ``per_hyp``. The song is
  recognized in windows cut at its rests, none longer than ``window`` seconds
  (:func:`songbloom.eval.windows.phrase_windows`; 0: the whole song at once), and the
  windows' phones are joined before the comparison;
* MuQ (``muq`` and ``muq_layer``): ``style_sim``, the cosine between the mean-pooled MuQ
  features of the prompt and of the recording (:func:`songbloom.eval.metrics.style_similarity`);
  the frames are kept for the Fréchet distance;
* an ASR model with ``transcribe(audio, sr)``: ``cer`` (%) of the joined transcripts of the
  same kind of windows, of at most :data:`ASR_WINDOW` seconds, against the sung text (katakana readings with
  ``cer_kana``), with ``cer_edits``, ``cer_ref_chars`` and ``transcript``.

Always: ``duration`` and the adherence to the budget (:func:`songbloom.eval.metrics.duration_adherence`),
and the structure adherence (:func:`songbloom.eval.structure.structure_adherence`):
``structure_acc``, ``vocal_active``, ``nonvocal_active``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from songbloom.eval.metrics import duration_adherence, style_similarity
from songbloom.eval.structure import DEFAULT_MIN_ACTIVE, structure_adherence, vocal_activity
from songbloom.eval.windows import split_audio

ASR_WINDOW = 25.0  # seconds: Whisper reads 30 s at most
DEFAULT_WINDOW = 10.0  # seconds: the longest window, for songs without rests (docs/songbloom_evaluation.md)


@dataclass
class SongScorer:
    judge: object | None = None
    muq: object | None = None
    muq_layer: int = -1
    asr: object | None = None
    cer_kana: bool = True
    window: float = DEFAULT_WINDOW
    max_duration: float | None = None
    min_active: float = DEFAULT_MIN_ACTIVE
    _prompt_cache: dict = field(default_factory=dict)

    def muq_frames(self, wav: np.ndarray, sr: int) -> np.ndarray | None:
        """``(frames, dims)`` MuQ features of the chosen layer, or None for audio too short for MuQ."""
        if self.muq is None:
            return None
        from shirabe.ssl import encode

        try:
            feats = encode(self.muq, wav, sr, layers=self.muq_layer)
        except ValueError:
            return None
        return feats.detach().to("cpu").double().numpy()

    def prompt_frames(self, path) -> np.ndarray | None:
        """MuQ frames of a prompt file (cached by path); None without MuQ or for a short prompt."""
        if self.muq is None:
            return None
        key = str(path)
        if key not in self._prompt_cache:
            from shirabe.audio import load_audio

            wav, sr = load_audio(path)
            self._prompt_cache[key] = self.muq_frames(wav, sr)
        return self._prompt_cache[key]

    def phones(self, wav: np.ndarray, sr: int, reference: list[str] | None) -> dict:
        from shirabe.asr import edit_counts

        if self.judge is None or not reference:
            return {}
        chunks = split_audio(wav, sr, self.window)
        hyp = [p for h in self.judge.recognizer.recognize([(c, sr) for c in chunks]) for p in h]
        counts = edit_counts(list(reference), hyp)
        return {"per": 100.0 * counts.per, "per_errors": counts.errors, "per_ref_phones": counts.ref_len,
                "per_hyp": " ".join(hyp)}

    def transcript(self, wav: np.ndarray, sr: int, text: str) -> dict:
        from shirabe.eval.cer import cer

        if self.asr is None or not text:
            return {}
        hyp = "".join(self.asr.transcribe(c, sr) for c in split_audio(wav, sr, ASR_WINDOW))
        rate, edits, length = cer(text, hyp, kana=self.cer_kana)
        return {"cer": 100.0 * rate if length else None, "cer_edits": edits, "cer_ref_chars": length,
                "transcript": hyp}

    def score(self, wav: np.ndarray, sr: int, text: str, reference_phones: list[str] | None,
              sections: list[tuple[bool, int]], prompt: np.ndarray | None,
              reference_duration: float | None = None) -> tuple[dict, np.ndarray | None]:
        """``(metrics, MuQ frames)`` of mono ``wav`` (module docstring)."""
        wav = np.asarray(wav, dtype=np.float32)
        duration = len(wav) / sr
        out = duration_adherence(duration, self.max_duration, reference_duration)
        if sections and duration > 0:
            s = structure_adherence(vocal_activity(wav, sr), sections, duration, self.min_active)
            out.update(structure_acc=s["accuracy"], vocal_active=s["vocal_active"],
                       nonvocal_active=s["nonvocal_active"])
        out.update(self.phones(wav, sr, reference_phones))
        out.update(self.transcript(wav, sr, text))
        frames = self.muq_frames(wav, sr)
        if frames is not None and prompt is not None:
            out["style_sim"] = style_similarity(prompt, frames)
        return out, frames
