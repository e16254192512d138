"""Split a lhotse manifest into N parts for ``$cmd JOB=1:N`` jobs, and join the results.

Parts are contiguous, numbered from 1 like Kaldi's ``split{N}/JOB`` and written
as ``{dir}/{stem}.{JOB}.jsonl.gz``. Both directions stream: neither the input
nor any part is held in memory, so corpora of millions of cuts split with the
memory of one cut. Every file is written to a temporary name and renamed, so
an interrupted split or join leaves no part that looks finished. A missing, empty
(0 bytes) or unreadable input is a one-line :class:`~shirabe.cli.InputError`
naming it (and the first item it cannot read); nothing is written then.
"""

from __future__ import annotations

import os
import zlib
from contextlib import contextmanager
from pathlib import Path

from lhotse.serialization import SequentialJsonlWriter, load_jsonl

from shirabe.cli import InputError

__all__ = ["combine_manifests", "count_items", "manifest_stem", "part_paths", "split_manifest"]


def manifest_stem(path: str | Path) -> str:
    """``data/x_cuts_train.jsonl.gz`` -> ``x_cuts_train``."""
    name = Path(path).name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise InputError(f"{path}: not a .jsonl or .jsonl.gz manifest")


def part_paths(path: str | Path, out_dir: str | Path, num_parts: int) -> list[Path]:
    """The part files :func:`split_manifest` writes for ``path`` (JOB = 1..num_parts)."""
    stem = manifest_stem(path)
    return [Path(out_dir) / f"{stem}.{job}.jsonl.gz" for job in range(1, num_parts + 1)]


def _items(path: Path):
    """The items of a manifest, read lazily; a missing, empty or unreadable file is an InputError."""
    if not path.is_file():
        raise InputError(f"{path}: no such manifest")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not a manifest")
    return _read_checked(path)


def _read_checked(path: Path):
    n = 0
    try:
        for item in load_jsonl(path):
            n += 1
            yield item
    except (OSError, EOFError, ValueError, zlib.error) as e:  # gzip, json and decoding errors
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{path}: not a readable manifest (item {n + 1}: {reason})") from e


@contextmanager
def _atomic_writer(path: Path):
    """A SequentialJsonlWriter on a temporary name, renamed to ``path`` on success, removed on failure."""
    tmp = _tmp(path)
    try:
        with SequentialJsonlWriter(tmp, overwrite=True) as writer:
            yield writer
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def count_items(path: str | Path) -> int:
    return sum(1 for _ in _items(Path(path)))


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp.{path.name}")


def split_manifest(path: str | Path, out_dir: str | Path, num_parts: int) -> list[Path]:
    """Write ``num_parts`` contiguous parts of ``path``; sizes differ by at most one.

    Parts that exist and are newer than the input are kept (a re-run does nothing).
    """
    path, out_dir = Path(path), Path(out_dir)
    if num_parts < 1:
        raise InputError(f"number of parts must be >= 1, got {num_parts}")
    parts = part_paths(path, out_dir, num_parts)
    if path.is_file() and all(p.is_file() and p.stat().st_mtime >= path.stat().st_mtime for p in parts):
        return parts
    total = count_items(path)
    if total < num_parts:
        raise InputError(f"{path}: {total} items cannot be split into {num_parts} parts")
    out_dir.mkdir(parents=True, exist_ok=True)
    base, extra = divmod(total, num_parts)
    sizes = [base + (1 if i < extra else 0) for i in range(num_parts)]
    items = iter(_items(path))
    for part, size in zip(parts, sizes):
        with _atomic_writer(part) as writer:
            for _ in range(size):
                writer.write(next(items))
    return parts


def combine_manifests(parts: list[str | Path], output: str | Path) -> int:
    """Concatenate manifests in order into ``output``; returns the number of items."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    missing = [str(p) for p in parts if not Path(p).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no such manifest ({len(missing)} of {len(parts)} parts missing)")
    n = 0
    with _atomic_writer(output) as writer:
        for part in parts:
            for item in _items(Path(part)):
                writer.write(item)
                n += 1
    return n
