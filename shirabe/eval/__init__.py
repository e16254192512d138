"""Objective metrics for generated speech and singing.

- F0 (``shirabe.eval.f0``): ``f0_rmse`` (Hz or cents), ``f0_corr``, ``vuv_error``,
  ``raw_pitch_accuracy`` on F0 tracks of equal frame rate;
- spectrum: ``mcd_dtw`` (WORLD mel-cepstral distortion with DTW, dB);
- speaker: ``speaker_similarity`` (CAM++ cosine);
- timing: ``duration_ratio``;
- against a ground-truth recording: ``compare_to_reference`` (DTW-aligned MCD and log-F0);
- intelligibility: ``cer`` / ``corpus_cer`` (transcripts from ``shirabe.eval.asr.WhisperASR``).

``shirabe.eval.suite`` evaluates a set of syntheses, ``shirabe.eval.report`` writes an HTML
report with audio players, ``shirabe.eval.results_md`` keeps tables in a RESULTS.md.
"""

from shirabe.eval.aligned import compare_to_reference
from shirabe.eval.cer import cer, corpus_cer
from shirabe.eval.duration import duration_ratio
from shirabe.eval.f0 import f0_corr, f0_rmse, raw_pitch_accuracy, vuv_error
from shirabe.eval.mcd import all_pass_alpha, mcd_dtw, mel_cepstrum
from shirabe.eval.similarity import speaker_similarity

__all__ = [
    "all_pass_alpha",
    "cer",
    "compare_to_reference",
    "corpus_cer",
    "duration_ratio",
    "f0_corr",
    "f0_rmse",
    "mcd_dtw",
    "mel_cepstrum",
    "raw_pitch_accuracy",
    "speaker_similarity",
    "vuv_error",
]
