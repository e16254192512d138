"""Phone error rate: the Levenshtein alignment of a hypothesis to a reference, by error kind.

``PER = (substitutions + deletions + insertions) / len(reference)``; over many
utterances the counts are summed before dividing. An empty reference gives a
PER of 0 for an empty hypothesis and infinity otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EditCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def per(self) -> float:
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.ref_len + other.ref_len)


def edit_counts(ref: Sequence, hyp: Sequence) -> EditCounts:
    """Substitutions, deletions and insertions of a minimum-cost (unit costs) alignment.

    Among alignments of equal cost the one with the fewest insertions plus
    deletions (most substitutions) is taken.
    """
    n, m = len(ref), len(hyp)
    # cell: (cost, indels, substitutions, deletions, insertions); tuples compare cost first
    prev = [(j, j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, i, 0, i, 0)]
        r = ref[i - 1]
        for j in range(1, m + 1):
            d = prev[j - 1]
            sub = 0 if r == hyp[j - 1] else 1
            diag = (d[0] + sub, d[1], d[2] + sub, d[3], d[4])
            u = prev[j]
            dele = (u[0] + 1, u[1] + 1, u[2], u[3] + 1, u[4])
            left = cur[j - 1]
            ins = (left[0] + 1, left[1] + 1, left[2], left[3], left[4] + 1)
            cur.append(min(diag, dele, ins))
        prev = cur
    _, _, s, d, ins_count = prev[m]
    return EditCounts(s, d, ins_count, n)
