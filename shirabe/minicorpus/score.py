"""Seeded songs for the mini corpus: key, tempo, chords, a lyric lead and SATB + percussion.

A :class:`Song` is 9 bars of 4/4 on a grid of eighth notes ("steps"): a bar
of introduction, then four two-bar phrases in which the lead sings four
original kana lines, one mora per note, each phrase ending in a rest. Soprano,
alto, tenor and bass sing scat syllables on the chords (the tonic in the
introduction, then an I-vi-IV-V style progression in a major key, voiced with
little movement between chords) from the first bar, and the vocal percussion
part is a kick/snare/hi-hat pattern. Everything is drawn from ``numpy.random`` generators
seeded with ``(seed, stream, index)``, so a song depends only on those three.

Lyrics are written as in a score (particles は, へ, を in their usual
spelling); :attr:`Note.sung` holds the pronunciation (わ, え, お) that singing
synthesis and the ``_SVS`` MusicXML use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STEPS_PER_BAR = 8  # eighth notes in a 4/4 bar
INTRO_BARS = 1
PHRASE_BARS = 2
NUM_PHRASES = 4
NUM_BARS = INTRO_BARS + NUM_PHRASES * PHRASE_BARS
SUNG_PARTS = ("lead_vocal", "soprano", "alto", "tenor", "bass")
PARTS = (*SUNG_PARTS, "vocal_percussion")

# MIDI ranges (inclusive) of each sung part. The lead stays at E4 or above,
# where the pysinsy voice is reliable.
RANGES = {
    "lead_vocal": (64, 76),
    "soprano": (64, 77),
    "alto": (57, 70),
    "tenor": (50, 65),
    "bass": (40, 55),
}

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Major keys by tonic pitch class: (name, fifths in the key signature).
KEYS = {
    0: ("C", 0),
    7: ("G", 1),
    2: ("D", 2),
    9: ("A", 3),
    5: ("F", -1),
    10: ("Bb", -2),
    3: ("Eb", -3),
}

# Progressions of the four phrases as scale degrees (0 = I), each ending V-I.
PROGRESSIONS = (
    (0, 5, 3, 4, 0, 5, 4, 0),
    (0, 3, 4, 0, 5, 3, 4, 0),
    (0, 4, 5, 3, 0, 3, 4, 0),
    (5, 3, 0, 4, 5, 3, 4, 0),
    (0, 1, 4, 0, 3, 1, 4, 0),
)

# Genre-like subsets (as jaCappella groups its songs), each with a tempo range,
# the rhythm of the upper harmony voices and of the bass within a bar
# ((start step, length) pairs), and a vocal-percussion pattern ((step, drum)).
STYLES = {
    "popular": {
        "bpm": (96, 112),
        "upper": ((0, 4), (4, 4)),
        "bass": ((0, 2), (2, 2), (4, 2), (6, 2)),
        "drums": ((0, "kick"), (2, "hat"), (4, "snare"), (5, "kick"), (6, "hat")),
    },
    "jazz": {
        "bpm": (88, 104),
        "upper": ((0, 3), (3, 5)),
        "bass": ((0, 2), (2, 2), (4, 2), (6, 2)),
        "drums": ((0, "kick"), (2, "hat"), (3, "hat"), (4, "snare"), (6, "hat"), (7, "hat")),
    },
    "ballad": {
        "bpm": (72, 80),
        "upper": ((0, 8),),
        "bass": ((0, 4), (4, 4)),
        "drums": ((0, "kick"), (2, "hat"), (4, "snare"), (6, "hat")),
    },
    "neutral": {
        "bpm": (84, 100),
        "upper": ((0, 2), (2, 2), (4, 4)),
        "bass": ((0, 4), (4, 2), (6, 2)),
        "drums": ((0, "kick"), (3, "kick"), (4, "snare"), (6, "hat")),
    },
}
SUBSETS = tuple(STYLES)

# Scat syllables (kana) of the harmony voices and the percussion part.
SCAT = {"soprano": ("る", "わ"), "alto": ("る", "わ"), "tenor": ("ど", "わ"), "bass": ("ど", "ぼ")}
DRUM_SYLLABLES = {"kick": "ぶ", "snare": "か", "hat": "つ"}

# Original lyric lines. Words are separated by spaces; a word that is only
# は, へ or を is a particle and is pronounced わ, え, お.
LYRIC_LINES = (
    "そら は あおく ひかる",
    "はな は のはらに さいた",
    "ほし は よるに うたう",
    "ゆめ は とおく ひろがる",
    "こころ は いつも ここに",
    "かぜ は やま を こえて",
    "うみ へ みんなで いこう",
    "あめ の おと を きいて",
    "ちいさな みち を あるく",
    "きみ の こえが きこえる",
    "あしたも また あおう",
    "ゆうひ が まち を てらす",
    "やまの うえで わらう",
    "ひかり を あつめて ゆこう",
)
PARTICLE_READINGS = {"は": "わ", "へ": "え", "を": "お"}

# (title_in_en, title_in_ja) of the songs, in romaji as jaCappella names them.
TITLES = (
    ("aozora", "あおぞら"),
    ("hoshizora", "ほしぞら"),
    ("kazenouta", "かぜのうた"),
    ("hanabatake", "はなばたけ"),
    ("umibe", "うみべ"),
    ("yuuyake", "ゆうやけ"),
    ("amaoto", "あまおと"),
    ("komichi", "こみち"),
)

_SMALL_KANA = set("ゃゅょぁぃぅぇぉ")


@dataclass(frozen=True)
class Note:
    """One note (or rest) of a part, on the eighth-note grid.

    ``pitch`` is a MIDI number, or None for a rest and for percussion hits
    (``drum`` names the hit). ``lyric`` is the syllable as written in the score
    and ``sung`` as pronounced; both are empty for rests.
    """

    start: int
    length: int
    pitch: int | None = None
    lyric: str = ""
    sung: str = ""
    drum: str = ""

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def is_rest(self) -> bool:
        return self.pitch is None and not self.drum


@dataclass(frozen=True)
class Song:
    """A generated song; ``parts`` maps each name in :data:`PARTS` to its notes (rests included)."""

    index: int
    title: str
    title_ja: str
    subset: str
    tonic: int
    bpm: int
    chords: tuple[int, ...]
    lyric_lines: tuple[str, ...]
    parts: dict[str, tuple[Note, ...]] = field(repr=False)

    @property
    def key_name(self) -> str:
        return f"{KEYS[self.tonic][0]} major"

    @property
    def fifths(self) -> int:
        return KEYS[self.tonic][1]

    @property
    def step_seconds(self) -> float:
        return 30.0 / self.bpm

    @property
    def num_steps(self) -> int:
        return NUM_BARS * STEPS_PER_BAR

    @property
    def seconds(self) -> float:
        """Length of the score (the last bar's end)."""
        return self.num_steps * self.step_seconds

    def chord_pitch_classes(self, bar: int) -> tuple[int, int, int]:
        return triad(self.tonic, self.chords[bar])


def triad(tonic: int, degree: int) -> tuple[int, int, int]:
    """Pitch classes of the diatonic triad on ``degree`` (0 = I) of a major key."""
    return tuple((tonic + MAJOR_SCALE[(degree + k) % 7]) % 12 for k in (0, 2, 4))


def split_morae(kana: str) -> list[str]:
    """Split kana into morae; small ゃゅょ etc. join the preceding kana."""
    morae: list[str] = []
    for ch in kana:
        if ch in _SMALL_KANA and morae:
            morae[-1] += ch
        elif not ch.isspace():
            morae.append(ch)
    return morae


def line_syllables(line: str) -> list[tuple[str, str]]:
    """``(written, sung)`` morae of a lyric line (see :data:`LYRIC_LINES`)."""
    out = []
    for word in line.split():
        if word in PARTICLE_READINGS:
            out.append((word, PARTICLE_READINGS[word]))
        else:
            out.extend((m, m) for m in split_morae(word))
    return out


def _compose(total: int, count: int, rng: np.random.Generator, longest: int = 4) -> list[int]:
    """Random lengths (1..longest steps) of ``count`` notes filling ``total`` steps."""
    if not count <= total <= count * longest:
        raise ValueError(f"cannot fill {total} steps with {count} notes")
    lengths = [1] * count
    for _ in range(total - count):
        room = [i for i, n in enumerate(lengths) if n < longest]
        # Later notes in a bar take extra length more often: phrases settle.
        weights = np.array([1.0 + i for i in room])
        lengths[room[rng.choice(len(room), p=weights / weights.sum())]] += 1
    return lengths


def _phrase_rhythm(num_syllables: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(start, length) of each note of a two-bar phrase, relative to its start, ending in a rest."""
    rest = 2 if num_syllables <= 11 else 1
    first = min((num_syllables + 1) // 2, STEPS_PER_BAR)
    second = num_syllables - first
    lengths = _compose(STEPS_PER_BAR, first, rng) + _compose(STEPS_PER_BAR - rest, second, rng)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [(int(s), int(n)) for s, n in zip(starts, lengths)]


def phrase_start(phrase: int) -> int:
    """First step of lead phrase ``phrase`` (after the introduction)."""
    return (INTRO_BARS + phrase * PHRASE_BARS) * STEPS_PER_BAR


def _scale_pitches(tonic: int, lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if (p - tonic) % 12 in MAJOR_SCALE]


def _melody(song_chords, tonic, rhythms, rng) -> list[int]:
    """Pitches of the lead: a step-wise random walk, chord tones on beats, ending on the tonic."""
    pitches = _scale_pitches(tonic, *RANGES["lead_vocal"])
    pos = int(rng.integers(len(pitches) // 3, 2 * len(pitches) // 3))
    out = []
    for phrase, rhythm in enumerate(rhythms):
        for i, (start, _) in enumerate(rhythm):
            step = phrase_start(phrase) + start
            chord = triad(tonic, song_chords[step // STEPS_PER_BAR])
            pos = int(np.clip(pos + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
            last = i == len(rhythm) - 1
            if start % 2 == 0 or last:
                wanted = {tonic % 12} if last and phrase == len(rhythms) - 1 else set(chord)
                tones = [j for j, p in enumerate(pitches) if p % 12 in wanted]
                pos = min(tones, key=lambda j: (abs(j - pos), j))
            out.append(pitches[pos])
    return out


def _voice_chords(song_chords, tonic) -> list[dict[str, int]]:
    """SATB pitches for each bar: the bass on the root, upper voices close to their previous notes."""
    voicings = []
    prev = None
    for degree in song_chords:
        pcs = triad(tonic, degree)
        cands = {
            part: [p for p in range(lo, hi + 1) if p % 12 in pcs] for part, (lo, hi) in RANGES.items() if part != "lead_vocal"
        }
        centre = {part: (lo + hi) / 2 for part, (lo, hi) in RANGES.items()}
        ref = prev or centre
        bass = min((p for p in cands["bass"] if p % 12 == pcs[0]), key=lambda p: (abs(p - ref["bass"]), p))
        best, best_cost = None, None
        for t in cands["tenor"]:
            for a in cands["alto"]:
                for s in cands["soprano"]:
                    if not bass < t < a < s:
                        continue
                    cost = abs(t - ref["tenor"]) + abs(a - ref["alto"]) + abs(s - ref["soprano"])
                    cost += 6 * (3 - len({t % 12, a % 12, s % 12, bass % 12}))  # prefer complete triads
                    if best_cost is None or cost < best_cost:
                        best, best_cost = {"tenor": t, "alto": a, "soprano": s}, cost
        prev = {"bass": bass, **best}
        voicings.append(prev)
    return voicings


def _with_rests(notes: list[Note], num_steps: int) -> tuple[Note, ...]:
    """Fill the gaps between notes with rests."""
    out, pos = [], 0
    for n in sorted(notes, key=lambda n: n.start):
        if n.start > pos:
            out.append(Note(pos, n.start - pos))
        out.append(n)
        pos = n.end
    if pos < num_steps:
        out.append(Note(pos, num_steps - pos))
    return tuple(out)


def _harmony_part(part, style, voicings, rng) -> list[Note]:
    rhythm = style["bass" if part == "bass" else "upper"]
    syllables = SCAT[part]
    notes = []
    for bar, voicing in enumerate(voicings):
        final = bar == NUM_BARS - 1
        pattern = ((0, STEPS_PER_BAR - 2),) if final else rhythm
        for k, (start, length) in enumerate(pattern):
            if not final and (bar - INTRO_BARS) % PHRASE_BARS == PHRASE_BARS - 1 and k == len(pattern) - 1:
                length -= 1  # breathe at the end of the introduction and of each phrase
            pitch = voicing[part]
            if part == "bass" and k % 2 == 1:
                # the bass alternates root and fifth (an octave lower where it must)
                pitch = pitch + 7 if pitch + 7 <= RANGES["bass"][1] else pitch - 5
            syl = syllables[int(rng.integers(len(syllables)))] if k else syllables[0]
            notes.append(Note(bar * STEPS_PER_BAR + start, length, pitch, syl, syl))
    return notes


def _percussion(style) -> list[Note]:
    notes = []
    for bar in range(NUM_BARS):
        pattern = ((0, "kick"),) if bar == NUM_BARS - 1 else style["drums"]
        steps = [s for s, _ in pattern] + [STEPS_PER_BAR]
        for (step, drum), nxt in zip(pattern, steps[1:]):
            syl = DRUM_SYLLABLES[drum]
            notes.append(Note(bar * STEPS_PER_BAR + step, nxt - step, None, syl, syl, drum))
    return notes


def song_title(index: int, seed: int, stream: str) -> tuple[str, str]:
    """(title_in_en, title_in_ja) of song ``index``: a seeded order of :data:`TITLES`, numbered past its end."""
    order = np.random.default_rng([seed, _stream_id(stream)]).permutation(len(TITLES))
    en, ja = TITLES[order[index % len(TITLES)]]
    lap = index // len(TITLES)
    return (f"{en}{lap + 1}", f"{ja}{lap + 1}") if lap else (en, ja)


def _stream_id(stream: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(stream))


def generate_song(seed: int, index: int, stream: str = "songs") -> Song:
    """Song ``index`` of the corpus made with ``seed``; ``stream`` separates the corpus parts."""
    rng = np.random.default_rng([seed, _stream_id(stream), index])
    subset = SUBSETS[index % len(SUBSETS)]
    style = STYLES[subset]
    tonic = int(rng.choice(sorted(KEYS)))
    bpm = int(rng.integers(style["bpm"][0], style["bpm"][1] + 1))
    chords = (0,) * INTRO_BARS + PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]

    # Four lines; the first always has a particle は, so the _SVS score differs.
    with_wa = [i for i, line in enumerate(LYRIC_LINES) if "は" in line.split()]
    first = with_wa[int(rng.integers(len(with_wa)))]
    others = [i for i in rng.permutation(len(LYRIC_LINES)) if i != first][: NUM_PHRASES - 1]
    lines = tuple(LYRIC_LINES[i] for i in [first, *others])
    syllables = [line_syllables(line) for line in lines]
    rhythms = [_phrase_rhythm(len(s), rng) for s in syllables]
    pitches = iter(_melody(chords, tonic, rhythms, rng))

    lead = []
    for phrase, (syls, rhythm) in enumerate(zip(syllables, rhythms)):
        offset = phrase_start(phrase)
        for (written, sung), (start, length) in zip(syls, rhythm):
            lead.append(Note(offset + start, length, next(pitches), written, sung))

    voicings = _voice_chords(chords, tonic)
    num_steps = NUM_BARS * STEPS_PER_BAR
    parts = {"lead_vocal": _with_rests(lead, num_steps)}
    for part in ("soprano", "alto", "tenor", "bass"):
        parts[part] = _with_rests(_harmony_part(part, style, voicings, rng), num_steps)
    parts["vocal_percussion"] = _with_rests(_percussion(style), num_steps)

    title, title_ja = song_title(index, seed, stream)
    return Song(
        index=index,
        title=title,
        title_ja=title_ja,
        subset=subset,
        tonic=tonic,
        bpm=bpm,
        chords=chords,
        lyric_lines=tuple(line.replace(" ", "") for line in lines),
        parts=parts,
    )
