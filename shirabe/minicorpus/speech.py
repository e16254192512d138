"""The speech part of the mini corpus: several voices reading Japanese sentences.

Layout (``part_dir`` is ``<output_dir>/speech``)::

    wavs/<speaker>/<speaker>_<nnnn>.wav   24 kHz mono 16-bit
    train.tsv dev.tsv test.tsv            "{utt_id}\\t{text}\\t{abs_wav_path}"
    speakers.tsv                          how each voice was made, and its split

Voices and held-out (test) speakers are chosen as :mod:`.speakers` describes;
sentences are dealt as :mod:`.sentences` describes. Dev holds the last
``max(1, n // 10)`` utterances of every training speaker when a speaker reads
at least three sentences (none otherwise), so dev speakers are seen in training
and test speakers are not.

Every utterance is trimmed to 0.15 s of silence at each end and scaled to a
common RMS. Utterances are rendered in two processes (kokoro on one thread each,
so the bytes do not depend on the worker count). Wavs are written atomically and skipped when present, so an
interrupted build resumes; the TSVs are written last.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from shirabe.audio import resample, save_audio
from shirabe.audio.loudness import rms
from shirabe.audio.silence import remove_silence
from shirabe.audio.world import transform_voice
from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.files import write_text
from shirabe.minicorpus.jobs import WORKERS
from shirabe.minicorpus.sentences import assign_sentences
from shirabe.minicorpus.speakers import Voice, held_out_speakers, roster, speakers_tsv_lines
from shirabe.minicorpus.voices import (
    engine_lock,
    hts_tts,
    kokoro_tts,
    prepare_kokoro,
    set_kokoro_cache,
    set_kokoro_threads,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
TARGET_RMS = 0.08
EDGE_SILENCE = 0.15


def utt_id(speaker: str, index: int) -> str:
    return f"{speaker}_{index:04d}"


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """One utterance of ``voice`` at 24 kHz, trimmed and level-normalised."""
    if voice.is_kokoro:
        with engine_lock:
            wav, sr = kokoro_tts(text, voice.voice, speed=voice.speed)
        wav = resample(wav, sr, SAMPLE_RATE)
    else:
        with engine_lock:
            wav, sr = hts_tts(text, speed=voice.speed, half_tone=voice.half_tone)
        wav = resample(wav, sr, SAMPLE_RATE)
        floor, ceil = voice.f0_range()
        wav = transform_voice(
            wav, SAMPLE_RATE, formant_ratio=voice.formant_ratio, f0_floor=floor, f0_ceil=ceil
        )
    wav = remove_silence(wav, SAMPLE_RATE, only_edge=True, edge_keep=EDGE_SILENCE, threshold_db=-45.0)
    level = rms(wav)
    if level > 0:
        wav = wav * (TARGET_RMS / level)
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    if peak > 0.99:
        wav = wav * (0.99 / peak)
    return wav.astype(np.float32)


def _make(voice: Voice, text: str, path: Path) -> None:
    if not path.is_file():
        save_audio(path, synthesize(voice, text), SAMPLE_RATE)


def _init_worker(kokoro_cache: str | None) -> None:
    if kokoro_cache:
        set_kokoro_cache(kokoro_cache)
    set_kokoro_threads(1)


def _cost(job: tuple[Voice, str, Path]) -> float:
    """Rough relative rendering time, so the longest jobs start first."""
    voice, text, _ = job
    return len(text) * (3.0 if voice.is_kokoro else 1.0 / voice.speed)


def _render(jobs: list[tuple[Voice, str, Path]], total: int, progress: bool) -> None:
    """Render ``jobs`` in WORKERS processes (the voice engines don't run in parallel
    within one process). kokoro runs on one thread everywhere, so the bytes don't
    depend on the number of workers."""
    from tqdm import tqdm

    jobs = sorted(jobs, key=_cost, reverse=True)
    workers = min(WORKERS, len(jobs))
    if any(voice.is_kokoro for voice, _, _ in jobs):
        prepare_kokoro()  # unpack the model once, before the workers race to do it
    with tqdm(total=total, initial=total - len(jobs), desc="speech", unit="utt", disable=not progress) as bar:
        if workers <= 1:
            _init_worker(None)
            for job in jobs:
                _make(*job)
                bar.update()
            return
        ctx = multiprocessing.get_context("spawn")
        init = (os.environ.get("KOKORO_JA_CACHE"),)
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
            pending = {pool.submit(_make, *job) for job in jobs}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        future.result()  # a worker's error; finished wavs stay for a resume
                        bar.update()
            except BaseException:
                for future in pending:
                    future.cancel()
                raise


def dev_count(per_speaker: int) -> int:
    return max(1, per_speaker // 10) if per_speaker >= 3 else 0


def build_speech(part_dir: Path, cfg: CorpusConfig, progress: bool = True) -> dict:
    part_dir = Path(part_dir).resolve()
    voices = roster(cfg.num_speakers, cfg.seed)
    held_out = set(held_out_speakers(voices))
    texts = assign_sentences(cfg.num_speakers, cfg.sentences_per_speaker, cfg.seed)

    lines: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    jobs = []
    n_dev = dev_count(cfg.sentences_per_speaker)
    for voice, sentences in zip(voices, texts, strict=True):
        for i, text in enumerate(sentences, start=1):
            uid = utt_id(voice.speaker, i)
            path = part_dir / "wavs" / voice.speaker / f"{uid}.wav"
            jobs.append((voice, text, path))
            if voice.speaker in held_out:
                split = "test"
            else:
                split = "dev" if i > len(sentences) - n_dev else "train"
            lines[split].append(f"{uid}\t{text}\t{path}")

    todo = [job for job in jobs if not job[2].is_file()]
    if todo:
        _render(todo, len(jobs), progress)

    for split, rows in lines.items():
        write_text(part_dir / f"{split}.tsv", "".join(r + "\n" for r in rows))
    write_text(part_dir / "speakers.tsv", "\n".join(speakers_tsv_lines(voices, sorted(held_out))) + "\n")
    seconds = sum(
        p.stat().st_size - 44 for p in (part_dir / "wavs").rglob("*.wav")
    ) / (2 * SAMPLE_RATE)
    return {
        "speakers": len(voices),
        "test_speakers": sorted(held_out),
        "utterances": {split: len(rows) for split, rows in lines.items()},
        "hours": round(seconds / 3600, 3),
    }
