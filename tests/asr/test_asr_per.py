"""Phone error rate: edit counts by kind on hand-made sequences."""

from __future__ import annotations

import math

import pytest

from shirabe.asr.per import EditCounts, edit_counts


@pytest.mark.parametrize(
    ("ref", "hyp", "subs", "dels", "ins"),
    [
        ("k a s a", "k a s a", 0, 0, 0),
        ("k a s a", "k a t a", 1, 0, 0),  # s -> t
        ("k a s a", "k a a", 0, 1, 0),  # s deleted
        ("k a s a", "k a s a N", 0, 0, 1),  # N inserted
        ("k a s a", "", 0, 4, 0),
        ("", "a i", 0, 0, 2),
        ("a b c d e", "b c x e f", 1, 1, 1),  # a deleted, d -> x, f inserted
        ("sh i N b u N", "ch i N b u", 1, 1, 0),  # multi-letter phones are single symbols
    ],
)
def test_edit_counts_by_kind(ref, hyp, subs, dels, ins):
    c = edit_counts(ref.split(), hyp.split())
    assert (c.substitutions, c.deletions, c.insertions) == (subs, dels, ins)
    assert c.ref_len == len(ref.split())


def test_per_is_errors_over_reference_length():
    c = edit_counts("a b c d e".split(), "b c x e f".split())
    assert c.errors == 3
    assert c.per == pytest.approx(3 / 5)
    assert edit_counts(list("abcd"), []).per == 1.0
    assert edit_counts(list("ab"), list("xyzw")).per == 2.0  # insertions can push PER past 1


def test_empty_reference():
    assert edit_counts([], []).per == 0.0
    assert math.isinf(edit_counts([], ["a"]).per)


def test_counts_add_up_over_items():
    total = edit_counts("a b".split(), "a".split()) + edit_counts("c d e".split(), "c x e y".split())
    assert total == EditCounts(substitutions=1, deletions=1, insertions=1, ref_len=5)
    assert total.per == pytest.approx(3 / 5)
