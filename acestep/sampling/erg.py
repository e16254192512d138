"""ERG: the unconditional branch computed with a high attention temperature.

Each context manager registers forward hooks that multiply a query projection's output by ``tau``
(0.01) and removes them on exit, even after an error. Indices a smaller model lacks are skipped.

- lyrics: ``lyric_encoder.encoders[i].self_attn.linear_q`` for ``i`` in ``layers`` (default 4, 5);
- diffusion: ``transformer_blocks[i].attn.to_q`` and ``.cross_attn.to_q`` for ``i`` in ``blocks``
  (default 15–19);
- tags: :meth:`acestep.text.encoder.TextEncoder.query_temperature` (UMT5 blocks 8, 9).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from torch import nn

ERG_TAU = 0.01
LYRIC_LAYERS = (4, 5)
DIFFUSION_BLOCKS = (15, 16, 17, 18, 19)


@contextlib.contextmanager
def scaled_outputs(modules: Iterable[nn.Module], tau: float = ERG_TAU) -> Iterator[int]:
    """Multiply each module's output by ``tau`` while active; yields the number of hooked modules."""
    handles = [m.register_forward_hook(lambda _m, _i, out: out * tau) for m in modules]
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


def _existing(items, indices: Iterable[int]) -> list:
    return [items[i] for i in indices if 0 <= i < len(items)]


def lyric_query_temperature(transformer: nn.Module, layers: Iterable[int] = LYRIC_LAYERS, tau: float = ERG_TAU):
    """Hooks on the lyric Conformer's query projections of ``layers``."""
    layers_ = _existing(transformer.lyric_encoder.encoders, layers)
    return scaled_outputs([layer.self_attn.linear_q for layer in layers_], tau)


def diffusion_query_temperature(transformer: nn.Module, blocks: Iterable[int] = DIFFUSION_BLOCKS,
                                tau: float = ERG_TAU):
    """Hooks on the self- and cross-attention query projections of the DiT ``blocks``."""
    blocks_ = _existing(transformer.transformer_blocks, blocks)
    return scaled_outputs([q for b in blocks_ for q in (b.attn.to_q, b.cross_attn.to_q)], tau)
