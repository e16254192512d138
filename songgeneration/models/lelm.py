"""LeLM: the two-decoder language model over SongGeneration's three 25 Hz token streams.

Streams (in this order): 0 mixed, 1 vocal, 2 accompaniment; ids ``0..code_size-1`` are audio,
``code_size`` (16384) is EOS and ``code_size + 1`` (16385) the special/empty id. The main decoder
(``transformer``) reads ``emb.0`` of the mixed stream after the prefixed conditions and predicts
the mixed stream with its ``lm_head``; the sub decoder (``transformer2``) reads
``mlp(concat(layer2_emb.1(vocal) + layer2_emb.2(accompaniment), main hidden))`` (GELU MLP, the
sub input first) after its own prefix and predicts vocal and accompaniment with ``linears.0/1``.
Only the last S positions (the pattern columns) give logits. ``layer2_emb.0``,
``transformer2.lm_head`` and both ``embed_tokens`` exist for the checkpoint layout only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from songgeneration.models.conditioners import ConditionProvider
from songgeneration.models.config import LeLMConfig
from songgeneration.models.llama import LlamaCausalLM
from songgeneration.models.pattern import DelayPattern


@dataclass
class Conditions:
    """Tokenised conditions of a batch: lyric ids + structure ``[B, Ll]``, description ids ``[B, Ld]``
    and prompt ids ``[B, K, Lp-1]`` (after the EOS/absent/pad rule)."""

    lyric_ids: torch.Tensor
    lyric_structure: torch.Tensor
    desc_ids: torch.Tensor
    prompt_ids: torch.Tensor

    def to(self, device) -> Conditions:
        return Conditions(*(t.to(device) for t in (self.lyric_ids, self.lyric_structure, self.desc_ids,
                                                   self.prompt_ids)))

    @staticmethod
    def cat(items: list[Conditions]) -> Conditions:
        return Conditions(*(torch.cat(ts, dim=0) for ts in zip(
            *((c.lyric_ids, c.lyric_structure, c.desc_ids, c.prompt_ids) for c in items))))


@dataclass
class LMOutput:
    logits: torch.Tensor  # [B, K, T, card] (aligned with the codes)
    mask: torch.Tensor  # [B, K, T] bool


class LeLM(nn.Module):
    def __init__(self, config: LeLMConfig):
        super().__init__()
        self.config = config
        d, k, card = config.dim, config.code_depth, config.code_size
        self.condition_provider = ConditionProvider(config)
        self.emb = nn.ModuleList([nn.Embedding(card + 2, d)])
        self.transformer = LlamaCausalLM(card + 1, d, config.num_heads, config.num_layers,
                                         config.intermediate_size, config.rope_theta)
        self.mlp = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d))
        self.layer2_emb = nn.ModuleList(nn.Embedding(card + 2, d) for _ in range(k))
        self.transformer2 = LlamaCausalLM(card + 1, d, config.num_heads, config.num_layers_sub,
                                          config.intermediate_size, config.rope_theta_sub)
        self.linears = nn.ModuleList(nn.Linear(d, card + 1, bias=False) for _ in range(k - 1))
        self.pattern = DelayPattern(config.delays, config.special_id)

    # ---- conditions -------------------------------------------------------------------------
    def make_conditions(self, lyrics: list[str | None], descriptions: list[str | None],
                        prompt: torch.Tensor | None) -> Conditions:
        """Text through the attached tokenizer; ``prompt`` ``[B, K, T]`` frames (None: absent)."""
        cp = self.condition_provider
        lyric_ids = cp.lyric.token_ids(lyrics)
        desc_ids = cp.description.token_ids(descriptions)
        if prompt is None:
            prompt = torch.full((len(lyrics), self.config.code_depth, 0), self.config.special_id, dtype=torch.long)
        return Conditions(lyric_ids, cp.lyric.structure_index(lyric_ids), desc_ids, cp.prompt.token_ids(prompt.long()))

    def conditions_from_ids(self, lyric_ids: torch.Tensor, desc_ids: torch.Tensor,
                            prompt: torch.Tensor | None) -> Conditions:
        """Already tokenised text (padded to the conditioners' lengths) and prompt frames."""
        cp = self.condition_provider
        if prompt is None:
            prompt = torch.full((lyric_ids.shape[0], self.config.code_depth, 0), self.config.special_id,
                                dtype=torch.long)
        return Conditions(lyric_ids, cp.lyric.structure_index(lyric_ids), desc_ids, cp.prompt.token_ids(prompt))

    def prefixes(self, cond: Conditions) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        return self.condition_provider.prefix_rows(cond.lyric_ids, cond.lyric_structure, cond.desc_ids,
                                                   cond.prompt_ids)

    # ---- decoders ---------------------------------------------------------------------------
    def main_inputs(self, seq: torch.Tensor) -> torch.Tensor:
        return self.emb[0](seq[:, 0])

    def sub_inputs(self, seq: torch.Tensor) -> torch.Tensor:
        return sum(self.layer2_emb[q](seq[:, q]) for q in range(1, seq.shape[1]))

    def heads(self, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """``[B, n, d]`` x2 -> logits ``[B, K, n, card]``."""
        return torch.stack([self.transformer.lm_head(h1)] + [lin(h2) for lin in self.linears], dim=1)

    def run(self, main_in: torch.Tensor, sub_in: torch.Tensor, caches=None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor]:
        """Both decoders on prefixed inputs: (h1, sub decoder input after ``mlp``, h2)."""
        c1, c2 = caches if caches is not None else (None, None)
        h1 = self.transformer(main_in, c1)
        sub = self.mlp(torch.cat([sub_in, h1], dim=-1))
        h2 = self.transformer2(sub, c2)
        return h1, sub, h2

    def forward(self, seq: torch.Tensor, cond: Conditions, return_intermediates: bool = False):
        """Pattern sequence ``[B, K, S]`` -> logits ``[B, K, S, card]`` (column s predicts s + 1)."""
        main_pre, sub_pre, parts = self.prefixes(cond)
        main_in = torch.cat([main_pre, self.main_inputs(seq)], dim=1)
        sub_in = torch.cat([sub_pre, self.sub_inputs(seq)], dim=1)
        h1, sub, h2 = self.run(main_in, sub_in)
        s = seq.shape[-1]
        logits = self.heads(h1[:, -s:], h2[:, -s:])
        if not return_intermediates:
            return logits
        return logits, {**parts, "main_inputs_embeds": main_in, "main_hidden": h1, "sub_inputs_embeds": sub,
                        "sub_hidden": h2}

    def compute_predictions(self, codes: torch.Tensor, cond: Conditions) -> LMOutput:
        """Teacher-forced logits of codes ``[B, K, T]``, aligned with them."""
        seq = self.pattern.build(codes)
        logits = self(seq, cond)
        out, mask = self.pattern.revert_logits(logits, codes.shape[-1])
        return LMOutput(out, mask)

    def loss(self, codes: torch.Tensor, cond: Conditions, ignore: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy over valid frames (``ignore`` ``[B, K, T]`` True = not counted)."""
        out = self.compute_predictions(codes, cond)
        keep = out.mask if ignore is None else out.mask & ~ignore
        return F.cross_entropy(out.logits[keep].float(), codes[keep])
