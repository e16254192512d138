"""Classifier-free-guided generation of LeLM's three streams through the delay pattern.

Each step feeds one new pattern column (the first step feeds the prefixed conditions and column
0) to both decoders with their KV caches, for the conditional and the null condition together;
on the guided last-position logits ``u + (c - u) * cfg_coef`` of the three streams, in order:

1. repetition penalty: per stream, every audio id among that stream's tokens of the last
   ``record_window`` steps is divided by ``repetition_penalty`` once (so a negative logit rises);
2. anti-copy ban: the prompt's mixed-stream audio ids get ``-inf`` in stream 0;
3. pick: stream 0 samples at ``temperature`` with top-k (or top-p); the other streams take the
   arg-max; ``top_k == 1`` is the arg-max;
4. mask: columns that hold no frame of a stream, and streams that already emitted EOS, write the
   special id; a stream writing EOS has ended; generation stops when every stream has ended.

The pattern is reverted to ``[1, K, frames]`` (unwritten cells special); :func:`trim_at_eos` cuts
all streams at the first frame where any of them holds EOS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from songgeneration.models.lelm import Conditions, LeLM
from songgeneration.models.text_tokenizer import QWEN_PAD_ID

IM_START_ID = QWEN_PAD_ID + 1
NEGATIVE_MUSICALITY = ("[Musicality-very-high]", "[Musicality-very-low], .")


@dataclass
class SamplingParams:
    cfg_coef: float = 1.5
    temperature: float = 0.8
    top_k: int = 5000
    top_p: float = 0.0
    record_tokens: bool = True
    record_window: int = 50
    repetition_penalty: float = 1.1


@dataclass
class GenerationResult:
    codes: torch.Tensor  # [1, K, frames] reverted pattern (unwritten cells special)
    tokens: torch.Tensor  # codes cut at the first EOS of any stream
    pattern_seq: torch.Tensor  # [1, K, steps + 1]: column 0 and every written column
    margins: torch.Tensor  # [steps, K] top-1 minus top-2 of the final logits
    step0_main_hidden: torch.Tensor | None = None
    step0_sub_hidden: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


def null_conditions(lm: LeLM, description: str | None = None) -> Conditions:
    """The unconditional branch: no lyrics, no prompt, and no description (v2: a description that
    asks for ``[Musicality-very-high]`` gets ``[Musicality-very-low], .`` instead)."""
    cp = lm.condition_provider
    if lm.config.version == "v2" and description and NEGATIVE_MUSICALITY[0] in description:
        desc_ids = cp.description.token_ids([NEGATIVE_MUSICALITY[1]])
    else:
        desc_ids = torch.full((1, cp.description.max_len), QWEN_PAD_ID, dtype=torch.long)
        desc_ids[0, 0] = IM_START_ID
    lyric_ids = torch.full((1, cp.lyric.max_len), QWEN_PAD_ID, dtype=torch.long)
    lyric_ids[0, 0] = IM_START_ID
    return lm.conditions_from_ids(lyric_ids, desc_ids, None)


def trim_at_eos(codes: torch.Tensor, eos: int) -> torch.Tensor:
    hit = (codes == eos).any(dim=1)[0].nonzero()
    return codes[..., :int(hit[0])] if len(hit) else codes


def _pick_first_stream(logits: torch.Tensor, params: SamplingParams, generator) -> int:
    if params.top_k == 1 or params.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p > 0:
        sorted_p, order = probs.sort(descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > params.top_p
        sorted_p[drop] = 0
        return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=generator)])
    if params.top_k > 0:
        top_p, top_i = probs.topk(min(params.top_k, probs.shape[-1]))
        return int(top_i[torch.multinomial(top_p / top_p.sum(), 1, generator=generator)])
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def generate(lm: LeLM, cond: Conditions, null: Conditions, frames: int, params: SamplingParams,
             ban_ids: torch.Tensor | None = None, generator: torch.Generator | None = None,
             progress=None) -> GenerationResult:
    """Generate ``frames`` frames for one conditional/null pair (each a batch of 1)."""
    k, eos, special = lm.config.code_depth, lm.config.eos_id, lm.config.special_id
    pattern = lm.pattern
    device = next(lm.parameters()).device
    both = Conditions.cat([cond, null]).to(device)
    main_pre, sub_pre, _ = lm.prefixes(both)
    total = pattern.length(frames)
    seq = torch.full((1, k, total), special, dtype=torch.long, device=device)
    caches = (lm.transformer.new_cache(), lm.transformer2.new_cache())
    banned = None
    if ban_ids is not None:
        banned = ban_ids[ban_ids < eos].unique().to(device)
    ended = [False] * k
    history: list[torch.Tensor] = []
    margins = []
    step0 = (None, None)
    steps = 0
    for offset in range(1, total):
        col = seq[:, :, offset - 1:offset].expand(2, -1, -1)
        main_in, sub_in = lm.main_inputs(col), lm.sub_inputs(col)
        if offset == 1:
            main_in, sub_in = torch.cat([main_pre, main_in], dim=1), torch.cat([sub_pre, sub_in], dim=1)
        h1, _, h2 = lm.run(main_in, sub_in, caches)
        if offset == 1:
            step0 = (h1, h2)
        out = lm.heads(h1[:, -1:], h2[:, -1:])[:, :, 0].float()  # [2, K, card]
        logits = out[1] + (out[0] - out[1]) * params.cfg_coef
        if params.record_tokens and history:
            recent = torch.stack(history[-params.record_window:])  # [n, K]
            for q in range(k):
                ids = recent[:, q].unique()
                ids = ids[ids < eos]
                logits[q, ids] = logits[q, ids] / params.repetition_penalty
        if banned is not None and len(banned):
            logits[0, banned] = float("-inf")
        top2 = logits.topk(2, dim=-1).values
        margins.append(top2[:, 0] - top2[:, 1])
        tokens = [_pick_first_stream(logits[0], params, generator)] + [int(logits[q].argmax()) for q in range(1, k)]
        valid = pattern.valid(offset, frames)
        for q in range(k):
            if not valid[q] or ended[q]:
                tokens[q] = special
        for q in range(k):
            if tokens[q] == eos:
                ended[q] = True
        written = torch.tensor(tokens, dtype=torch.long, device=device)
        seq[0, :, offset] = written
        history.append(written)
        steps += 1
        if progress is not None:
            progress.update(1)
        if all(ended):
            break
    codes = pattern.revert(seq[:, :, :steps + 1], frames)
    return GenerationResult(codes=codes, tokens=trim_at_eos(codes, eos), pattern_seq=seq[:, :, :steps + 1],
                            margins=torch.stack(margins), step0_main_hidden=step0[0], step0_sub_hidden=step0[1])
