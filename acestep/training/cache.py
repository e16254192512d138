"""The latent cache: songs in ACE-Step's seed-file layout → what one training step needs.

A data folder holds, per song ``{key}``::

    {key}.mp3 | {key}.wav | {key}.flac     the song (--target audio), or, in the mini corpus's
    {key}_mix.wav / {key}_inst.wav         accompaniment part, the mix or the band (--target mix|inst)
    {key}_prompt.txt                       comma-separated tags (required, not empty)
    {key}_lyrics.txt                       the lyrics (optional: missing or blank = instrumental)

Per song the cache stores (one lhotse ``MonoCut`` per song in ``cuts.jsonl.gz``, arrays as
``.npy`` files written by lhotse's ``NumpyFilesWriter`` under ``storage/``, exact float32):

- ``latent`` [8, 16, T]: :meth:`acestep.dcae.MusicDCAE.encode` of the audio at 48 kHz stereo
  (mono repeated, first two channels kept, clamped to [-1, 1], padded to at least 3 s, cut to
  ``--max-duration``); ``frames`` = T (training uses an all-ones mask over the T frames);
- ``text_hidden`` [K, L, 768] with ``text_lengths`` (K ints): the UMT5 hidden states of K prompts,
  each the song's tags in a different random order joined by ", " (cut to 256 characters), padded
  with zeros to the longest; the prompts themselves are in ``prompts``. The released trainer
  shuffles the tags anew for every item it reads; a cache keeps K orders
  (``--num-tag-orders``), and the trainer picks one per song per epoch;
- ``lyric_ids`` [S] int64 and ``has_lyrics``: :class:`acestep.text.lyrics.LyricTokenizer` ids
  (``--lyrics-language``, ``--romanizer``),
  ``[0]`` with ``has_lyrics`` false for an instrumental (its lyric mask is 0);
- ``tags``, ``source`` (the audio file), ``num_samples`` and ``sampling_rate`` of the 48 kHz audio.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shirabe.audio import load_audio
from shirabe.cli import InputError

SAMPLE_RATE = 48000
MIN_SECONDS = 3.0
MAX_ZERO_FRACTION = 0.95
MAX_PROMPT_CHARS = 256
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac")
TARGETS = ("audio", "mix", "inst")
PART_SUFFIXES = ("_mix", "_inst", "_vocal")
MANIFEST = "cuts.jsonl.gz"
JOURNAL = ".cuts.partial.jsonl"
REJECTS = "rejects.txt"
SETTINGS = "cache_settings.json"
STORAGE = "storage"


@dataclass(frozen=True)
class SeedItem:
    key: str
    audio: Path
    prompt: Path
    lyrics: Path


def find_items(data_dir: Path, target: str = "audio") -> tuple[list[SeedItem], list[tuple[str, str, str]]]:
    """The songs of ``data_dir`` (sorted by key) and ``(key, path, reason)`` of ambiguous ones.

    ``audio``: ``{key}.mp3|wav|flac`` (files ending in ``_mix``/``_inst``/``_vocal`` are parts, not
    songs); ``mix``/``inst``: ``{key}_mix.wav`` / ``{key}_inst.wav``.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such data folder")
    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    by_key: dict[str, list[Path]] = {}
    for path in sorted(data_dir.iterdir()):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        stem = path.stem
        if target == "audio":
            if stem.endswith(PART_SUFFIXES):
                continue
            key = stem
        else:
            suffix = f"_{target}"
            if not stem.endswith(suffix) or path.suffix.lower() != ".wav":
                continue
            key = stem[: -len(suffix)]
        by_key.setdefault(key, []).append(path)
    items, ambiguous = [], []
    for key in sorted(by_key):
        paths = by_key[key]
        if len(paths) > 1:
            ambiguous.append((key, str(paths[0]), f"several audio files: {', '.join(p.name for p in paths)}"))
            continue
        items.append(SeedItem(key, paths[0], data_dir / f"{key}_prompt.txt", data_dir / f"{key}_lyrics.txt"))
    return items, ambiguous


def read_tags(path: Path) -> list[str]:
    """The comma-separated tags of a prompt file; an InputError for a missing or empty one."""
    if not path.is_file():
        raise InputError(f"{path}: missing prompt file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable prompt file ({exc})") from None
    tags = [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]
    if not tags:
        raise InputError(f"{path}: empty prompt file (no tags)")
    return tags


def tag_orders(key: str, tags: list[str], num_orders: int, seed: int = 0) -> list[str]:
    """``num_orders`` prompts: the tags shuffled (seeded by ``seed`` and the key), joined by ", "."""
    rng = random.Random(zlib.crc32(f"{seed}:{key}".encode()))
    prompts = []
    for _ in range(num_orders):
        order = list(tags)
        rng.shuffle(order)
        prompts.append(", ".join(order)[:MAX_PROMPT_CHARS])
    return prompts


def read_lyrics(path: Path) -> str | None:
    """The lyrics text, or None for a missing or blank file (an instrumental)."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable lyrics file ({exc})") from None
    return text if text.strip() else None


def prepare_audio(path: Path, max_duration: float) -> torch.Tensor:
    """[2, N] float32 at 48 kHz: stereo (mono repeated), clamped, padded to 3 s, cut to ``max_duration``."""
    from acestep.dcae.resample import resample

    wav, sr = load_audio(path, mono=False)  # InputError for missing, empty or undecodable files
    wav = torch.from_numpy(np.atleast_2d(wav.T) if wav.ndim == 2 else wav[None])
    if wav.shape[0] == 1:
        wav = wav.repeat(2, 1)
    wav = wav[:2]
    if wav.shape[1] == 0:
        raise InputError(f"{path}: empty audio (no samples)")
    wav = resample(wav, sr, SAMPLE_RATE).clamp(-1.0, 1.0)
    if wav.shape[1] < MIN_SECONDS * SAMPLE_RATE:
        wav = torch.nn.functional.pad(wav, (0, int(MIN_SECONDS * SAMPLE_RATE) - wav.shape[1]))
    if float((wav == 0).float().mean()) > MAX_ZERO_FRACTION:
        raise InputError(f"{path}: silent audio (more than {MAX_ZERO_FRACTION:.0%} of the samples are zero)")
    return wav[:, : int(max_duration * SAMPLE_RATE)].contiguous()


@dataclass
class CachedSong:
    latent: np.ndarray  # [8, 16, T] float32
    text_hidden: np.ndarray  # [K, L, 768] float32
    text_lengths: list[int]
    lyric_ids: np.ndarray  # [S] int64
    has_lyrics: bool
    prompts: list[str]
    tags: list[str]
    num_samples: int


class SongEncoder:
    """DCAE + UMT5 + lyric tokenizer: :meth:`__call__` turns one :class:`SeedItem` into a :class:`CachedSong`."""

    def __init__(self, dcae, text_encoder, lyric_tokenizer, lyric_options: dict, max_duration: float,
                 num_tag_orders: int = 1, seed: int = 0):
        self.dcae, self.text_encoder, self.lyric_tokenizer = dcae, text_encoder, lyric_tokenizer
        self.lyric_options = dict(lyric_options)
        self.max_duration, self.num_tag_orders, self.seed = max_duration, num_tag_orders, seed

    def lyric_ids(self, item: SeedItem) -> tuple[list[int], bool]:
        text = read_lyrics(item.lyrics)
        if text is None:
            return [0], False
        try:
            ids = self.lyric_tokenizer.encode(text, source=str(item.lyrics), **self.lyric_options)
        except InputError:
            raise
        except Exception as exc:  # a tokenizer or romanizer failure on one line
            raise InputError(f"{item.lyrics}: lyrics cannot be tokenized ({type(exc).__name__}: {exc})") from None
        ids = [int(i) for i in ids]
        if not ids or ids == [0]:
            return [0], False
        return ids, True

    @torch.no_grad()
    def __call__(self, item: SeedItem) -> CachedSong:
        tags = read_tags(item.prompt)
        ids, has_lyrics = self.lyric_ids(item)
        wav = prepare_audio(item.audio, self.max_duration)
        device = next(self.dcae.parameters()).device
        latents, _ = self.dcae.encode(wav[None].to(device), torch.tensor([wav.shape[1]]), sr=SAMPLE_RATE)
        prompts = tag_orders(item.key, tags, self.num_tag_orders, self.seed)
        hidden, mask = self.text_encoder.encode(prompts)
        lengths = [int(m.sum()) for m in mask]
        text = torch.zeros(len(prompts), max(lengths), hidden.shape[-1])
        for k, m in enumerate(mask):
            text[k, : lengths[k]] = hidden[k][m.bool()].float().cpu()
        return CachedSong(latent=latents[0].float().cpu().numpy(), text_hidden=text.numpy(), text_lengths=lengths,
                          lyric_ids=np.asarray(ids, dtype=np.int64), has_lyrics=has_lyrics, prompts=prompts,
                          tags=tags, num_samples=int(wav.shape[1]))


def song_cut(key: str, song: CachedSong, writer, source: Path):
    """The ``MonoCut`` of a cached song, its arrays written by ``writer`` (a ``NumpyFilesWriter``)."""
    from lhotse import MonoCut

    custom = {
        "latent": writer.store_array(f"{key}_latent", song.latent),
        "text_hidden": writer.store_array(f"{key}_text", song.text_hidden),
        "lyric_ids": writer.store_array(f"{key}_lyrics", song.lyric_ids),
        "frames": int(song.latent.shape[-1]),
        "text_lengths": list(song.text_lengths),
        "has_lyrics": bool(song.has_lyrics),
        "prompts": list(song.prompts),
        "tags": list(song.tags),
        "source": str(source),
        "num_samples": song.num_samples,
        "sampling_rate": SAMPLE_RATE,
    }
    return MonoCut(id=key, start=0.0, duration=round(song.num_samples / SAMPLE_RATE, 6), channel=0, custom=custom)
