"""Scores of a SongGeneration system: teacher-forced accuracy, generated songs, audio distances.

1. **Teacher-forced scores** on held-out prepared songs (the pinned prepared-data format): the
   checkpoint in eval mode (no dropout, no condition dropout), batches of
   :func:`songgeneration.training.data.fixed_batches`, logits and counted positions of
   :func:`songgeneration.training.loss.forward_logits` and per-stream sums of
   :func:`songgeneration.training.loss.stream_losses` (the training objective itself). Sums are
   accumulated over all batches, so the mean cross-entropy is the one the training loss gives
   for all songs in one batch; top-1 / top-10 accuracy per stream count EOS as training does.
2. **Generated songs** (``generated.jsonl`` of ``songgeneration.bin.generate``): frames and
   seconds, whether the end-of-song token was reached, and the **prompt ban share**: over the
   songs generated with a prompt file, the share of generated mixed-stream tokens that are
   among the prompt's mixed-stream ids (0 when generation banned them).
3. **Log-mel distance** between two recordings (:func:`log_mel_distance`): each is mixed to mono
   (channel mean), resampled 48 → 24 kHz and turned into the 100-bin Vocos log-mel
   (:func:`shirabe.audio.mel.vocos_mel`: n_fft 1024, hop 256, natural log of the magnitude mel,
   floor 1e-5); the distance is the mean absolute difference over bins and frames of the
   common frames, in nats. A gain of ``g`` gives ``|ln g|`` (where the floor is not reached).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError
from songgeneration.training.loss import STREAMS, forward_logits, stream_losses

MEL_RATE = 24000


# ---------------------------------------------------------------------------
# Teacher-forced scores


@torch.no_grad()
def teacher_forced_scores(model, batches: list[dict], device, seed: int = 0) -> dict[str, float]:
    """``ce`` (all streams), ``frames`` and per stream ``ce_<s>``, ``acc1_<s>``, ``acc10_<s>``."""
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    try:
        for batch in batches:
            logits, targets, keep = forward_logits(model, batch, device)
            parts = stream_losses(logits, targets, keep)
            for key, value in parts.items():
                value = value.detach().double().cpu()
                sums[key] = sums[key] + value if key in sums else value
    finally:
        model.train(was_training)
    count = sums["count"]
    total = float(count.sum())
    out = {"ce": float(sums["ce"].sum()) / max(total, 1.0), "frames": total,
           "songs": float(sum(int(b["codes"].shape[0]) for b in batches))}
    for q, name in enumerate(STREAMS[: count.shape[0]]):
        n = max(float(count[q]), 1.0)
        out[f"ce_{name}"] = float(sums["ce"][q]) / n
        out[f"acc1_{name}"] = float(sums["hit1"][q]) / n
        out[f"acc10_{name}"] = float(sums["hit10"][q]) / n
    return out


# ---------------------------------------------------------------------------
# Generated songs


@dataclass
class Generated:
    """One line of ``generated.jsonl`` with its tokens ``[3, T]``."""

    idx: str
    frames: int
    seconds: float
    eos: bool
    tokens: np.ndarray
    audio: Path | None
    where: str
    prompt_audio_path: Path | None = None
    extra: dict = field(default_factory=dict)


def read_generated(folder: str | Path) -> list[Generated]:
    """The songs of ``folder/generated.jsonl`` with their tokens (one-line errors naming file and line)."""
    folder = Path(folder)
    path = folder / "generated.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: generated.jsonl not found (run songgeneration.bin.generate first)")
    out: list[Generated] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a JSON object")
        for name, kind in (("idx", str), ("frames", int), ("eos", bool), ("tokens", str)):
            if not isinstance(item.get(name), kind) or (kind is int and isinstance(item[name], bool)):
                raise InputError(f"{where}: missing or wrong-typed field '{name}'")
        tokens_path = folder / item["tokens"]
        if not tokens_path.is_file():
            raise InputError(f"{where}: tokens file {tokens_path} not found")
        try:
            tokens = np.load(tokens_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{tokens_path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
        if tokens.dtype.kind not in "iu" or tokens.ndim != 2 or tokens.shape[0] != len(STREAMS):
            raise InputError(f"{tokens_path}: tokens must be integer [3, T], got {tokens.dtype} {list(tokens.shape)}")
        if tokens.shape[1] != item["frames"]:
            raise InputError(f"{where}: field 'frames' is {item['frames']}, but {tokens_path} has "
                             f"{tokens.shape[1]} frames")
        audio = None
        files = item.get("audio") or []
        if not isinstance(files, list):
            raise InputError(f"{where}: field 'audio' must be a list of files")
        if files:
            audio = folder / files[0]
            if not audio.is_file():
                raise InputError(f"{where}: audio file {audio} not found")
        elif item["frames"] > 0:
            raise InputError(f"{where}: no audio file for a song of {item['frames']} frames")
        out.append(Generated(item["idx"], item["frames"], item["frames"] / 25, item["eos"],
                             tokens.astype(np.int64), audio, where))
    if not out:
        raise InputError(f"{path}: no songs")
    return out


def read_prompt_paths(path: str | Path) -> dict[str, Path | None]:
    """``idx -> prompt_audio_path`` of a generation input JSONL (relative paths as generation resolves them)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: input JSONL not found")
    out: dict[str, Path | None] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("idx"), str):
            raise InputError(f"{where}: expected a JSON object with a string field 'idx'")
        prompt = item.get("prompt_audio_path")
        if prompt is None:
            out[item["idx"]] = None
            continue
        if not isinstance(prompt, str):
            raise InputError(f"{where}: field 'prompt_audio_path' must be a string")
        resolved = Path(prompt) if Path(prompt).is_absolute() else path.parent / prompt
        if not resolved.is_file() and Path(prompt).is_file():
            resolved = Path(prompt)
        if not resolved.is_file():
            raise InputError(f"{where}: prompt_audio_path {prompt}: no such audio file")
        out[item["idx"]] = resolved
    return out


def ban_counts(generated_mixed: np.ndarray, prompt_mixed) -> tuple[int, int]:
    """``(generated mixed tokens that occur among the prompt's ids, generated mixed tokens)``."""
    banned = np.unique(np.asarray(prompt_mixed, dtype=np.int64))
    gen = np.asarray(generated_mixed, dtype=np.int64)
    return int(np.isin(gen, banned).sum()), int(gen.size)


def generation_summary(songs: list[Generated], ban: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Counts and means of the generated songs; ``ban`` is :func:`ban_counts` per prompted song."""
    n = len(songs)
    frames = [s.frames for s in songs]
    hits, total = sum(h for h, _ in ban.values()), sum(t for _, t in ban.values())
    return {"songs": n, "frames_total": int(sum(frames)), "frames_mean": sum(frames) / n,
            "seconds_mean": sum(frames) / n / 25, "seconds_total": sum(frames) / 25,
            "eos_songs": sum(s.eos for s in songs), "eos_share": sum(s.eos for s in songs) / n,
            "prompted_songs": len(ban), "prompt_tokens_generated": total, "prompt_tokens_copied": hits,
            "prompt_ban_share": hits / total if total else float("nan")}


# ---------------------------------------------------------------------------
# Audio


def mono_24k(wav, sample_rate: int) -> torch.Tensor:
    """``[C, N]`` or ``[N]`` audio → mono float32 ``[N']`` at 24 kHz."""
    from shirabe.audio.resample import resample

    x = torch.as_tensor(wav, dtype=torch.float32)
    if x.dim() == 2:
        x = x.mean(0)
    if sample_rate != MEL_RATE:
        x = torch.from_numpy(np.ascontiguousarray(resample(x.numpy(), sample_rate, MEL_RATE), dtype=np.float32))
    return x


def log_mel_distance(a, b, sample_rate: int = 48000, num_samples: int | None = None) -> float:
    """Mean absolute log-mel difference in nats (see the module docstring) over the first ``num_samples``
    (default: the shorter signal) of two ``[C, N]`` or ``[N]`` signals at ``sample_rate``."""
    from shirabe.audio.mel import vocos_mel

    a, b = torch.as_tensor(a), torch.as_tensor(b)
    n = min(a.shape[-1], b.shape[-1]) if num_samples is None else min(num_samples, a.shape[-1], b.shape[-1])
    if n <= 0:
        raise ValueError("no common samples to compare")
    ma = vocos_mel(mono_24k(a[..., :n], sample_rate)[None])[0]
    mb = vocos_mel(mono_24k(b[..., :n], sample_rate)[None])[0]
    t = min(ma.shape[-1], mb.shape[-1])
    return float((ma[:, :t] - mb[:, :t]).abs().mean())


def round_trip(tokenizer, mix: torch.Tensor, stems: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Reference → codes → audio, the way generation decodes: vocal + accompaniment codes when the
    tokenizer has stem codebooks and the stems are there, else the mixed codes."""
    if stems is not None and tokenizer.can_decode_separate:
        vocal, inst = stems
        m = min(mix.shape[1], vocal.shape[1], inst.shape[1])
        return tokenizer.decode(tokenizer.encode_separate(vocal[:, :m], inst[:, :m]))
    return tokenizer.decode(tokenizer.encode(mix))


# ---------------------------------------------------------------------------
# Report


ROWS = (
    ("teacher-forced CE (all streams, nats)", "tf.ce", "{:.4f}"),
    ("teacher-forced CE mixed / vocal / accompaniment", ("tf.ce_mixed", "tf.ce_vocal", "tf.ce_accompaniment"),
     "{:.4f}"),
    ("top-1 accuracy mixed / vocal / accompaniment",
     ("tf.acc1_mixed", "tf.acc1_vocal", "tf.acc1_accompaniment"), "{:.3f}"),
    ("top-10 accuracy mixed / vocal / accompaniment",
     ("tf.acc10_mixed", "tf.acc10_vocal", "tf.acc10_accompaniment"), "{:.3f}"),
    ("held-out songs / counted positions", ("tf.songs", "tf.frames"), "{:.0f}"),
    ("generated songs", "gen.songs", "{:.0f}"),
    ("frames per song (mean) / seconds per song (mean)", ("gen.frames_mean", "gen.seconds_mean"), "{:.2f}"),
    ("share of songs ending by EOS", "gen.eos_share", "{:.3f}"),
    ("prompted songs / their generated mixed tokens", ("gen.prompted_songs", "gen.prompt_tokens_generated"),
     "{:.0f}"),
    ("share of generated mixed tokens found in the prompt", "gen.prompt_ban_share", "{:.4f}"),
    ("songs with a reference recording", "audio.songs", "{:.0f}"),
    ("log-mel distance: tokenizer round trip (ceiling)", "audio.round_trip_mean", "{:.3f}"),
    ("log-mel distance: generated vs reference", "audio.generated_mean", "{:.3f}"),
)


def _get(result: dict, key: str):
    group, name = key.split(".", 1)
    return result.get(group, {}).get(name)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return spec.format(value)


def markdown_table(system: str, result: dict, notes: str = "") -> str:
    """The section body: a heading, the table and ``notes``."""
    lines = [f"### SongGeneration: {system}", "", "| metric | value |", "|---|---|"]
    for label, keys, spec in ROWS:
        keys = (keys,) if isinstance(keys, str) else keys
        lines.append(f"| {label} | {' / '.join(_fmt(_get(result, k), spec) for k in keys)} |")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
