"""The ``accompaniment`` part: vocal/instrumental pairs in ACE-Step's seed-file convention.

::

    <part_dir>/{key}_vocal.wav    the sung lead, 48 kHz stereo PCM_16
    <part_dir>/{key}_inst.wav     the band, rendered by fluidsynth, same length
    <part_dir>/{key}_mix.wav      vocal + inst (the two files sum to it)
    <part_dir>/{key}_prompt.txt   comma-separated tags: genre, instruments, vocal, bpm, key
    <part_dir>/{key}_lyrics.txt   the lyrics with structure tags ([intro], [verse], [chorus])
    <part_dir>/midi/{key}.mid     the MIDI the instrumental was rendered from

Keys are ``mini_0001``, ``mini_0002``, ... Each piece is a generated song (its
own stream of the seed, so not one of the a cappella songs): the band plays
its harmony voices as chords, its bass line, a pad on the bar's triad where
the arrangement has one, and its percussion pattern on General MIDI drums
(channel 10); a singer from :data:`VOCALISTS` sings its lead. Every tag in the
prompt is true of the audio: the instruments are exactly those in the MIDI
and the bpm and key are the score's.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import pretty_midi

from shirabe.audio import load_audio, save_audio
from shirabe.cli import InputError
from shirabe.minicorpus.config import CorpusConfig
from shirabe.minicorpus.files import write_text
from shirabe.minicorpus.jobs import run_jobs
from shirabe.minicorpus.score import STEPS_PER_BAR, Song, generate_song
from shirabe.minicorpus.singing import SAMPLE_RATE, SINGERS, Singer, sing

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FLUIDSYNTH_RATE = 44100
TAIL_SECONDS = 1.0  # after the last bar, for the instruments' release
FADE_SECONDS = 0.25
VOCAL_RMS, INST_RMS, MIX_PEAK = 0.1, 0.08, 0.9

# General MIDI program -> prompt tag
INSTRUMENT_TAGS = {
    0: "piano",
    4: "electric piano",
    24: "acoustic guitar",
    32: "acoustic bass",
    33: "electric bass",
    48: "strings",
    89: "synth pad",
}
DRUM_TAG = "drums"
DRUM_KEYS = {"kick": 36, "snare": 38, "hat": 42}
# subset -> (genre tag, ((program, role), ...)); roles: chords, bass, pad
ARRANGEMENTS = {
    "popular": ("pop", ((0, "chords"), (33, "bass"), (89, "pad"))),
    "jazz": ("jazz", ((4, "chords"), (32, "bass"))),
    "ballad": ("ballad", ((0, "chords"), (48, "pad"), (32, "bass"))),
    "neutral": ("acoustic", ((24, "chords"), (32, "bass"))),
}
VELOCITY = {"chords": 72, "bass": 90, "pad": 55, "kick": 100, "snare": 88, "hat": 60}
# singers of the pieces, by index; male voices sing an octave lower
VOCALISTS = ("hts_mei", "kokoro_jf_alpha", "hts_mei_low", "sinsy_f001")


def piece_key(index: int) -> str:
    return f"mini_{index + 1:04d}"


def num_samples(song: Song) -> int:
    return int(round((song.seconds + TAIL_SECONDS) * SAMPLE_RATE))


def vocalist(index: int) -> Singer:
    return SINGERS[VOCALISTS[index % len(VOCALISTS)]]


def plan_pieces(cfg: CorpusConfig) -> list[tuple[str, Song, Singer]]:
    """``(key, song, singer)`` of every piece, without rendering anything."""
    return [(piece_key(i), generate_song(cfg.seed, i, "accompaniment"), vocalist(i)) for i in range(cfg.num_songs)]


def check_renderer() -> None:
    """Raise :class:`InputError` unless fluidsynth and the General MIDI soundfont are installed."""
    if shutil.which("fluidsynth") is None:
        raise InputError(
            "fluidsynth is not installed (the accompaniment part renders MIDI with it); "
            "run tools/install.sh as root, or apt-get install fluidsynth"
        )
    if not SOUNDFONT.is_file():
        raise InputError(
            f"soundfont {SOUNDFONT} not found; run tools/install.sh as root, or apt-get install fluid-soundfont-gm"
        )


def make_midi(song: Song) -> pretty_midi.PrettyMIDI:
    """The band part of ``song``: its arrangement's instruments and drums."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=song.bpm)
    _, instruments = ARRANGEMENTS[song.subset]
    step = song.step_seconds

    def add(inst, pitch, start, end, velocity):
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch), start=start * step, end=end * step))

    for program, role in instruments:
        inst = pretty_midi.Instrument(program=program, name=INSTRUMENT_TAGS[program])
        if role == "chords":
            for part in ("soprano", "alto", "tenor"):
                for n in song.parts[part]:
                    if n.pitch is not None:
                        add(inst, n.pitch, n.start, n.end, VELOCITY[role])
        elif role == "bass":
            for n in song.parts["bass"]:
                if n.pitch is not None:
                    add(inst, n.pitch, n.start, n.end, VELOCITY[role])
        else:  # pad: the bar's triad around middle C, held for the bar
            for bar in range(song.num_steps // STEPS_PER_BAR):
                for pc in song.chord_pitch_classes(bar):
                    add(inst, 55 + (pc - 55) % 12, bar * STEPS_PER_BAR, (bar + 1) * STEPS_PER_BAR, VELOCITY[role])
        pm.instruments.append(inst)
    drums = pretty_midi.Instrument(program=0, is_drum=True, name=DRUM_TAG)
    for n in song.parts["vocal_percussion"]:
        if n.drum:
            drums.notes.append(
                pretty_midi.Note(VELOCITY[n.drum], DRUM_KEYS[n.drum], n.start * step, n.start * step + 0.1)
            )
    pm.instruments.append(drums)
    return pm


def prompt_tags(song: Song, singer: Singer) -> list[str]:
    genre, instruments = ARRANGEMENTS[song.subset]
    return [
        genre,
        *(INSTRUMENT_TAGS[program] for program, _ in instruments),
        DRUM_TAG,
        f"{singer.gender} vocal",
        "japanese",
        f"{song.bpm} bpm",
        song.key_name,
    ]


def lyrics_text(song: Song) -> str:
    """Lyrics with structure tags: the instrumental first bar, two verse and two chorus lines."""
    verse, chorus = song.lyric_lines[:2], song.lyric_lines[2:]
    return "[intro]\n\n[verse]\n" + "\n".join(verse) + "\n\n[chorus]\n" + "\n".join(chorus) + "\n"


def render_midi(midi_path: Path, num_samples: int) -> np.ndarray:
    """fluidsynth's rendering of ``midi_path``: 48 kHz stereo, cut (with a fade) or padded to ``num_samples``.

    fluidsynth renders to a file faster than real time and, reverb and chorus
    included, gives the same bytes on every run.
    """
    with tempfile.TemporaryDirectory(prefix="shirabe-fluidsynth-") as tmp:
        out = Path(tmp) / "inst.wav"
        cmd = ["fluidsynth", "-ni", "-q", "-F", str(out), "-r", str(FLUIDSYNTH_RATE), "-g", "0.8"]
        proc = subprocess.run([*cmd, str(SOUNDFONT), str(midi_path)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"fluidsynth failed on {midi_path}: {proc.stderr.strip() or proc.stdout.strip()}")
        wav, _ = load_audio(out, sr=SAMPLE_RATE, mono=False)
    wav = wav[:num_samples]
    fade = int(FADE_SECONDS * SAMPLE_RATE)
    if len(wav) == num_samples:
        wav[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    return np.pad(wav, ((0, num_samples - len(wav)), (0, 0)))


def _scale_to_rms(wav: np.ndarray, target: float) -> np.ndarray:
    return wav * (target / max(float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))), 1e-9))


def _render_pair(part_dir: Path, key: str, song: Song, singer: Singer) -> None:
    """Write ``{key}_vocal.wav`` and ``{key}_inst.wav`` (and the MIDI), levels matched."""
    n = num_samples(song)
    midi_path = part_dir / "midi" / f"{key}.mid"
    midi_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = midi_path.with_name(f".{midi_path.name}.tmp")
    make_midi(song).write(str(tmp))
    tmp.replace(midi_path)
    inst = _scale_to_rms(render_midi(midi_path, n), INST_RMS)

    if singer.gender == "male":
        lead = tuple(
            dataclasses.replace(x, pitch=x.pitch - 12) if x.pitch is not None else x
            for x in song.parts["lead_vocal"]
        )
        song = dataclasses.replace(song, parts={**song.parts, "lead_vocal": lead})
    vocal, _ = sing(song, "lead_vocal", singer, n)
    vocal = np.repeat(_scale_to_rms(vocal, VOCAL_RMS)[:, None], 2, axis=1)

    gain = min(1.0, MIX_PEAK / max(float(np.abs(vocal + inst).max()), 1e-9))
    save_audio(part_dir / f"{key}_inst.wav", inst * gain, SAMPLE_RATE)
    save_audio(part_dir / f"{key}_vocal.wav", vocal * gain, SAMPLE_RATE)


def _build_piece(part_dir: Path, key: str, song: Song, singer: Singer) -> None:
    """Write the files of one piece that are not there yet."""
    vocal, inst, mix = (part_dir / f"{key}_{kind}.wav" for kind in ("vocal", "inst", "mix"))
    if not (vocal.is_file() and inst.is_file()):
        _render_pair(part_dir, key, song, singer)
    if not mix.is_file():
        save_audio(mix, load_audio(vocal, mono=False)[0] + load_audio(inst, mono=False)[0], SAMPLE_RATE)
    for suffix, text in (("prompt", ", ".join(prompt_tags(song, singer)) + "\n"), ("lyrics", lyrics_text(song))):
        path = part_dir / f"{key}_{suffix}.txt"
        if not path.is_file():
            write_text(path, text)


def build_accompaniment(part_dir: str | Path, cfg: CorpusConfig, progress: bool = True) -> dict:
    """Build (or finish) the accompaniment part in ``part_dir``; returns a summary."""
    check_renderer()
    part_dir = Path(part_dir)
    part_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_pieces(cfg)
    jobs = [partial(_build_piece, part_dir, key, song, singer) for key, song, singer in plan]
    run_jobs(jobs, "accompaniment", "piece", progress)
    return {
        "pieces": len(plan),
        "seconds": round(sum(num_samples(song) for _, song, _ in plan) / SAMPLE_RATE, 1),
        "genres": sorted({ARRANGEMENTS[song.subset][0] for _, song, _ in plan}),
        "singers": sorted({singer.id for _, _, singer in plan}),
    }
