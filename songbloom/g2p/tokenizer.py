"""Symbol strings → lyric ids, structure ids and sentence indices, as SongBloom's conditioner sees them.

The string is split on single spaces (so a double space yields the empty item,
which is vocab entry 0 and is kept). Per item:

* a structure tag ``t`` (an entry shaped ``[...]``): structure id ``t``,
  sentence index 0; afterwards the current structure is ``t`` and the sentence
  counter restarts at 1;
* ``.``: structure id ``.``, sentence index 0; afterwards the counter grows by 1;
* ``,``: structure id ``,``, sentence index 0, no state change;
* any other symbol: the current structure (0 before the first tag) and the
  sentence counter, clamped to ``max_sentences - 1``.

Items that are not in the vocabulary have no id. Upstream drops them without
a word, which is how lyrics silently lose their words; here they are counted
and, unless ``allow_unknown`` is set, raise :class:`LyricError` naming them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from shirabe.cli import InputError
from songbloom.g2p.vocab import PHRASE_END, SENTENCE_END, Vocab, load_vocab

DEFAULT_MAX_SENTENCES = 50  # max_sentence_per_structure of the released configs


class LyricError(InputError, ValueError):
    """Lyrics with symbols the vocabulary lacks, or text the frontend cannot read (one line)."""


@dataclass
class LyricTokens:
    """Per-symbol ids: ``ids`` (vocab), ``structure`` (tag or separator id) and ``sentence`` index."""

    ids: list[int]
    structure: list[int]
    sentence: list[int]
    unknown: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.ids)


def describe_unknown(unknown: Counter, limit: int = 5) -> str:
    items = [f"{s!r}" + (f" x{n}" if n > 1 else "") for s, n in unknown.most_common(limit)]
    more = len(unknown) - limit
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def tokenize(
    symbols: str,
    vocab: Vocab | None = None,
    max_sentences: int = DEFAULT_MAX_SENTENCES,
    allow_unknown: bool = False,
    where: str = "lyrics",
) -> LyricTokens:
    """Tokenize a space-separated symbol string (see the module docstring)."""
    vocab = vocab or load_vocab()
    if max_sentences < 2:
        raise ValueError(f"max_sentences must be at least 2, got {max_sentences}")
    structure_ids = vocab.structure_ids
    dot, comma = vocab.id(SENTENCE_END), vocab.id(PHRASE_END)
    out = LyricTokens([], [], [])
    current, sentence = 0, 1
    for item in symbols.split(" "):
        if item not in vocab:
            out.unknown[item] += 1
            continue
        t = vocab.id(item)
        out.ids.append(t)
        if t in structure_ids:
            out.structure.append(t)
            out.sentence.append(0)
            current, sentence = t, 1
        elif t == dot:
            out.structure.append(t)
            out.sentence.append(0)
            sentence += 1
        elif t == comma:
            out.structure.append(t)
            out.sentence.append(0)
        else:
            out.structure.append(current)
            out.sentence.append(min(sentence, max_sentences - 1))
    if out.unknown and not allow_unknown:
        raise LyricError(f"{where}: symbols not in the SongBloom vocabulary: {describe_unknown(out.unknown)}")
    return out
