"""CTC loss over phone targets and greedy (best path) decoding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

BLANK_ID = 0


def collapse(ids: Sequence[int], blank: int = BLANK_ID) -> list[int]:
    """Best-path collapse: merge runs of the same id, then drop blanks (``a a - a b`` → ``a a b``)."""
    out: list[int] = []
    prev = None
    for i in ids:
        i = int(i)
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


def greedy_decode(log_probs: torch.Tensor, lens: torch.Tensor, blank: int = BLANK_ID) -> list[list[int]]:
    """The collapsed argmax path of each utterance of (B, T, C) scores, up to its length."""
    best = log_probs.argmax(dim=-1).cpu()
    return [collapse(best[b, : int(lens[b])].tolist(), blank) for b in range(best.size(0))]


def ctc_loss_sum(log_probs: torch.Tensor, out_lens: torch.Tensor, targets: torch.Tensor,
                 target_lens: torch.Tensor, blank: int = BLANK_ID) -> torch.Tensor:
    """Summed CTC loss of (B, T, C) log-probabilities against padded (B, L) targets.

    Utterances too short for their targets (infinite loss) contribute 0.
    """
    return F.ctc_loss(log_probs.transpose(0, 1), targets, out_lens, target_lens, blank=blank,
                      reduction="sum", zero_infinity=True)
