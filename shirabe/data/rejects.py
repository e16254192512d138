"""The items a data-preparation step left out, and why: one TSV beside its output.

A data-preparation binary skips the items it cannot use (unreadable, empty or
silent audio, text that cannot be tokenised, ...) instead of failing, counts
them in its log line (:meth:`Rejects.summary`) and lists them, one line per
item, in a TSV with a header::

    id<TAB>path<TAB>reason

(:data:`REJECT_COLUMNS`; a binary whose items come from another kind of list may
name other columns, e.g. ``prepare_dataset`` gives the TSV line of each item).
A reason starts with its kind (``unreadable audio``, ``empty audio file``,
``silent audio``, ...), followed by ``: detail`` where there is one; the summary
counts the kinds. Tabs and line breaks inside a field are written as spaces, so
every item is one line. The file is written atomically and rewritten by every
run that prepares its output: it lists what that run left out.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

REJECT_COLUMNS = ("id", "path", "reason")
_LINE_BREAKS = re.compile(r"[\t\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def one_line(value) -> str:
    """``value`` as one TSV field: tabs and line breaks become spaces."""
    return _LINE_BREAKS.sub(" ", str(value))


def reason_kind(reason: str) -> str:
    """The kind of a reason: its text up to the first ``:`` or `` (``."""
    return re.split(r":| \(", reason, maxsplit=1)[0].strip()


def reason_of(error: BaseException, path: str | Path | None = None) -> str:
    """The first line of ``error``'s message, without a leading ``"<path>: "`` (the path has its own column)."""
    text = str(error).splitlines()[0].strip() if str(error).strip() else type(error).__name__
    prefix = f"{path}: " if path is not None else None
    if prefix and text.startswith(prefix) and len(text) > len(prefix):
        text = text[len(prefix):]
    return text


def rejects_path(output: str | Path) -> Path:
    """``<output>.rejects.tsv`` beside an output file (its ``.jsonl.gz``/``.jsonl`` suffix dropped)."""
    output = Path(output)
    name = output.name
    for suffix in (".jsonl.gz", ".jsonl", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(f"{name}.rejects.tsv")


class Rejects:
    """Rows of left-out items (one field per column), counted by kind of reason (the last column)."""

    def __init__(self, columns: Sequence[str] = REJECT_COLUMNS):
        self.columns = tuple(columns)
        self.rows: list[tuple[str, ...]] = []

    def add(self, *fields) -> None:
        if len(fields) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} fields ({', '.join(self.columns)}), got {len(fields)}")
        self.rows.append(tuple(one_line(f) for f in fields))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self.rows)

    def kinds(self) -> Counter:
        return Counter(reason_kind(row[-1]) for row in self.rows)

    def summary(self) -> str:
        """``"3 (unreadable audio: 2, silent audio: 1)"``, or ``"0"``."""
        if not self.rows:
            return "0"
        return f"{len(self.rows)} (" + ", ".join(f"{k}: {n}" for k, n in self.kinds().most_common()) + ")"

    def write(self, path: str | Path) -> Path:
        """Write the header and the rows to ``path`` (atomically; parent directories are made)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp.{path.name}")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write("\t".join(self.columns) + "\n")
            f.writelines("\t".join(row) + "\n" for row in self.rows)
        os.replace(tmp, path)
        return path
