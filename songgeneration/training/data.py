"""The prepared songs (``prepare_data``'s output) read into training batches.

The folder ``prepared_data_dir`` holds ``manifest.jsonl``, one song a line::

    {"idx": str, "tokens": "tokens/<idx>.npy", "prompt": "prompt/<idx>.npy" | null, "frames": int,
     "duration": float, "gt_lyric": str, "descriptions": str}

``tokens`` is int64 ``[3, frames]`` (rows: mixed, vocal, accompaniment) at 25 Hz, ``prompt`` int64
``[3, P]``: the style prompt cut from the song's own tokens, ``P`` = the model's ``prompt_len`` x 25
(250 frames for upstream's 10 s). Paths are relative to the folder. Audio ids are ``0..code_size-1``.

**48 kHz.** The audio tokenizers take 48 kHz audio and give ``N * 25 // 48000 + 1`` frames for
``N`` samples, so a song of ``duration`` seconds has ``floor(duration * 25) + 1`` frames; a line
whose ``frames`` is more than one frame off that (audio read at 44.1 kHz as if it were 48 kHz
gives 8 % fewer frames) is rejected.

A batch (:func:`collate`) holds ``codes`` ``[B, 3, T + 1]`` (``T`` the longest song): each song's
frames, then EOS (``code_size``) at its true end and the special id (``code_size + 1``, never
counted by the loss) after it; ``lengths`` (frames before EOS), the lyric and description ids
(through the model's Qwen2 tokenizer, ``<|im_start|>`` + text, padded to the conditioners'
``max_len``) and ``prompt`` ``[B, 3, P]`` (all special for a song without one: the absent prompt).

:class:`SongSampler` is a step-based sampler for :class:`shirabe.train.loop.Trainer`: per epoch a
seeded permutation of the songs cut into batches of ``batch_size``; its state is
``(epoch, position)``, so a resumed run draws the same batches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError

MANIFEST_NAME = "manifest.jsonl"
FRAME_RATE = 25
SAMPLE_RATE = 48000
STREAMS = ("mixed", "vocal", "accompaniment")
FIELDS = {"idx": str, "tokens": str, "frames": int, "duration": (int, float), "gt_lyric": str,
          "descriptions": str}


@dataclass
class Song:
    idx: str
    tokens: Path
    prompt: Path | None
    frames: int
    duration: float
    lyric: str
    description: str


def expected_frames(duration: float) -> int:
    """Frames the 48 kHz, 25 Hz tokenizers give for ``duration`` seconds of audio."""
    return int(math.floor(duration * FRAME_RATE + 1e-6)) + 1


def _read_ids(path: Path, rows: int, frames: int | None, code_size: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
    if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[0] != rows or \
            (frames is not None and arr.shape[1] != frames):
        want = f"[{rows}, {frames if frames is not None else 'P'}]"
        raise InputError(f"{path}: {what} must be integer {want}, got {arr.dtype} {list(arr.shape)}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= code_size):
        raise InputError(f"{path}: {what} ids must lie in 0..{code_size - 1}, got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.int64)


def load_manifest(folder: str | Path, code_size: int, prompt_frames: int, check_files: bool = True) -> list[Song]:
    """The songs of ``folder/manifest.jsonl`` (one-line errors naming the file, line and field).

    ``prompt_frames`` is the model's prompt length in frames; every prompt must have exactly that many.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{path}: manifest not found (run songgeneration.bin.prepare_data first)")
    songs: list[Song] = []
    seen: set[str] = set()
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
        for name, kind in FIELDS.items():
            if name not in item:
                raise InputError(f"{where}: missing field '{name}'")
            if isinstance(item[name], bool) or not isinstance(item[name], kind):
                raise InputError(f"{where}: field '{name}' has the wrong type ({type(item[name]).__name__})")
        prompt = item.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise InputError(f"{where}: field 'prompt' must be a path or null")
        if item["idx"] in seen:
            raise InputError(f"{where}: field 'idx': {item['idx']!r} appears twice")
        seen.add(item["idx"])
        frames, duration = item["frames"], float(item["duration"])
        if frames < 1:
            raise InputError(f"{where}: field 'frames' must be positive, got {frames}")
        if abs(frames - expected_frames(duration)) > 1:
            raise InputError(f"{where}: field 'frames' is {frames}, but {duration:g} s of 48 kHz audio gives "
                             f"{expected_frames(duration)} frames at 25 Hz (tokens from audio at another rate?)")
        song = Song(item["idx"], folder / item["tokens"], folder / prompt if prompt is not None else None, frames,
                    duration, item["gt_lyric"], item["descriptions"])
        if check_files:
            _read_ids(song.tokens, len(STREAMS), frames, code_size, "tokens")
            if song.prompt is not None:
                p = _read_ids(song.prompt, len(STREAMS), None, code_size, "prompt")
                if p.shape[1] != prompt_frames:
                    raise InputError(f"{song.prompt}: the prompt has {p.shape[1]} frames, the model's prompt_len "
                                     f"takes {prompt_frames} ({prompt_frames / FRAME_RATE:g} s at 25 Hz)")
        songs.append(song)
    if not songs:
        raise InputError(f"{path}: no songs")
    return songs


@dataclass
class TextIds:
    """Tokenisers of the lyric and description conditioners (``list[str] -> [B, max_len]``)."""

    lyric: Callable[[list], torch.Tensor]
    description: Callable[[list], torch.Tensor]


def text_ids_of(model) -> TextIds:
    """The tokenisers of a LeLM (its Qwen2 tokenizer must be attached)."""
    cp = model.condition_provider
    return TextIds(cp.lyric.token_ids, cp.description.token_ids)


def collate(songs: list[Song], text: TextIds, code_size: int, prompt_frames: int) -> dict:
    """One batch (see the module docstring)."""
    eos, special = code_size, code_size + 1
    longest = max(s.frames for s in songs)
    codes = torch.full((len(songs), len(STREAMS), longest + 1), special, dtype=torch.long)
    prompt = torch.full((len(songs), len(STREAMS), prompt_frames), special, dtype=torch.long)
    for b, s in enumerate(songs):
        codes[b, :, :s.frames] = torch.from_numpy(_read_ids(s.tokens, len(STREAMS), s.frames, code_size, "tokens"))
        codes[b, :, s.frames] = eos
        if s.prompt is not None:
            prompt[b] = torch.from_numpy(_read_ids(s.prompt, len(STREAMS), prompt_frames, code_size, "prompt"))
    return {"ids": [s.idx for s in songs], "codes": codes,
            "lengths": torch.tensor([s.frames for s in songs], dtype=torch.long),
            "lyric_ids": text.lyric([s.lyric for s in songs]),
            "desc_ids": text.description([s.description for s in songs]), "prompt": prompt}


class SongSampler:
    """Batches of ``batch_size`` songs in a seeded order per epoch, forever (see the module docstring)."""

    def __init__(self, songs: list[Song], batch_size: int, text: TextIds, code_size: int, prompt_frames: int,
                 seed: int = 0, shuffle: bool = True):
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.songs, self.batch_size, self.text = songs, batch_size, text
        self.code_size, self.prompt_frames = code_size, prompt_frames
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.position = 0, 0
        self._plan_epoch, self._plan = -1, []

    def __len__(self) -> int:
        return math.ceil(len(self.songs) / self.batch_size)

    def plan(self, epoch: int) -> list[list[int]]:
        if epoch != self._plan_epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.songs)) if self.shuffle \
                else np.arange(len(self.songs))
            order = [int(i) for i in order]
            self._plan = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            self._plan_epoch = epoch
        return self._plan

    def batch(self) -> dict:
        plan = self.plan(self.epoch)
        chosen = plan[self.position]
        self.position += 1
        if self.position >= len(plan):
            self.epoch, self.position = self.epoch + 1, 0
        return collate([self.songs[i] for i in chosen], self.text, self.code_size, self.prompt_frames)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def fixed_batches(songs: list[Song], batch_size: int, text: TextIds, code_size: int, prompt_frames: int) -> list[dict]:
    """Every song once, in manifest order (validation)."""
    return [collate(songs[i:i + batch_size], text, code_size, prompt_frames)
            for i in range(0, len(songs), batch_size)]
