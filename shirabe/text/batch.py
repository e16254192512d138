"""Tokenise many texts in parallel, counting what fails instead of stopping.

Data preparation calls :func:`tokenize_texts`: texts that cannot be pronounced
are reported (index and reason) and get ``None``; tokens missing from a given
token table are counted per token and reported, never dropped silently.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shirabe.text.frontend import JapaneseFrontend
from shirabe.text.normalize import TextError
from shirabe.text.tokens import TokenTable

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """``tokens[i]`` is None where text ``i`` failed; ``failures`` holds ``(i, reason)``;
    ``unknown`` counts tokens not in the token table (when one was given)."""

    tokens: list[list[str] | None]
    failures: list[tuple[int, str]] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)

    def report(self, log: logging.Logger = logger) -> None:
        """Log a summary of failures and unknown tokens (warnings), or that all went well."""
        n = len(self.tokens)
        if self.failures:
            shown = ", ".join(f"#{i}: {why}" for i, why in self.failures[:5])
            log.warning("%d of %d texts could not be tokenised (%s%s)", len(self.failures), n, shown,
                        ", ..." if len(self.failures) > 5 else "")
        if self.unknown:
            shown = ", ".join(f"{t!r} x{c}" for t, c in self.unknown.most_common(10))
            log.warning("%d unknown token type(s), %d occurrence(s) not in the token table: %s",
                        len(self.unknown), sum(self.unknown.values()), shown)
        if not self.failures and not self.unknown:
            log.info("tokenised %d texts", n)


_worker: JapaneseFrontend | None = None
_worker_table: TokenTable | None = None


def _init_worker(scheme, user_dict, lowercase_devoiced, cache_dir, table, quiet=False):
    global _worker, _worker_table
    _worker = JapaneseFrontend(scheme, user_dict=user_dict, lowercase_devoiced=lowercase_devoiced,
                               cache_dir=cache_dir, quiet=quiet)
    _worker_table = table


def _run_chunk(chunk: tuple[int, Sequence[str]]):
    start, texts = chunk
    out, failures, unknown = [], [], Counter()
    for k, text in enumerate(texts):
        try:
            tokens = _worker(text)
        except TextError as e:
            out.append(None)
            failures.append((start + k, str(e)))
            continue
        if _worker_table is not None:
            unknown.update(t for t in tokens if t not in _worker_table)
        out.append(tokens)
    return start, out, failures, unknown


def tokenize_texts(
    texts: Sequence[str],
    scheme: str = "prosody",
    *,
    num_jobs: int = 1,
    user_dict: str | Path | None = None,
    lowercase_devoiced: bool = False,
    cache_dir: str | Path | None = None,
    token_table: TokenTable | None = None,
    chunk_size: int = 200,
    quiet: bool = False,
) -> BatchResult:
    """Tokenise ``texts`` with ``num_jobs`` processes (capped at the CPU count and
    at one process per chunk of ``chunk_size`` texts). The user dictionary is
    compiled once, here; ``quiet`` discards OpenJTalk's printed warnings."""
    # Build once in this process: validates the scheme and compiles the user dictionary.
    _init_worker(scheme, user_dict, lowercase_devoiced, cache_dir, token_table, quiet)
    chunks = [(i, list(texts[i : i + chunk_size])) for i in range(0, len(texts), chunk_size)]
    num_jobs = max(1, min(num_jobs, os.cpu_count() or 1, len(chunks)))
    result = BatchResult(tokens=[None] * len(texts))
    if num_jobs == 1:
        parts = map(_run_chunk, chunks)
        pool = None
    else:
        ctx = mp.get_context("spawn")
        pool = ctx.Pool(num_jobs, initializer=_init_worker,
                        initargs=(scheme, user_dict, lowercase_devoiced, cache_dir, token_table, quiet))
        parts = pool.imap_unordered(_run_chunk, chunks)
    try:
        for start, out, failures, unknown in parts:
            result.tokens[start : start + len(out)] = out
            result.failures += failures
            result.unknown.update(unknown)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    result.failures.sort()
    return result
