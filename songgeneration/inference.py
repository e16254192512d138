"""Song generation: input JSONL → LeLM tokens → audio through an audio tokenizer.

Input lines (upstream's JSONL): ``idx`` (output name), ``gt_lyric``, optional ``descriptions``,
and at most one of ``prompt_audio_path`` (a reference song; its first ``prompt_len`` seconds of
the checkpoint's config, 10 s for the released models, are encoded) and
``auto_prompt_audio_type`` (a prompt drawn from a prompt library folder: ``<type>.npy`` holding
``[3, P]`` or ``[N, 3, P]`` tokens, one drawn by the seed). Lyrics go through
:func:`songgeneration.data.lyrics.normalize_lyrics` with the checkpoint's tags. Every mistake is a
one-line error naming ``FILE:LINE`` before any model is loaded.

A prompt file with ``NAME_vocal.*`` / ``NAME_inst.*`` stems beside it gives all three prompt
streams; otherwise (or with a tokenizer without stem codebooks) only the mixed stream is
prompted and the vocal and accompaniment prompt streams are absent (16385). A prompt shorter than
``prompt_len`` is padded with 16385 by the prompt conditioner (the same rule as training).

Sampling is :func:`songgeneration.models.generation.generate` (classifier-free guidance, the
repetition penalty over the last ``record_window`` steps, the anti-copy ban of the prompt's
mixed ids in stream 0, top-k/top-p sampling of stream 0 and arg-max for vocal and
accompaniment) with the KV caches of both decoders. When the audio tokenizer has fewer codes than
the model (the mini tokenizer), ids it cannot decode get the lowest logit so they are never
picked (end of song stays possible).

Audio: ``mixed`` decodes vocal + accompaniment together when the tokenizer can (as upstream does),
else the mixed stream; ``vocal`` / ``bgm`` decode one stem with the other replaced by the
tokenizer's silence code (the most common code of 1 s of silence); ``separate`` writes the
mixture and both stems.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError, get_logger
from songgeneration.data.lyrics import LyricsError, normalize_lyrics, structure_tags
from songgeneration.data.stems import find_stems
from songgeneration.tokenizer import HOP_SAMPLES, SAMPLE_RATE, read_stereo_48k

logger = get_logger(__name__)

GENERATE_TYPES = ("mixed", "vocal", "bgm", "separate")


@dataclass
class Request:
    idx: str
    gt_lyric: str
    descriptions: str | None
    prompt_audio_path: Path | None
    auto_prompt_type: str | None
    where: str


def read_requests(path: str | Path, auto_prompt_dir: str | Path | None = None) -> list[Request]:
    """The lines of an input JSONL, checked (see the module doc)."""
    from songgeneration.data.metadata import IDX_PATTERN

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: input JSONL not found")
    out, seen = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a JSON object")
        for key in ("idx", "gt_lyric"):
            if not isinstance(item.get(key), str):
                raise InputError(f"{where}: missing or non-string field '{key}'")
        idx = item["idx"]
        if not IDX_PATTERN.match(idx):
            raise InputError(f"{where}: idx {idx!r} cannot name a file")
        if idx in seen:
            raise InputError(f"{where}: idx '{idx}' repeats line {seen[idx]}")
        seen[idx] = number
        desc = item.get("descriptions")
        if desc is not None and not isinstance(desc, str):
            raise InputError(f"{where}: field 'descriptions' must be a string")
        prompt, auto = item.get("prompt_audio_path"), item.get("auto_prompt_audio_type")
        if prompt is not None and auto is not None:
            raise InputError(f"{where}: give prompt_audio_path or auto_prompt_audio_type, not both")
        prompt_path = None
        if prompt is not None:
            prompt_path = Path(prompt) if Path(prompt).is_absolute() else path.parent / prompt
            if not Path(prompt).is_absolute() and not prompt_path.is_file() and Path(prompt).is_file():
                prompt_path = Path(prompt)
            if not prompt_path.is_file():
                raise InputError(f"{where}: prompt_audio_path {prompt}: no such audio file")
        if auto is not None:
            if auto_prompt_dir is None:
                raise InputError(f"{where}: auto_prompt_audio_type '{auto}': the auto-prompt library is not "
                                 "available (give --auto-prompt-dir, or use prompt_audio_path)")
            if not (Path(auto_prompt_dir) / f"{auto}.npy").is_file():
                raise InputError(f"{where}: auto_prompt_audio_type '{auto}': no {auto}.npy in {auto_prompt_dir}")
        out.append(Request(idx, item["gt_lyric"], desc, prompt_path, auto, where))
    if not out:
        raise InputError(f"{path}: no input lines")
    return out


def limit_codes(lm, codebook_size: int) -> list:
    """Give ids ``codebook_size .. code_size - 1`` the lowest logit in every head; returns the hooks."""
    if codebook_size >= lm.config.code_size:
        return []

    def hook(_module, _inputs, output):
        output = output.clone()
        output[..., codebook_size: lm.config.code_size] = torch.finfo(output.dtype).min
        return output

    heads = [lm.transformer.lm_head, *lm.linears]
    return [h.register_forward_hook(hook) for h in heads]


def silence_codes(tokenizer) -> tuple[int, int]:
    """The tokenizer's vocal and accompaniment codes of 1 s of silence (most common code of each)."""
    zeros = torch.zeros(2, SAMPLE_RATE)
    codes = tokenizer.encode_separate(zeros, zeros).cpu()
    return int(codes[0].mode().values), int(codes[1].mode().values)


def prompt_tokens(tokenizer, path: Path, frames: int, special: int) -> torch.Tensor:
    """``[3, <=frames]`` prompt tokens of the first ``frames / 25`` s of ``path`` (see the module doc)."""
    n = frames * HOP_SAMPLES
    mix = read_stereo_48k(path)[:, :n]
    stems = find_stems(path)
    mixed = tokenizer.encode(mix).cpu()[:, :frames]
    if stems is not None and tokenizer.can_decode_separate:
        vocal, inst = (read_stereo_48k(s)[:, :n] for s in stems)
        m = min(mix.shape[1], vocal.shape[1], inst.shape[1])
        sep = tokenizer.encode_separate(vocal[:, :m], inst[:, :m]).cpu()[:, :frames]
        t = min(mixed.shape[1], sep.shape[1])
        return torch.cat([mixed[:, :t], sep[:, :t]]).long()
    return torch.cat([mixed, torch.full((2, mixed.shape[1]), special, dtype=torch.long)]).long()


def auto_prompt(folder: Path, kind: str, seed: int) -> torch.Tensor:
    arr = np.load(folder / f"{kind}.npy", allow_pickle=False)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != 3:
        raise InputError(f"{folder / (kind + '.npy')}: expected [3, P] or [N, 3, P] tokens, got {arr.shape}")
    pick = np.random.default_rng(seed).integers(len(arr))
    return torch.from_numpy(arr[pick].astype(np.int64))


def decode_audio(tokenizer, tokens: torch.Tensor, generate_type: str) -> dict[str, torch.Tensor]:
    """``{suffix: wav [2, N]}``: ``""`` (the song or the chosen stem), ``"_vocal"``, ``"_bgm"``."""
    def mixture():
        if tokenizer.can_decode_separate:
            return tokenizer.decode(tokens[1:3])
        return tokenizer.decode(tokens[0:1])

    def stem(row: int):
        vocal_silence, bgm_silence = silence_codes(tokenizer)
        codes = tokens[1:3].clone()  # rows: vocal, accompaniment
        if row == 1:
            codes[1] = bgm_silence
        else:
            codes[0] = vocal_silence
        return tokenizer.decode(codes)

    if generate_type == "mixed":
        return {"": mixture()}
    if generate_type == "vocal":
        return {"": stem(1)}
    if generate_type == "bgm":
        return {"": stem(2)}
    return {"": mixture(), "_vocal": stem(1), "_bgm": stem(2)}


def free_model(model) -> None:
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def lyric_tags(ckpt_dir: Path) -> list[str]:
    from songgeneration.models.config import load_config

    return structure_tags(load_config(Path(ckpt_dir) / "config.yaml"))


def check_lyrics(requests: list[Request], tags: list[str], language: str = "auto") -> list[str]:
    out = []
    for r in requests:
        try:
            out.append(normalize_lyrics(r.gt_lyric, tags, language))
        except LyricsError as e:
            raise InputError(f"{r.where}: gt_lyric: {e}") from None
    return out
