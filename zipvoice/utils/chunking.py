"""Splitting long text into chunks the model can generate in one go.

Text is split after sentence-final punctuation first (``。！？`` and ``.!?;``),
then, for sentences still over the budget, after clause punctuation (``、，,:``),
and as a last resort in the middle of a clause. Consecutive pieces are merged
again as long as a chunk stays within ``max_tokens``. Token counts come from the
tokenizer, so the budget is exact for any tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SENTENCE_END = "。！？!?.;；…"
CLAUSE_END = "、，,:："
# closing brackets/quotes that belong to the sentence they end
_CLOSERS = "」』）)】\"'”’"

_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


def split_after(text: str, marks: str) -> list[str]:
    """Split ``text`` after every run of ``marks`` (and the closers that follow it).

    ASCII ``.`` and ``,`` between digits (``3.14``, ``1,000``) do not split.
    """
    pattern = re.compile(rf"[{re.escape(marks)}]+[{re.escape(_CLOSERS)}]*\s*")
    pieces, pos = [], 0
    for m in pattern.finditer(text):
        s, e = m.start(), m.end()
        if text[s:e] in (".", ",") and 0 < s and e < len(text) and text[s - 1].isdigit() and text[e].isdigit():
            continue
        pieces.append(text[pos:e])
        pos = e
    if pos < len(text):
        pieces.append(text[pos:])
    return [p for p in pieces if p.strip()]


def ends_with_punctuation(text: str) -> bool:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in SENTENCE_END + CLAUSE_END


def add_punctuation(text: str) -> str:
    """Append a full stop when ``text`` ends without punctuation (``。`` after Japanese/Chinese)."""
    text = text.strip()
    if not text or ends_with_punctuation(text):
        return text
    return text + ("。" if _CJK_CHAR.match(text[-1]) else ".")


def chunk_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Pieces of ``text`` with at most ``max_tokens`` tokens each (a single token
    longer than the budget is kept whole)."""
    max_tokens = max(1, int(max_tokens))
    pieces: list[str] = []
    for sentence in split_after(text, SENTENCE_END):
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
            continue
        for clause in split_after(sentence, CLAUSE_END):
            pieces += _split_hard(clause, count_tokens, max_tokens)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and count_tokens(chunks[-1] + piece) <= max_tokens:
            chunks[-1] += piece
        else:
            chunks.append(piece)
    return [c.strip() for c in chunks if c.strip()]


def _split_hard(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    if count_tokens(text) <= max_tokens or len(text) <= 1:
        return [text]
    cut = _best_cut(text)
    return _split_hard(text[:cut], count_tokens, max_tokens) + _split_hard(text[cut:], count_tokens, max_tokens)


def _best_cut(text: str) -> int:
    """A split point near the middle, preferring a space."""
    mid = len(text) // 2
    for off in range(0, mid):
        for pos in (mid - off, mid + off):
            if 0 < pos < len(text) and text[pos - 1] == " ":
                return pos
    return mid
