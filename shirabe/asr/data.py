"""Utterance lists and training batches of the phone recognizer.

A list is a UTF-8 TSV of ``utt_id<TAB>text<TAB>wav`` lines, the layout of the
mini corpus's ``{train,dev,test}.tsv`` (:mod:`shirabe.minicorpus.speech`); a
relative wav path is taken relative to the TSV's directory. Blank lines and
lines starting with ``#`` are skipped.

:class:`BatchSampler` is a step-based sampler for
:class:`shirabe.train.loop.Trainer` (see :mod:`shirabe.train.sampler`) that walks
through epochs itself: each epoch it shuffles the utterances with a generator
seeded by ``(seed, epoch)``, sorts them by length within windows of
``4 * batch_size`` (less padding), cuts the windows into batches and shuffles
the batches. Its state (epoch and position) is exact at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError

SORT_WINDOW = 4


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    text: str
    wav: Path
    where: str  # "file:line", for messages


def read_utterance_list(path: str | Path) -> list[Utterance]:
    """The utterances of a ``utt_id<TAB>text<TAB>wav`` TSV; a malformed line is an InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such utterance list")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the utterance list ({e})") from e
    out: list[Utterance] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        parts = line.split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise InputError(f"{where}: expected 'utt_id<TAB>text<TAB>wav', got {len(parts)} field(s)")
        utt_id, text, wav = (p.strip() for p in parts)
        if utt_id in seen:
            raise InputError(f"{where}: utterance id {utt_id!r} already used at {seen[utt_id]}")
        seen[utt_id] = where
        wav_path = Path(wav)
        if not wav_path.is_absolute():
            wav_path = path.parent / wav_path
        out.append(Utterance(utt_id, text, wav_path, where))
    return out


def find_split(corpus_dir: str | Path, split: str) -> Path:
    """``corpus_dir/<split>.tsv``, or ``corpus_dir/speech/<split>.tsv`` for a whole mini corpus."""
    corpus_dir = Path(corpus_dir)
    for candidate in (corpus_dir / f"{split}.tsv", corpus_dir / "speech" / f"{split}.tsv"):
        if candidate.is_file():
            return candidate
    return corpus_dir / f"{split}.tsv"


@dataclass
class Example:
    utt_id: str
    feats: torch.Tensor  # (T, F)
    targets: list[int]


def collate(examples: Sequence[Example]) -> dict:
    """A batch: padded ``feats`` (B, T, F), ``feat_lens``, padded ``targets`` (B, L), ``target_lens``, ``utt_ids``."""
    feat_lens = torch.tensor([e.feats.size(0) for e in examples], dtype=torch.long)
    target_lens = torch.tensor([len(e.targets) for e in examples], dtype=torch.long)
    feats = torch.zeros(len(examples), int(feat_lens.max()), examples[0].feats.size(1))
    targets = torch.zeros(len(examples), max(1, int(target_lens.max())), dtype=torch.long)
    for i, e in enumerate(examples):
        feats[i, : e.feats.size(0)] = e.feats
        targets[i, : len(e.targets)] = torch.tensor(e.targets, dtype=torch.long)
    return {"feats": feats, "feat_lens": feat_lens, "targets": targets, "target_lens": target_lens,
            "utt_ids": [e.utt_id for e in examples]}


def plan_epoch(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch, as the module docstring describes."""
    rng = np.random.default_rng([int(seed) % 2**32, int(epoch)])
    order = rng.permutation(len(lengths)).tolist()
    window = batch_size * SORT_WINDOW
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: (lengths[i], i))
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches)).tolist()]


def batches_per_epoch(num_examples: int, batch_size: int) -> int:
    window = batch_size * SORT_WINDOW
    full, rest = divmod(num_examples, window)
    return full * SORT_WINDOW + -(-rest // batch_size)


class BatchSampler:
    """Step-based training batches over ``examples`` (see the module docstring)."""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int):
        if not examples:
            raise ValueError("no training examples")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.examples = list(examples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.lengths = [e.feats.size(0) for e in self.examples]
        self.epoch = 0
        self.pos = 0
        self._plan: list[list[int]] | None = None

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(len(self.examples), self.batch_size)

    def _current_plan(self) -> list[list[int]]:
        if self._plan is None:
            self._plan = plan_epoch(self.lengths, self.batch_size, self.seed, self.epoch)
        return self._plan

    def batch(self) -> dict:
        plan = self._current_plan()
        if self.pos >= len(plan):
            self.epoch, self.pos, self._plan = self.epoch + 1, 0, None
            plan = self._current_plan()
        indices = plan[self.pos]
        self.pos += 1
        return collate([self.examples[i] for i in indices])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.seed, self.batch_size = int(state["seed"]), int(state["batch_size"])
        self._plan = None


def eval_batches(examples: Sequence[Example], batch_size: int) -> list[dict]:
    """Batches in a fixed order (sorted by length), for validation."""
    order = sorted(range(len(examples)), key=lambda i: (examples[i].feats.size(0), i))
    return [collate([examples[i] for i in order[k:k + batch_size]]) for k in range(0, len(order), batch_size)]
