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

import time
from dataclasses import dataclass

import numpy as np
import torch

from zipvoice.models.text_condition import inference_num_frames
from zipvoice.utils.pipeline import (  # noqa: F401 - re-exported: the public names of this module
    HOP_LENGTH,
    LONG_PROMPT_SECONDS,
    MAX_CHUNK_SECONDS,
    MAX_PROMPT_SECONDS,
    SAMPLING_RATE,
    GenerationResult,
    SamplingOptions,
    batchify,
    chunk_token_ids,
    clean_vocoder_output,
    finish_audio,
    load_prompt_audio,
    split_noise_array,
)


@dataclass
class Prompt:
    wav: np.ndarray
    rms: float
    features: torch.Tensor  # (1, T, 100), model scale
    tokens: list[int]
    seconds: float


def prepare_prompt(wav_path, prompt_text: str, tokenizer, fbank, opts: SamplingOptions) -> Prompt:
    """Load, clean, normalise and featurise a prompt; tokenize its text."""
    audio = load_prompt_audio(wav_path, prompt_text, tokenizer, opts)
    feats = np.asarray(fbank.extract(audio.wav, SAMPLING_RATE), dtype=np.float32)
    features = torch.from_numpy(feats).unsqueeze(0) * opts.feat_scale
    return Prompt(wav=audio.wav, rms=audio.rms, features=features, tokens=audio.tokens, seconds=audio.seconds)


def text_chunks(text: str, tokenizer, prompt: Prompt, opts: SamplingOptions) -> list[list[int]]:
    """Token ids of the chunks of ``text`` (one chunk in raw-evaluation mode)."""
    return chunk_token_ids(text, tokenizer, prompt.seconds, len(prompt.tokens), opts)


def total_frames(prompt: Prompt, chunk: list[int], speed: float) -> int:
    """Frames the sampler draws noise for: prompt + generated."""
    p = torch.tensor([prompt.features.shape[1]])
    return int(inference_num_frames(p, torch.tensor([len(prompt.tokens)]), torch.tensor([len(chunk)]), speed)[0])


def split_noise(noise: np.ndarray, prompt: Prompt, chunks: list[list[int]], speed: float, feat_dim: int) -> list[torch.Tensor]:
    """Cut a ``(T_total, feat_dim)`` noise array into one ``(1, T_i, feat_dim)`` piece per chunk."""
    sizes = [total_frames(prompt, c, speed) for c in chunks]
    return [torch.from_numpy(piece) for piece in split_noise_array(noise, sizes, feat_dim)]


def vocode(vocoder, features: np.ndarray, device) -> np.ndarray:
    """Log-mel ``(T, 100)`` → audio ``(T·256,)`` in [-1, 1]; non-finite samples become 0 (with a warning)."""
    mel = torch.from_numpy(np.ascontiguousarray(features.T)).unsqueeze(0).to(device)
    return clean_vocoder_output(vocoder.decode(mel).squeeze(0).float().cpu().numpy())


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
    wav = finish_audio(wavs, prompt.rms, opts)
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
