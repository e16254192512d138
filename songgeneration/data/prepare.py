"""Data preparation: ``metadata.jsonl`` → token tensors, prompts and manifests in ``prepared_data_dir``.

Layout written (paths in the manifest are relative to ``prepared_data_dir``):

* ``manifest.jsonl``: one line per prepared song, ``{"idx", "tokens": "tokens/<idx>.npy",
  "prompt": "prompt/<idx>.npy", "frames", "duration", "gt_lyric", "descriptions"}``, in metadata order;
* ``tokens/<idx>.npy``: int64 ``[3, T]`` (mixed, vocal, accompaniment) at 25 Hz, ``T = N // 1920 + 1``;
* ``prompt/<idx>.npy``: int64 ``[3, P]``, ``P = data.prompt_seconds * 25`` (see
  :mod:`songgeneration.data.prompt`);
* ``rejects.tsv``: ``idx<TAB>reason`` for every song of this run that was not prepared;
* ``recordings.jsonl.gz`` / ``supervisions.jsonl.gz``: lhotse manifests of the prepared songs
  (recording = the song file; supervision = the whole song, text = the lyrics, ``custom``
  holds the descriptions).

A song is rejected (and listed) for a bad metadata line, lyrics that do not fit the model's
format (:mod:`songgeneration.data.lyrics`, tags checked against the base model's ``config.yaml``),
a missing or unreadable audio file, stems of mismatched length, no stems and no usable separator
(:mod:`songgeneration.data.stems`), or a duration outside ``[data.min_duration,
data.max_duration]`` (a long song is skipped, not cut: a cut song would teach the model to end
songs mid-phrase).

Resumable: each finished song is written (tensors atomically, then its manifest line) before the
next starts; a rerun keeps every song whose manifest line and tensor files exist and only
refreshes its lyrics and descriptions from the metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError, get_logger
from songgeneration.data.lyrics import LyricsError, normalize_lyrics, structure_tags
from songgeneration.data.metadata import SongEntry, read_metadata
from songgeneration.data.prompt import cut_prompt
from songgeneration.data.stems import Separator, demucs_available, find_stems, load_song
from songgeneration.tokenizer import FRAME_RATE, SAMPLE_RATE, load_tokenizer

logger = get_logger(__name__)

MANIFEST = "manifest.jsonl"
REJECTS = "rejects.tsv"
RECORDINGS = "recordings.jsonl.gz"
SUPERVISIONS = "supervisions.jsonl.gz"


@dataclass
class PrepareResult:
    prepared: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path = Path(".")


@dataclass
class _Song:
    entry: SongEntry
    audio: Path
    gt_lyric: str


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)

    _atomic_write(path, write)


def read_manifest(out_dir: Path) -> dict[str, dict]:
    """Finished songs of an earlier run: manifest lines whose tensor files exist (others are redone)."""
    done: dict[str, dict] = {}
    path = out_dir / MANIFEST
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            files = [rec["tokens"]] + ([rec["prompt"]] if rec.get("prompt") else [])
            if all((out_dir / f).is_file() for f in files):
                done[rec["idx"]] = rec
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return done


def resolve_audio(config, entry: SongEntry, metadata_path: Path) -> Path:
    """``path`` as given when absolute, else under ``paths.raw_data_dir`` (or, when only there, beside
    the metadata file)."""
    p = Path(entry.path)
    if p.is_absolute():
        return p
    raw = config.resolve(config.paths.raw_data_dir) / p
    if not raw.exists() and (metadata_path.parent / p).exists():
        return metadata_path.parent / p
    return raw


def _duration_problem(path: Path, data) -> str | None:
    import soundfile as sf

    try:
        seconds = sf.info(str(path)).duration
    except Exception:  # unreadable: load_song names the file and the reason
        return None
    if seconds < data.min_duration:
        return f"{path}: too short ({seconds:.2f} s < data.min_duration {data.min_duration:g} s)"
    if seconds > data.max_duration:
        return f"{path}: too long ({seconds:.2f} s > data.max_duration {data.max_duration:g} s; songs are not cut)"
    return None


class _SeparatorSource:
    """The separator, loaded on first use; ``problem`` says why there is none."""

    def __init__(self, config, device):
        self.checkpoint = config.resolve(config.data.separator_checkpoint)
        self.device = device
        self._sep = None
        if self.checkpoint is None:
            self.problem = "data.separator_checkpoint is not set (no separator is downloaded)"
        elif not demucs_available():
            self.problem = "data.separator_checkpoint is set but the demucs package is not installed"
        elif not self.checkpoint.is_file():
            self.problem = f"separator checkpoint {self.checkpoint} not found"
        else:
            self.problem = None

    def get(self) -> Separator | None:
        if self.problem is None and self._sep is None:
            self._sep = Separator.load(self.checkpoint, self.device)
        return self._sep


def _load(song: _Song, data, separators: _SeparatorSource):
    problem = _duration_problem(song.audio, data)
    if problem is not None:
        raise InputError(problem)
    separator = None if find_stems(song.audio) is not None else separators.get()
    return load_song(song.audio, separator, separators.problem)


def _loaded(songs: list[_Song], data, separators, num_workers: int) -> Iterator[tuple[_Song, object]]:
    """``(song, (mix, vocal, accompaniment, how) | InputError)`` in order; audio read by worker threads."""

    def job(song):
        try:
            return _load(song, data, separators)
        except InputError as e:
            return e

    if num_workers <= 0:
        for song in songs:
            yield song, job(song)
        return
    with ThreadPoolExecutor(num_workers) as pool:
        pending = []
        for song in songs:
            pending.append((song, pool.submit(job, song)))
            if len(pending) > num_workers:
                s, fut = pending.pop(0)
                yield s, fut.result()
        for s, fut in pending:
            yield s, fut.result()


def _clean(reason: str) -> str:
    return " ".join(reason.split())


def write_rejects(out_dir: Path, rejects: list[tuple[str, str]]) -> None:
    text = "idx\treason\n" + "".join(f"{_clean(i)}\t{_clean(r)}\n" for i, r in rejects)
    _atomic_write(out_dir / REJECTS, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_lhotse(out_dir: Path, records: list[dict], audio: dict[str, Path]) -> None:
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings, supervisions = [], []
    for rec in records:
        try:
            recording = Recording.from_file(audio[rec["idx"]], recording_id=rec["idx"])
        except Exception as e:  # a file removed since it was prepared
            logger.warning("%s: no lhotse recording (%s)", audio[rec["idx"]], (str(e).splitlines() or ["?"])[0])
            continue
        recordings.append(recording)
        supervisions.append(SupervisionSegment(id=rec["idx"], recording_id=rec["idx"], start=0.0,
                                               duration=recording.duration, channel=recording.channel_ids,
                                               text=rec["gt_lyric"], custom={"descriptions": rec["descriptions"]}))
    for name, items in ((RECORDINGS, RecordingSet.from_recordings(recordings)),
                        (SUPERVISIONS, SupervisionSet.from_segments(supervisions))):
        tmp = out_dir / f".{name[: -len('.jsonl.gz')]}.tmp.jsonl.gz"
        items.to_file(tmp)
        os.replace(tmp, out_dir / name)


def prepare_data(config, device: str | torch.device = "cpu", num_workers: int = 0,
                 progress: bool = True) -> PrepareResult:
    """Prepare every song of the config's metadata (see the module doc)."""
    from tqdm import tqdm

    from songgeneration.models.config import load_config

    out_dir = config.resolve(config.paths.prepared_data_dir)
    metadata_path = config.resolve(config.paths.metadata_path)
    base = config.resolve(config.paths.base_model_path)
    tags = structure_tags(load_config(base / "config.yaml"))
    data = config.data
    if data.min_duration > data.max_duration:
        raise InputError(f"{config.source}: data.min_duration {data.min_duration:g} > data.max_duration "
                         f"{data.max_duration:g}")
    prompt_frames = int(round(data.prompt_seconds * FRAME_RATE))

    entries, rejects = read_metadata(metadata_path)
    songs: list[_Song] = []
    for entry in entries:
        try:
            lyric = normalize_lyrics(entry.gt_lyric, tags, data.lyrics_language)
        except LyricsError as e:
            rejects.append((entry.idx, f"{entry.where}: gt_lyric: {e}"))
            continue
        songs.append(_Song(entry, resolve_audio(config, entry, metadata_path), lyric))

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokens").mkdir(exist_ok=True)
    (out_dir / "prompt").mkdir(exist_ok=True)
    done = read_manifest(out_dir)
    result = PrepareResult(out_dir=out_dir)
    records: dict[str, dict] = {}
    todo = []
    for song in songs:
        rec = done.get(song.entry.idx)
        if rec is not None:
            records[song.entry.idx] = {**rec, "gt_lyric": song.gt_lyric, "descriptions": song.entry.descriptions}
            result.kept.append(song.entry.idx)
        else:
            todo.append(song)

    if todo:
        tokenizer = load_tokenizer(config.paths.tokenizer, config.resolve(config.paths.audio_tokenizer_path), device)
        separators = _SeparatorSource(config, device)
        with open(out_dir / MANIFEST, "a", encoding="utf-8") as manifest, \
                tqdm(total=len(todo), desc="prepare", unit="song", disable=not progress) as bar:
            for song, loaded in _loaded(todo, data, separators, num_workers):
                bar.update(1)
                idx = song.entry.idx
                if isinstance(loaded, InputError):
                    rejects.append((idx, f"{song.entry.where}: {loaded}"))
                    continue
                mix, vocal, accompaniment, how = loaded
                try:
                    tokens = tokenizer.encode_song(mix, vocal, accompaniment)
                except InputError as e:
                    rejects.append((idx, f"{song.entry.where}: {song.audio}: {e}"))
                    continue
                tokens = tokens.detach().cpu().numpy().astype(np.int64)
                save_npy(out_dir / "tokens" / f"{idx}.npy", tokens)
                save_npy(out_dir / "prompt" / f"{idx}.npy", cut_prompt(tokens, prompt_frames))
                rec = {"idx": idx, "tokens": f"tokens/{idx}.npy", "prompt": f"prompt/{idx}.npy",
                       "frames": int(tokens.shape[1]), "duration": round(mix.shape[1] / SAMPLE_RATE, 6),
                       "gt_lyric": song.gt_lyric, "descriptions": song.entry.descriptions}
                manifest.write(json.dumps(rec, ensure_ascii=False) + "\n")
                manifest.flush()
                records[idx] = rec
                result.prepared.append(idx)
                logger.debug("%s: %d frames (%s)", idx, rec["frames"], how)

    ordered = [records[s.entry.idx] for s in songs if s.entry.idx in records]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
    _atomic_write(out_dir / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    write_rejects(out_dir, rejects)
    write_lhotse(out_dir, ordered, {s.entry.idx: s.audio for s in songs})
    result.rejects = rejects
    logger.info("prepared %d song(s), kept %d already prepared, rejected %d; manifest %s%s",
                len(result.prepared), len(result.kept), len(rejects), out_dir / MANIFEST,
                f" (reasons in {out_dir / REJECTS})" if rejects else "")
    return result
