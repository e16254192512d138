"""The torch-free steps of zero-shot generation, shared by the PyTorch and ONNX runners.

Prompt handling (load at 24 kHz, silence shortening, level, the 20 s cap with
the matching share of tokens), text chunking at the prompt's speaking rate,
batching, the frame-count rule and the final cross-fade / trim / level
restore. :mod:`zipvoice.utils.infer` (PyTorch) and
:mod:`zipvoice.utils.onnx_infer` (onnxruntime, no torch) both build on it;
see :mod:`zipvoice.utils.infer` for the whole pipeline.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from shirabe.audio.crossfade import cross_fade_concat
from shirabe.audio.io import load_audio
from shirabe.audio.loudness import raise_to_rms, restore_rms
from shirabe.audio.silence import remove_silence
from shirabe.cli import InputError
from zipvoice.utils.chunking import add_punctuation, chunk_text

logger = logging.getLogger(__name__)

SAMPLING_RATE = 24000
HOP_LENGTH = 256
MAX_PROMPT_SECONDS = 20.0
LONG_PROMPT_SECONDS = 10.0
MAX_CHUNK_SECONDS = 25.0


@dataclass
class SamplingOptions:
    num_step: int = 16
    guidance_scale: float = 1.0
    t_shift: float = 0.5
    speed: float = 1.0
    feat_scale: float = 0.1
    target_rms: float = 0.1
    max_duration: float = 100.0
    remove_long_sil: bool = False
    raw_evaluation: bool = False


@dataclass
class GenerationResult:
    wav: np.ndarray  # (S,) float32 at 24 kHz
    features: np.ndarray  # (T, 100) generated log-mel frames (vocoder scale), chunks in order
    num_chunks: int = 1
    timings: dict = field(default_factory=dict)


@dataclass
class PromptAudio:
    wav: np.ndarray  # cleaned, level-raised prompt at 24 kHz
    rms: float  # level before raising
    tokens: list[int]
    seconds: float


def load_prompt_audio(wav_path, prompt_text: str, tokenizer, opts: SamplingOptions) -> PromptAudio:
    """Load, clean and normalise a prompt and tokenize its text (features are the caller's)."""
    wav, _ = load_audio(wav_path, sr=SAMPLING_RATE, mono=True)
    if not opts.raw_evaluation:
        wav = remove_silence(wav, SAMPLING_RATE, only_edge=False, trail_silence=0.2)
    if wav.size == 0 or not np.any(np.abs(wav) > 1e-4):
        raise InputError(f"{wav_path}: prompt audio is empty or silent")
    wav, level = raise_to_rms(wav, opts.target_rms)
    text = prompt_text.strip() if opts.raw_evaluation else add_punctuation(prompt_text)
    if not text:
        raise InputError("the prompt text is empty")
    tokens = tokenizer.texts_to_token_ids([text])[0]
    if not tokens:
        raise InputError(f"the prompt text {prompt_text!r} gives no tokens in the token table")
    seconds = len(wav) / SAMPLING_RATE
    if seconds > MAX_PROMPT_SECONDS:
        keep = max(1, math.ceil(len(tokens) * MAX_PROMPT_SECONDS / seconds))
        logger.warning(
            "%s: prompt is %.1f s; using its first %.0f s and its first %d of %d tokens "
            "(prompts of 1-3 s work best)", wav_path, seconds, MAX_PROMPT_SECONDS, keep, len(tokens),
        )
        wav = wav[: int(MAX_PROMPT_SECONDS * SAMPLING_RATE)]
        tokens = tokens[:keep]
        seconds = len(wav) / SAMPLING_RATE
    elif seconds > LONG_PROMPT_SECONDS:
        logger.warning("%s: prompt is %.1f s; prompts of 1-3 s work best", wav_path, seconds)
    return PromptAudio(wav=wav, rms=level, tokens=tokens, seconds=seconds)


def chunk_token_ids(text: str, tokenizer, prompt_seconds: float, n_prompt_tokens: int,
                    opts: SamplingOptions) -> list[list[int]]:
    """Token ids of the chunks of ``text`` (one chunk in raw-evaluation mode)."""
    if not text.strip():
        raise InputError("the text to synthesise is empty")
    if opts.raw_evaluation:
        pieces = [text.strip()]
    else:
        text = add_punctuation(text)
        token_seconds = prompt_seconds / (n_prompt_tokens * opts.speed)
        max_tokens = max(1, int((MAX_CHUNK_SECONDS - prompt_seconds) / token_seconds))
        pieces = chunk_text(text, lambda s: len(tokenizer.texts_to_token_ids([s])[0]), max_tokens)
    chunks = [ids for ids in tokenizer.texts_to_token_ids(pieces) if ids]
    if not chunks:
        raise InputError(f"the text {text!r} gives no tokens in the token table")
    return chunks


def batchify(chunks: list[list[int]], max_duration: float, prompt_seconds: float, token_seconds: float) -> list[list[int]]:
    """Indices of ``chunks`` grouped (shortest first) so that each batch's prompt +
    text time stays within ``max_duration`` (a batch holds at least one chunk)."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
    batches, current, used = [], [], 0.0
    for i in order:
        cost = len(chunks[i]) * token_seconds + prompt_seconds
        if current and used + cost > max_duration:
            batches.append(current)
            current, used = [], 0.0
        current.append(i)
        used += cost
    if current:
        batches.append(current)
    return batches


def num_total_frames(prompt_frames: int, n_prompt_tokens: int, n_tokens: int, speed: float) -> int:
    """Prompt + generated frames: ``P + ceil(P / N_prompt · N_text / speed)`` in float32 arithmetic
    (the model's rule, see :func:`zipvoice.models.text_condition.inference_num_frames`)."""
    f32 = np.float32
    ratio = f32(prompt_frames) / f32(n_prompt_tokens) * f32(n_tokens) / f32(speed)
    return int(prompt_frames) + int(np.ceil(ratio))


def split_noise_array(noise: np.ndarray, sizes: list[int], feat_dim: int) -> list[np.ndarray]:
    """Cut a ``(sum(sizes), feat_dim)`` noise array into ``(1, n, feat_dim)`` float32 pieces."""
    want = (sum(sizes), feat_dim)
    if noise.ndim == 3 and noise.shape[0] == 1:
        noise = noise[0]
    if tuple(noise.shape) != want:
        detail = f" ({len(sizes)} chunks of {', '.join(map(str, sizes))} frames)" if len(sizes) > 1 else ""
        raise InputError(f"noise file has shape {tuple(noise.shape)}, this prompt and text need {want}{detail}")
    out, pos = [], 0
    for n in sizes:
        out.append(np.ascontiguousarray(noise[pos : pos + n], dtype=np.float32)[None])
        pos += n
    return out


def clean_vocoder_output(wav: np.ndarray) -> np.ndarray:
    """Non-finite samples → 0 (with a warning), clip to [-1, 1], float32."""
    wav = np.asarray(wav, dtype=np.float32)
    bad = ~np.isfinite(wav)
    if bad.any():
        logger.warning("the vocoder produced %d non-finite samples (features out of range?); set to 0", int(bad.sum()))
        wav = np.where(bad, 0.0, wav)
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def finish_audio(wavs: list[np.ndarray], prompt_rms: float, opts: SamplingOptions) -> np.ndarray:
    """Join chunk audio with 100 ms cross-fades, trim silences, restore the prompt's level."""
    wav = cross_fade_concat(wavs, SAMPLING_RATE, 0.1)
    if not opts.raw_evaluation:
        trimmed = remove_silence(wav, SAMPLING_RATE, only_edge=not opts.remove_long_sil, trail_silence=0.0)
        if trimmed.size == 0:
            logger.warning("the generated audio is silent; writing it untrimmed")
        else:
            wav = trimmed
    return restore_rms(wav, prompt_rms, opts.target_rms).astype(np.float32)
