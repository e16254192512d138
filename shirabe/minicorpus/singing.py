"""Singing voices of the mini corpus, each with the F0 it was made to sing.

Two kinds of singer:

* ``sinsy``: pysinsy sings the part's ``_SVS`` MusicXML. Its own pitch wanders
  tens of cents from the score, so the result is WORLD-analysed and
  re-synthesized on the score's F0 (its voicing kept).
* ``hts`` / ``kokoro``: speech voices re-pitched with WORLD. Each mora is
  spoken on its own (as katakana with a long vowel, which keeps it voiced),
  analysed once and cached; for every note its consonant and onset are kept at
  natural speed, the rest is stretched to the note's length, and its F0 is set
  to the note. Speech voices are made into other singers by moving their
  formants (``Singer.formant``).

The target F0 of a note is its equal-tempered pitch (A4 = 440 Hz) with a short
glide from the previous note when the two are joined, and a light vibrato on
long notes. Frames the voice leaves unvoiced (consonants, rests) are 0.

WORLD works at 24 kHz (:data:`WORLD_SR`), which halves its cost; the parts are
resampled to 48 kHz. :func:`sing` returns 48 kHz audio and that F0 at :data:`F0_RATE` frames per
second: frame ``j`` is at ``j / F0_RATE`` seconds and there are
``ceil(samples * F0_RATE / 48000)`` frames.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shirabe.audio import resample, world
from shirabe.audio.silence import remove_silence
from shirabe.minicorpus.musicxml import write_musicxml
from shirabe.minicorpus.score import Note, Song
from shirabe.minicorpus.voices import engine_lock, hts_tts, kokoro_tts, sinsy_sing

SAMPLE_RATE = 48000
WORLD_SR = 24000  # analysis/synthesis rate: half the cost of 48 kHz, ample for singing
F0_RATE = 100
FRAME_SECONDS = world.FRAME_PERIOD_MS / 1000.0
ONSET_FRAMES = 6  # voiced frames after a consonant kept at natural speed (30 ms)
GLIDE_SECONDS = 0.03
VIBRATO_CENTS, VIBRATO_HZ, VIBRATO_DELAY = 20.0, 5.5, 0.25
MORA_RMS = 0.1
QUIET_DB = -20.0  # frames this far below a mora's loudest are left unvoiced
SILENT_POWER = 1e-16  # spectral envelope of rest frames
RELEASE = np.array([0.5, 0.25])  # power of a note's last frames


@dataclass(frozen=True)
class Singer:
    """A singing voice: ``engine`` is ``sinsy``, ``hts`` or ``kokoro`` (with ``voice``)."""

    id: str
    engine: str
    voice: str = ""
    formant: float = 1.0
    gender: str = "female"


SINGERS = {
    s.id: s
    for s in (
        Singer("sinsy_f001", "sinsy"),
        Singer("kokoro_jf_alpha", "kokoro", "jf_alpha"),
        Singer("kokoro_jf_gongitsune", "kokoro", "jf_gongitsune"),
        Singer("kokoro_jf_nezumi", "kokoro", "jf_nezumi"),
        Singer("kokoro_jf_tebukuro", "kokoro", "jf_tebukuro"),
        Singer("kokoro_jm_kumo", "kokoro", "jm_kumo", gender="male"),
        Singer("kokoro_jm_kumo_deep", "kokoro", "jm_kumo", formant=0.9, gender="male"),
        Singer("hts_mei", "hts"),
        Singer("hts_mei_dark", "hts", formant=0.92),
        Singer("hts_mei_low", "hts", formant=0.8, gender="male"),
    )
}

_morae: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_voice_lock = engine_lock  # see shirabe.minicorpus.voices


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def num_f0_frames(num_samples: int, sr: int = SAMPLE_RATE) -> int:
    """Length of the F0 track of ``num_samples`` of audio."""
    return math.ceil(num_samples * F0_RATE / sr)


def target_f0(notes: tuple[Note, ...], step_seconds: float, num_frames: int, frame_seconds: float) -> np.ndarray:
    """F0 (Hz) the notes ask for at each frame; 0 where no note sounds."""
    cents = np.full(num_frames, np.nan)
    prev: Note | None = None
    for note in notes:
        if note.pitch is None:
            prev = None
            continue
        a = round(note.start * step_seconds / frame_seconds)
        b = min(round(note.end * step_seconds / frame_seconds), num_frames)
        t = np.arange(b - a) * frame_seconds
        depth = VIBRATO_CENTS * np.clip((t - VIBRATO_DELAY) / 0.2, 0.0, 1.0)
        c = 100.0 * note.pitch + depth * np.sin(2 * np.pi * VIBRATO_HZ * t)
        if prev is not None and prev.end == note.start:
            c += 100.0 * (prev.pitch - note.pitch) * (1.0 - np.clip(t / GLIDE_SECONDS, 0.0, 1.0))
        cents[a:b] = c
        prev = note
    f0 = np.zeros(num_frames)
    sounding = ~np.isnan(cents)
    f0[sounding] = midi_to_hz(cents[sounding] / 100.0)
    return f0


def _katakana(kana: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in kana)


def _mora(singer: Singer, mora: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD ``(f0, sp, ap)`` (at WORLD_SR) of ``mora`` spoken by ``singer``, up to its last voiced frame (cached)."""
    key = (singer.engine, singer.voice, singer.formant, mora)
    if key not in _morae:
        text = _katakana(mora) + "ー"
        with _voice_lock:
            wav, sr = kokoro_tts(text, singer.voice) if singer.engine == "kokoro" else hts_tts(text)
        wav = remove_silence(resample(wav, sr, WORLD_SR), WORLD_SR, only_edge=True, edge_keep=0.0, threshold_db=-45.0)
        wav = wav * (MORA_RMS / max(float(np.sqrt(np.mean(wav**2))), 1e-6))
        # DIO is quicker than harvest and keeps unvoiced consonants unvoiced; it misses
        # the voicing of some very short morae (ん), which harvest finds.
        f0, sp, ap = world.analyze(wav, WORLD_SR, f0_method="dio")
        if (f0 > 0).mean() < 0.3:
            f0, sp, ap = world.analyze(wav, WORLD_SR)
        if singer.formant != 1.0:
            sp = world.warp_formants(sp, singer.formant)
        # Quiet voiced frames (the closure of b, d, g) carry little pitch: sing them unvoiced.
        level = 10.0 * np.log10(np.maximum(sp.sum(axis=1), 1e-30))
        f0 = np.where(level > level.max() + QUIET_DB, f0, 0.0)
        voiced = np.flatnonzero(f0 > 0)
        end = voiced[-1] + 1 if voiced.size else len(f0)
        _morae[key] = (f0[:end], sp[:end], ap[:end])
    return _morae[key]


def _time_map(f0: np.ndarray, length: int) -> np.ndarray:
    """Source frame (fractional) of each of ``length`` output frames of a stretched mora."""
    voiced = np.flatnonzero(f0 > 0)
    keep = min((voiced[0] if voiced.size else 0) + ONSET_FRAMES, len(f0))
    if keep >= length // 2 or keep >= len(f0) - 1:
        return np.linspace(0.0, len(f0) - 1, length)
    return np.concatenate([np.arange(keep, dtype=np.float64), np.linspace(keep, len(f0) - 1, length - keep)])


def _frames_at(x: np.ndarray, src: np.ndarray) -> np.ndarray:
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, len(x) - 1)
    w = (src - i0)[:, None]
    return (1.0 - w) * x[i0] + w * x[i1]


def _sing_speech(notes, singer, step_seconds, target) -> tuple[np.ndarray, np.ndarray]:
    """Re-pitched speech morae on the frames of ``target``; returns ``(wav at WORLD_SR, f0)``."""
    f0 = np.zeros(len(target))
    sp = ap = None
    for note in notes:
        if note.pitch is None:
            continue
        mf0, msp, map_ = _mora(singer, note.sung)
        if sp is None:
            sp = np.full((len(target), msp.shape[1]), SILENT_POWER)
            ap = np.ones((len(target), msp.shape[1]))
        a = round(note.start * step_seconds / FRAME_SECONDS)
        b = min(round(note.end * step_seconds / FRAME_SECONDS), len(target))
        src = _time_map(mf0, b - a)
        sp[a:b] = _frames_at(msp, src)
        ap[a:b] = _frames_at(map_, src)
        release = RELEASE[len(RELEASE) - min(len(RELEASE), b - a) :]
        sp[b - len(release) : b] *= release[:, None]
        voiced = mf0[np.rint(src).astype(int)] > 0
        f0[a:b] = np.where(voiced, target[a:b], 0.0)
    if sp is None:
        raise ValueError(f"singer {singer.id}: the part has no notes")
    return world.synthesize(f0, sp, ap, WORLD_SR), f0


def _sing_sinsy(song: Song, part: str, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pysinsy's rendering of the part, re-synthesized on the score's F0; returns ``(wav at WORLD_SR, f0)``."""
    with tempfile.TemporaryDirectory(prefix="shirabe-sinsy-") as tmp:
        score = write_musicxml(Path(tmp) / f"{part}.musicxml", song, (part,), svs=True)
        with _voice_lock:
            wav, sr = sinsy_sing(score)
    wav = resample(wav, sr, WORLD_SR)
    sung_f0, sp, ap = world.analyze(wav, WORLD_SR, f0_floor=80.0, f0_ceil=1000.0, f0_method="dio")
    n = min(len(sung_f0), len(target))
    f0 = np.zeros(len(target))
    f0[:n] = np.where((sung_f0[:n] > 0) & (target[:n] > 0), target[:n], 0.0)
    # frames past the end of pysinsy's output are silent
    pad = len(target) - n
    sp = np.concatenate([sp[:n], np.full((pad, sp.shape[1]), SILENT_POWER)])
    ap = np.concatenate([ap[:n], np.ones((pad, ap.shape[1]))])
    return world.synthesize(f0, sp, ap, WORLD_SR), f0


def sing(song: Song, part: str, singer: Singer, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Sing ``song``'s ``part``: ``(48 kHz float32 audio of num_samples, float32 F0 at F0_RATE)``."""
    n_f0 = num_f0_frames(num_samples)
    ratio = round(1.0 / (F0_RATE * FRAME_SECONDS))
    frames = max(ratio * n_f0, math.ceil(num_samples / SAMPLE_RATE / FRAME_SECONDS)) + 1
    target = target_f0(song.parts[part], song.step_seconds, frames, FRAME_SECONDS)
    if singer.engine == "sinsy":
        wav, f0 = _sing_sinsy(song, part, target)
    else:
        wav, f0 = _sing_speech(song.parts[part], singer, song.step_seconds, target)
    wav = resample(wav, WORLD_SR, SAMPLE_RATE)[:num_samples]
    wav = np.pad(wav, (0, num_samples - len(wav)))
    return wav.astype(np.float32), f0[: ratio * n_f0 : ratio].astype(np.float32)


def clear_cache() -> None:
    """Forget the analysed morae (they are kept for the life of the process)."""
    _morae.clear()
