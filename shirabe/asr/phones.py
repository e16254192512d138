"""The phone inventory of the phone recognizer and the phone sequence of a text.

The reference phones of a Japanese text are those of the ``phone`` token scheme
of the frontend (:mod:`shirabe.text.schemes`, pyopenjtalk-plus) with devoiced
vowels written as their voiced counterparts (``I`` → ``i``: devoicing is
allophonic and a judge of content should not count it) and pauses (``_``)
dropped, both in training and in scoring, since where a speaker pauses is not
part of what was said.

``phones.txt`` beside a model lists the output classes as ``phone<TAB>id``
lines (the format of :class:`shirabe.text.tokens.TokenTable`): the CTC blank
``<blk>`` is id 0 and the phones follow. A freshly trained model holds every
phone the frontend can emit, not only those seen in training; a text whose
phones are not in a model's table is an :class:`UnknownPhoneError` naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shirabe.cli import InputError
from shirabe.text.schemes import PAUSE_TOKEN, get_scheme
from shirabe.text.tokens import TokenTable, TokenTableError

BLANK = "<blk>"
PHONES_FILE = "phones.txt"
SCHEME = "phone"


class UnknownPhoneError(InputError):
    """Phones of a reference text that the model's phone table lacks."""


def inventory() -> list[str]:
    """Every phone the frontend can give (devoiced vowels folded, no pause), table order."""
    return get_scheme(SCHEME, lowercase_devoiced=True).phoneme_inventory()


def phone_table(phones: Sequence[str] | None = None) -> TokenTable:
    """``<blk>`` = 0, then ``phones`` (default: :func:`inventory`) in order."""
    phones = inventory() if phones is None else list(phones)
    if BLANK in phones or PAUSE_TOKEN in phones:
        raise ValueError(f"{BLANK!r} and {PAUSE_TOKEN!r} cannot be phones")
    ordered = list(dict.fromkeys([BLANK, *phones]))
    return TokenTable({p: i for i, p in enumerate(ordered)})


def read_phone_table(path: str | Path) -> TokenTable:
    """Read a ``phones.txt``; ids must run 0..N-1 with ``<blk>`` at 0 (one-line InputError otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such phone table")
    try:
        table = TokenTable.read(path)
    except TokenTableError as e:
        raise InputError(str(e)) from e
    if table.token2id.get(BLANK) != 0:
        raise InputError(f"{path}: the CTC blank {BLANK} must have id 0")
    if sorted(table.id2token) != list(range(len(table))):
        raise InputError(f"{path}: phone ids must run from 0 to {len(table) - 1} without gaps")
    return table


def write_phone_table(table: TokenTable, path: str | Path) -> None:
    """Write ``phones.txt`` (atomically)."""
    table.write(path)


class TextPhones:
    """Text → reference phones (see the module docstring).

    ``quiet`` discards OpenJTalk's warnings on stdout/stderr (it briefly redirects
    the file descriptors; leave it off in threaded programs). Text that cannot be
    pronounced raises :class:`shirabe.text.TextError`, an InputError.
    """

    def __init__(self, quiet: bool = False):
        from shirabe.text.frontend import JapaneseFrontend

        self.frontend = JapaneseFrontend(SCHEME, lowercase_devoiced=True, quiet=quiet)

    def __call__(self, text: str) -> list[str]:
        return [p for p in self.frontend(text) if p != PAUSE_TOKEN]


def phone_ids(table: TokenTable, phones: Sequence[str], where: str, table_name: str = PHONES_FILE) -> list[int]:
    """Ids of ``phones``; phones missing from ``table`` raise :class:`UnknownPhoneError`
    naming them and ``where`` (e.g. ``list.tsv:3``)."""
    missing = table.missing(phones)
    if missing or BLANK in phones:
        bad = missing or [BLANK]
        raise UnknownPhoneError(f"{where}: phone(s) not in {table_name}: {' '.join(repr(p) for p in bad)}")
    return [table.token2id[p] for p in phones]
