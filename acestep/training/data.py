"""Cached songs (``acestep.bin.cache_latents``) → padded training batches.

:func:`load_songs` reads the cut manifest (the arrays stay on disk until a batch needs them).
:class:`FrameBudgetSampler` is a step-based sampler for :class:`shirabe.train.loop.Trainer`:
each epoch it shuffles the songs (seeded by ``seed`` and the epoch) and, with ``batch_frames``
0 (the default, as the released trainer), makes one batch per song; with ``batch_frames > 0``
it packs songs of similar length (sorted within shuffled pools) into batches whose padded size
(songs × longest) stays within that many latent frames; a longer song is a batch by itself.
``crop_frames > 0`` cuts every song longer than that to a window of that many frames, placed at
random per song and epoch. The tag order of each song (one of the cache's K prompts) is also
drawn per song and epoch. Every draw comes from ``(seed, epoch, position)``, so the sampler's
state is just ``(epoch, position)`` and a resumed run draws the same batches.

:func:`collate` pads: latents [B, 8, 16, T] with an attention mask [B, T] (1 on the song's
frames), prompt states [B, L, 768] with their mask, lyric ids [B, S] with their mask (an
instrumental's mask is all 0), speaker embeddings zeros [B, 512] (the cache has none, as the
released dataset).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from acestep.training.cache import MANIFEST
from shirabe.cli import InputError

logger = logging.getLogger(__name__)
SPEAKER_DIM = 512
CUSTOM_KEYS = ("latent", "text_hidden", "lyric_ids", "frames", "text_lengths", "has_lyrics")


@dataclass
class Song:
    cut: object  # lhotse MonoCut with the cache's custom fields

    @property
    def id(self) -> str:
        return self.cut.id

    @property
    def frames(self) -> int:
        return int(self.cut.custom["frames"])

    @property
    def num_orders(self) -> int:
        return len(self.cut.custom["text_lengths"])


def load_songs(cache_dir: str | Path) -> list[Song]:
    """The songs of ``cache_dir/cuts.jsonl.gz``; one-line errors for a missing or foreign manifest."""
    from lhotse import CutSet

    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: no cache manifest (run acestep.bin.cache_latents first)")
    try:
        cuts = list(CutSet.from_file(path))
    except Exception as exc:  # lhotse raises several error types
        raise InputError(f"{path}: unreadable cut manifest ({type(exc).__name__}: {exc})") from None
    songs = []
    for cut in cuts:
        custom = cut.custom or {}
        missing = [k for k in CUSTOM_KEYS if k not in custom]
        if missing:
            raise InputError(f"{path}: cut {cut.id} has no {missing[0]!r} field (not an ACE-Step latent cache)")
        songs.append(Song(cut))
    if not songs:
        raise InputError(f"{path}: the cache holds no songs")
    return songs


@dataclass
class Example:
    id: str
    latent: np.ndarray  # [8, 16, T]
    text: np.ndarray  # [L, 768]
    lyric_ids: np.ndarray  # [S]
    has_lyrics: bool


def load_example(song: Song, order: int, start: int, frames: int) -> Example:
    cut = song.cut
    latent = np.asarray(cut.load_custom("latent"), dtype=np.float32)[..., start:start + frames]
    text = np.asarray(cut.load_custom("text_hidden"), dtype=np.float32)[order]
    text = text[: int(cut.custom["text_lengths"][order])]
    ids = np.asarray(cut.load_custom("lyric_ids"), dtype=np.int64)
    return Example(cut.id, latent, text, ids, bool(cut.custom["has_lyrics"]))


def collate(examples: list[Example]) -> dict:
    b = len(examples)
    t = max(e.latent.shape[-1] for e in examples)
    c, h = examples[0].latent.shape[:2]
    length = max(e.text.shape[0] for e in examples)
    s = max(e.lyric_ids.shape[0] for e in examples)
    latents, mask = torch.zeros(b, c, h, t), torch.zeros(b, t)
    text, text_mask = torch.zeros(b, length, examples[0].text.shape[-1]), torch.zeros(b, length, dtype=torch.long)
    ids, ids_mask = torch.zeros(b, s, dtype=torch.long), torch.zeros(b, s, dtype=torch.long)
    for i, e in enumerate(examples):
        n = e.latent.shape[-1]
        latents[i, ..., :n] = torch.from_numpy(e.latent)
        mask[i, :n] = 1.0
        text[i, : e.text.shape[0]] = torch.from_numpy(e.text)
        text_mask[i, : e.text.shape[0]] = 1
        ids[i, : e.lyric_ids.shape[0]] = torch.from_numpy(e.lyric_ids)
        if e.has_lyrics:
            ids_mask[i, : e.lyric_ids.shape[0]] = 1
    return {"ids": [e.id for e in examples], "latents": latents, "attention_mask": mask, "text_hidden": text,
            "text_mask": text_mask, "lyric_ids": ids, "lyric_mask": ids_mask, "speaker": torch.zeros(b, SPEAKER_DIM)}


class FrameBudgetSampler:
    """Batches of cached songs; see the module docstring."""

    def __init__(self, songs: list[Song], batch_frames: int = 0, crop_frames: int = 0, seed: int = 0,
                 pool_size: int = 100):
        if not songs:
            raise InputError("no training songs")
        self.songs, self.batch_frames, self.crop_frames = songs, int(batch_frames), int(crop_frames)
        self.seed, self.pool_size = seed, pool_size
        self.epoch, self.position = 0, 0
        self._plan = self._make_plan(self.epoch)
        if self.batch_frames > 0:
            over = sum(self.length(s) > self.batch_frames for s in songs)
            if over:
                logger.warning("%d songs are longer than --batch-frames %d on their own; each is a batch of one",
                               over, self.batch_frames)

    def length(self, song: Song) -> int:
        return min(song.frames, self.crop_frames) if self.crop_frames > 0 else song.frames

    def _make_plan(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = [int(i) for i in rng.permutation(len(self.songs))]
        if self.batch_frames <= 0:
            return [[i] for i in order]
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = sorted(order[start:start + self.pool_size], key=lambda i: self.length(self.songs[i]))
            current: list[int] = []
            for i in pool:
                longest = max([self.length(self.songs[j]) for j in current] + [self.length(self.songs[i])])
                if current and longest * (len(current) + 1) > self.batch_frames:
                    batches.append(current)
                    current = []
                current.append(i)
            if current:
                batches.append(current)
        return [batches[k] for k in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self._plan)

    def batch(self) -> dict:
        if self.position >= len(self._plan):
            self.epoch += 1
            self.position = 0
            self._plan = self._make_plan(self.epoch)
        rng = np.random.default_rng([self.seed, self.epoch, self.position, 1])
        examples = []
        for i in self._plan[self.position]:
            song = self.songs[i]
            order = int(rng.integers(song.num_orders))
            frames = self.length(song)
            start = int(rng.integers(song.frames - frames + 1))
            examples.append(load_example(song, order, start, frames))
        self.position += 1
        return collate(examples)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._plan = self._make_plan(self.epoch)
