"""Duration ratio between a hypothesis and a reference recording."""

from __future__ import annotations

import numpy as np


def duration_ratio(ref_wav, hyp_wav, sr: int, hyp_sr: int | None = None) -> float:
    """``duration(hyp) / duration(ref)`` in seconds (1.0 = same length).

    ``hyp_sr`` defaults to ``sr``. Multi-channel arrays are (samples, channels).
    """
    ref_n, hyp_n = np.shape(ref_wav)[0], np.shape(hyp_wav)[0]
    if ref_n == 0:
        raise ValueError("reference audio is empty")
    return (hyp_n / float(sr if hyp_sr is None else hyp_sr)) / (ref_n / float(sr))
