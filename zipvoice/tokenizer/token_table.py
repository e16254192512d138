"""Token tables (``tokens.txt``): one ``token<TAB>id`` per line, ``_`` is the pad token.

The vocabulary size is the number of entries, the pad id is the id of ``_``
(as in the released ZipVoice models). Ids must be unique and lie in
``[0, vocab_size)``.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import InputError

PAD_TOKEN = "_"


def read_token_table(path: str | Path) -> dict[str, int]:
    """``{token: id}`` from ``path``; any malformed line raises :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such token file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read token file ({e})") from e
    table: dict[str, int] = {}
    seen_ids: set[int] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip("\n"):
            continue
        token, sep, id_str = line.rstrip("\r\n").rpartition("\t")
        if not sep or token == "":
            raise InputError(f"{path}:{lineno}: expected 'token<TAB>id', got {line!r}")
        try:
            idx = int(id_str)
        except ValueError as e:
            raise InputError(f"{path}:{lineno}: token id {id_str!r} is not an integer") from e
        if token in table:
            raise InputError(f"{path}:{lineno}: token {token!r} listed twice")
        if idx in seen_ids:
            raise InputError(f"{path}:{lineno}: id {idx} used twice")
        table[token] = idx
        seen_ids.add(idx)
    if not table:
        raise InputError(f"{path}: token file is empty")
    bad = [i for i in seen_ids if not 0 <= i < len(table)]
    if bad:
        raise InputError(f"{path}: ids must lie in [0, {len(table)}), found {min(bad) if min(bad) < 0 else max(bad)}")
    if PAD_TOKEN not in table:
        raise InputError(f"{path}: has no pad token '{PAD_TOKEN}'")
    return table


def vocab_info(path: str | Path) -> tuple[int, int]:
    """``(vocab_size, pad_id)`` of a token file."""
    table = read_token_table(path)
    return len(table), table[PAD_TOKEN]
