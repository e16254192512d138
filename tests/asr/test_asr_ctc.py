"""Greedy CTC decoding on hand-made paths and scores."""

from __future__ import annotations

import math

import torch

from shirabe.asr.ctc import collapse, ctc_loss_sum, greedy_decode


def test_collapse_merges_repeats_and_drops_blanks():
    assert collapse([0, 3, 3, 0, 3, 5, 5, 5, 0]) == [3, 3, 5]
    assert collapse([2, 2, 2]) == [2]
    assert collapse([0, 0, 0]) == []
    assert collapse([]) == []
    assert collapse([1, 2, 1, 2]) == [1, 2, 1, 2]
    assert collapse([4, 0, 4], blank=4) == [0]


def _scores(paths: list[list[int]], num_classes: int = 5) -> torch.Tensor:
    """Log-probabilities whose argmax at each frame is the given class."""
    t = max(len(p) for p in paths)
    x = torch.full((len(paths), t, num_classes), math.log(0.1 / (num_classes - 1)))
    for b, path in enumerate(paths):
        for i, c in enumerate(path):
            x[b, i, c] = math.log(0.9)
    return x


def test_greedy_decode_follows_the_argmax_up_to_each_length():
    scores = _scores([[1, 1, 0, 2, 2, 0, 2], [3, 0, 0, 4, 4, 1, 1]])
    # the second utterance is 4 frames long: the frames after it (4 4 1 1 shortened to 4) are ignored
    assert greedy_decode(scores, torch.tensor([7, 4])) == [[1, 2, 2], [3, 4]]


def test_ctc_loss_prefers_the_right_targets():
    scores = _scores([[1, 0, 2, 0]])
    lens = torch.tensor([4])
    right = ctc_loss_sum(scores, lens, torch.tensor([[1, 2]]), torch.tensor([2]))
    wrong = ctc_loss_sum(scores, lens, torch.tensor([[2, 1]]), torch.tensor([2]))
    assert 0 < float(right) < float(wrong)
    # 5 targets with a repeat need 6 frames: impossible in 4, counted as 0 instead of inf
    impossible = ctc_loss_sum(scores, lens, torch.tensor([[1, 1, 2, 2, 1]]), torch.tensor([5]))
    assert float(impossible) == 0.0
