"""The sentence pool of the speech part (``sentences_ja.txt``) and who reads what.

Each speaker reads ``per_speaker`` different sentences. They are dealt from a
stream made of successive passes over the pool; each pass shuffles every
section with the seed and interleaves the sections evenly, so any run of
consecutive sentences mixes all sections in proportion. Speaker ``s`` takes the
next ``per_speaker`` sentences of the stream (one it already has is passed on to
the next speaker), so each speaker's subset is varied and all sentences are read
about equally often.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shirabe.cli import InputError

POOL_FILE = Path(__file__).with_name("sentences_ja.txt")
MIN_CHARS, MAX_CHARS = 8, 40

_SEED_STREAM_SENTENCES = 0x5E47E9  # keeps sentence draws apart from other uses of the seed
_SECTION = re.compile(r"\[(\w+)\]")


@dataclass(frozen=True)
class Sentence:
    section: str
    text: str


def load_pool(path: str | Path = POOL_FILE) -> list[Sentence]:
    """Read a sentence file (``[section]`` headers, ``#`` comments, one sentence a line)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read sentence pool ({e})") from e
    pool: list[Sentence] = []
    seen: set[str] = set()
    section = None
    for no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _SECTION.fullmatch(line)
        if header:
            section = header.group(1)
            continue
        where = f"{path}:{no}"
        if section is None:
            raise InputError(f"{where}: sentence before the first [section] header")
        if "\t" in line or not MIN_CHARS <= len(line) <= MAX_CHARS:
            raise InputError(f"{where}: a sentence must be {MIN_CHARS}-{MAX_CHARS} characters without tabs")
        if line in seen:
            raise InputError(f"{where}: repeated sentence")
        seen.add(line)
        pool.append(Sentence(section, line))
    if not pool:
        raise InputError(f"{path}: no sentences")
    return pool


def _one_pass(pool: list[Sentence], rng: np.random.Generator) -> list[str]:
    """All sentences once: each section shuffled, sections interleaved evenly."""
    sections: dict[str, list[str]] = {}
    for s in pool:
        sections.setdefault(s.section, []).append(s.text)
    keyed = []
    for texts in sections.values():
        order = rng.permutation(len(texts))
        for rank, idx in enumerate(order):
            keyed.append(((rank + rng.uniform(0.25, 0.75)) / len(texts), texts[idx]))
    keyed.sort(key=lambda kv: kv[0])
    return [text for _, text in keyed]


def _stream(pool: list[Sentence], rng: np.random.Generator) -> Iterator[str]:
    while True:
        yield from _one_pass(pool, rng)


def assign_sentences(
    num_speakers: int, per_speaker: int, seed: int, pool: list[Sentence] | None = None
) -> list[list[str]]:
    """Sentences for each of ``num_speakers`` speakers, ``per_speaker`` each, all different."""
    pool = load_pool() if pool is None else pool
    if per_speaker < 1:
        raise InputError(f"sentences per speaker must be at least 1, got {per_speaker}")
    if per_speaker > len(pool):
        raise InputError(
            f"sentences per speaker ({per_speaker}) exceeds the {len(pool)} sentences in the pool"
        )
    stream = _stream(pool, np.random.default_rng([seed, _SEED_STREAM_SENTENCES]))
    passed_on: deque[str] = deque()
    out: list[list[str]] = []
    for _ in range(num_speakers):
        mine: list[str] = []
        skipped: list[str] = []
        while len(mine) < per_speaker:
            text = passed_on.popleft() if passed_on else next(stream)
            (skipped if text in mine else mine).append(text)
        passed_on.extendleft(reversed(skipped))
        out.append(mine)
    return out
