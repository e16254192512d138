"""The style prompt of a prepared song: ``[3, P]`` tokens (``P = prompt_seconds * 25``, 250 for 10 s).

The prompt is cut from the song's own tokens (as the released models are trained): the ``P``
frames centred in the song, ``start = (T - P) // 2`` (the middle of a song is more typical of
its style than an intro). A song shorter than the prompt gives all its frames followed by
:data:`~songgeneration.tokenizer.PAD_ID` (16385) up to ``P``: the language model reads 16385 as
"no prompt here", exactly as it pads a short prompt at generation time.
"""

from __future__ import annotations

import numpy as np

from songgeneration.tokenizer import PAD_ID


def cut_prompt(tokens: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` prompt frames of ``tokens [K, T]`` (int64; see the module doc)."""
    k, t = tokens.shape
    if t >= frames:
        start = (t - frames) // 2
        return np.ascontiguousarray(tokens[:, start: start + frames], dtype=np.int64)
    out = np.full((k, frames), PAD_ID, dtype=np.int64)
    out[:, :t] = tokens
    return out
