"""Zero-shot generation with a ZipVoice model: prompt → features → audio.

:func:`generate` runs the whole pipeline for one (prompt, text) pair:

1. the prompt is loaded at 24 kHz, its long silences are shortened and its
   edges trimmed (200 ms of silence appended), its level raised to
   ``target_rms`` if quieter; a prompt over 20 s is cut to 20 s together with
   the matching share of its tokens (the model assumes a uniform speaking
   rate), with a warning; over 10 s gives a warning;
2. text without final punctuation gets a full stop; the text is chunked at
   sentence, then clause punctuation so that prompt + chunk stays under
   ``MAX_CHUNK_SECONDS`` at the prompt's speaking rate;
3. chunks are batched under ``max_duration`` seconds of prompt + generated
   audio (sorted by length), sampled, vocoded one by one, put back in order
   and joined with a 100 ms cross-fade; edge silences are trimmed (all long
   silences with ``remove_long_sil``) and the level restored.

``raw_evaluation`` skips silence handling, punctuation and chunking (one
sample of the whole text), as used for benchmark numbers.

With ``noise`` (an array of the sampler's initial noise, prompt frames
included, for every chunk in text order), chunks are sampled one at a time
from it instead of from the random generator, so a run can be reproduced
exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from shirabe.audio.crossfade import cross_fade_concat
from shirabe.audio.io import load_audio
from shirabe.audio.loudness import raise_to_rms, restore_rms
from shirabe.audio.silence import remove_silence
from shirabe.cli import InputError
from zipvoice.models.text_condition import inference_num_frames
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
class Prompt:
    wav: np.ndarray
    rms: float
    features: torch.Tensor  # (1, T, 100), model scale
    tokens: list[int]
    seconds: float


def prepare_prompt(wav_path, prompt_text: str, tokenizer, fbank, opts: SamplingOptions) -> Prompt:
    """Load, clean, normalise and featurise a prompt; tokenize its text."""
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
    feats = np.asarray(fbank.extract(wav, SAMPLING_RATE), dtype=np.float32)
    features = torch.from_numpy(feats).unsqueeze(0) * opts.feat_scale
    return Prompt(wav=wav, rms=level, features=features, tokens=tokens, seconds=seconds)


def text_chunks(text: str, tokenizer, prompt: Prompt, opts: SamplingOptions) -> list[list[int]]:
    """Token ids of the chunks of ``text`` (one chunk in raw-evaluation mode)."""
    if not text.strip():
        raise InputError("the text to synthesise is empty")
    if opts.raw_evaluation:
        pieces = [text.strip()]
    else:
        text = add_punctuation(text)
        token_seconds = prompt.seconds / (len(prompt.tokens) * opts.speed)
        max_tokens = max(1, int((MAX_CHUNK_SECONDS - prompt.seconds) / token_seconds))
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


def total_frames(prompt: Prompt, chunk: list[int], speed: float) -> int:
    """Frames the sampler draws noise for: prompt + generated."""
    p = torch.tensor([prompt.features.shape[1]])
    return int(inference_num_frames(p, torch.tensor([len(prompt.tokens)]), torch.tensor([len(chunk)]), speed)[0])


def split_noise(noise: np.ndarray, prompt: Prompt, chunks: list[list[int]], speed: float, feat_dim: int) -> list[torch.Tensor]:
    """Cut a ``(T_total, feat_dim)`` noise array into one ``(1, T_i, feat_dim)`` piece per chunk."""
    sizes = [total_frames(prompt, c, speed) for c in chunks]
    want = (sum(sizes), feat_dim)
    if noise.ndim == 3 and noise.shape[0] == 1:
        noise = noise[0]
    if tuple(noise.shape) != want:
        detail = f" ({len(chunks)} chunks of {', '.join(map(str, sizes))} frames)" if len(chunks) > 1 else ""
        raise InputError(f"noise file has shape {tuple(noise.shape)}, this prompt and text need {want}{detail}")
    out, pos = [], 0
    for n in sizes:
        out.append(torch.from_numpy(np.ascontiguousarray(noise[pos : pos + n], dtype=np.float32)).unsqueeze(0))
        pos += n
    return out


def vocode(vocoder, features: np.ndarray, device) -> np.ndarray:
    """Log-mel ``(T, 100)`` → audio ``(T·256,)`` in [-1, 1]; non-finite samples become 0 (with a warning)."""
    mel = torch.from_numpy(np.ascontiguousarray(features.T)).unsqueeze(0).to(device)
    wav = vocoder.decode(mel).squeeze(0).float().cpu().numpy()
    bad = ~np.isfinite(wav)
    if bad.any():
        logger.warning("the vocoder produced %d non-finite samples (features out of range?); set to 0", int(bad.sum()))
        wav = np.where(bad, 0.0, wav)
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


@torch.inference_mode()
def generate(
    model,
    vocoder,
    tokenizer,
    fbank,
    prompt_wav,
    prompt_text: str,
    text: str,
    opts: SamplingOptions,
    device: torch.device | str = "cpu",
    noise: np.ndarray | None = None,
) -> GenerationResult:
    """Synthesise ``text`` in the voice of the prompt; see the module docstring."""
    t_start = time.perf_counter()
    prompt = prepare_prompt(prompt_wav, prompt_text, tokenizer, fbank, opts)
    chunks = text_chunks(text, tokenizer, prompt, opts)
    token_seconds = prompt.seconds / (len(prompt.tokens) * opts.speed)
    if noise is not None:
        noises = split_noise(noise, prompt, chunks, opts.speed, model.feat_dim)
        batches = [[i] for i in range(len(chunks))]
    else:
        noises = None
        batches = batchify(chunks, opts.max_duration, prompt.seconds, token_seconds)

    feats: list[np.ndarray | None] = [None] * len(chunks)
    prompt_feats = prompt.features.to(device)
    for batch in batches:
        n = len(batch)
        gen, gen_lens, _, _ = model.sample(
            tokens=[chunks[i] for i in batch],
            prompt_tokens=[prompt.tokens] * n,
            prompt_features=prompt_feats.expand(n, -1, -1),
            prompt_features_lens=torch.full((n,), prompt_feats.shape[1], dtype=torch.int64, device=device),
            speed=opts.speed,
            t_shift=opts.t_shift,
            duration="predict",
            num_step=opts.num_step,
            guidance_scale=opts.guidance_scale,
            noise=None if noises is None else noises[batch[0]].to(device),
        )
        for j, i in enumerate(batch):
            feats[i] = (gen[j, : int(gen_lens[j])] / opts.feat_scale).float().cpu().numpy()
    t_model = time.perf_counter()

    wavs = [vocode(vocoder, f, device) for f in feats]
    wav = cross_fade_concat(wavs, SAMPLING_RATE, 0.1)
    if not opts.raw_evaluation:
        trimmed = remove_silence(wav, SAMPLING_RATE, only_edge=not opts.remove_long_sil, trail_silence=0.0)
        if trimmed.size == 0:
            logger.warning("the generated audio is silent; writing it untrimmed")
        else:
            wav = trimmed
    wav = restore_rms(wav, prompt.rms, opts.target_rms)
    t_end = time.perf_counter()
    seconds = len(wav) / SAMPLING_RATE
    timings = {
        "model_seconds": t_model - t_start,
        "vocoder_seconds": t_end - t_model,
        "total_seconds": t_end - t_start,
        "audio_seconds": seconds,
    }
    return GenerationResult(wav=wav.astype(np.float32), features=np.concatenate(feats, axis=0),
                            num_chunks=len(chunks), timings=timings)
