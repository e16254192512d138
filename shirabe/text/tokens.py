"""Token tables in ZipVoice's ``tokens.txt`` format: one ``token<TAB>id`` per line.

``_`` is the pad token (id 0 in a table built from scratch). A table built for
a scheme holds every token the scheme can emit, not only those seen in data.
:func:`extend_table` appends a scheme's missing tokens after an existing table
(e.g. the released 360-token Emilia table) and keeps every existing id, so the
embedding rows of a released checkpoint stay valid.

Tokens may contain spaces (the Emilia table has the token ``" "``); only the
last tab on a line separates the token from its id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD = "_"


class TokenTableError(ValueError):
    """A malformed token file."""


class UnknownTokenError(KeyError):
    """Tokens that are not in the table; ``.tokens`` lists them (each once)."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(dict.fromkeys(tokens))
        super().__init__(f"token(s) not in the token table: {' '.join(repr(t) for t in self.tokens)}")

    def __str__(self) -> str:
        return self.args[0]


class TokenTable:
    """``token → id`` with the ids in file order; ``pad_id`` is the id of ``_``."""

    def __init__(self, token2id: dict[str, int]):
        ids = list(token2id.values())
        if len(set(ids)) != len(ids):
            raise TokenTableError("token ids must be unique")
        if any(i < 0 for i in ids):
            raise TokenTableError("token ids must be non-negative")
        self.token2id = dict(sorted(token2id.items(), key=lambda kv: kv[1]))
        self.id2token = {i: t for t, i in self.token2id.items()}

    def __len__(self) -> int:
        return len(self.token2id)

    def __contains__(self, token: str) -> bool:
        return token in self.token2id

    @property
    def pad_id(self) -> int | None:
        return self.token2id.get(PAD)

    @property
    def next_id(self) -> int:
        return max(self.token2id.values(), default=-1) + 1

    @classmethod
    def from_tokens(cls, tokens: Iterable[str]) -> TokenTable:
        """Ids in order of ``tokens`` (duplicates dropped), with ``_`` first as id 0."""
        ordered = list(dict.fromkeys([PAD, *tokens]))
        return cls({t: i for i, t in enumerate(ordered)})

    @classmethod
    def read(cls, path: str | Path) -> TokenTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TokenTableError(f"{path}: cannot read token file ({e})") from e
        token2id: dict[str, int] = {}
        seen: dict[int, str] = {}
        for lineno, line in enumerate(text.split("\n"), 1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            token, sep, id_str = line.rpartition("\t")
            if not sep or token == "":
                raise TokenTableError(f"{path}:{lineno}: expected 'token<TAB>id', got {line!r}")
            try:
                idx = int(id_str)
            except ValueError:
                raise TokenTableError(f"{path}:{lineno}: id {id_str!r} is not an integer") from None
            if token in token2id:
                raise TokenTableError(f"{path}:{lineno}: token {token!r} listed twice")
            if idx in seen or idx < 0:
                raise TokenTableError(f"{path}:{lineno}: id {idx} is negative or already used by {seen.get(idx)!r}")
            token2id[token] = idx
            seen[idx] = token
        if not token2id:
            raise TokenTableError(f"{path}: token file is empty")
        return cls(token2id)

    def write(self, path: str | Path) -> None:
        """Write ``token<TAB>id`` lines sorted by id (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp.{path.name}")
        tmp.write_text("".join(f"{t}\t{i}\n" for t, i in self.token2id.items()), encoding="utf-8")
        tmp.replace(path)

    def extended(self, tokens: Iterable[str]) -> TokenTable:
        """A copy with the ``tokens`` not yet present appended after the largest id."""
        token2id = dict(self.token2id)
        nxt = self.next_id
        for t in tokens:
            if t not in token2id:
                token2id[t] = nxt
                nxt += 1
        return TokenTable(token2id)

    def missing(self, tokens: Iterable[str]) -> list[str]:
        """Tokens (each once, in order) that are not in the table."""
        return [t for t in dict.fromkeys(tokens) if t not in self.token2id]

    def ids(self, tokens: Sequence[str], unknown: Counter | None = None) -> list[int]:
        """Ids of ``tokens``. Unknown tokens raise :class:`UnknownTokenError`, or, when
        an ``unknown`` counter is given, are counted there and left out."""
        t2i = self.token2id
        try:
            return [t2i[t] for t in tokens]
        except KeyError:
            bad = [t for t in tokens if t not in t2i]
            if unknown is None:
                raise UnknownTokenError(bad) from None
            unknown.update(bad)
            return [t2i[t] for t in tokens if t in t2i]


def scheme_table(scheme) -> TokenTable:
    """A fresh table holding every token ``scheme`` (a :class:`Scheme`) can emit, ``_`` = 0."""
    return TokenTable.from_tokens(scheme.inventory())


def extend_table(table: TokenTable, scheme) -> TokenTable:
    """``table`` with the tokens of ``scheme`` it lacks appended (existing ids unchanged)."""
    return table.extended(scheme.inventory())
