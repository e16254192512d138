"""LeLM's conditions: lyrics, style description and prompt tokens, all prepended to the sequence.

* Lyrics (:class:`LyricConditioner`, upstream ``QwTokenizer``): ``'<|im_start|>' + text`` through
  the Qwen2 tokenizer with the structure tags added as special tokens ([verse] = 151646 ...),
  padded with 151643 or cut to ``max_len``. A row is ``output_proj[id] + structure_emb[s]``: ``s`` is
  ``tag id - 151645`` from each structure tag up to the next one or the end of the real tokens, 0
  before the first tag and on padding.
* Description (:class:`DescriptionConditioner`, ``QwTextTokenizer``): same tokenizer and prefix,
  rows ``output_proj[id]``.
* Prompt (:class:`PromptConditioner`, ``qt_embedding``): per stream the EOS id is put in front of
  the prompt frames; a stream whose first frame is ``special`` is absent (all ``special``); padded
  with ``special`` or cut to ``max_len - 1``. The main decoder gets ``[EOT_emb, emb.0(mixed)]``,
  the sub decoder ``[layer2_EOT_emb, emb.1(vocal) + emb.2(accompaniment)]``.

No attention mask is derived from padding: padded rows are attended to, as upstream does. The
tables' row counts follow the tokenizer: 151,646 Qwen2 ids plus each added tag that is not already
one of its tokens (a single byte such as ``.`` is); :func:`text_vocab_rows` computes it without a
tokenizer, and an attached tokenizer must agree.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from shirabe.cli import InputError
from songgeneration.models.config import LeLMConfig, TextConditionerConfig
from songgeneration.models.text_tokenizer import (
    QWEN_BASE_VOCAB,
    QWEN_IM_START,
    QWEN_PAD_ID,
    load_text_tokenizer,
)

STRUCTURE_ROWS = 200
STRUCTURE_OFFSET = QWEN_BASE_VOCAB - 1  # [verse] = 151646 -> structure index 1


def text_vocab_rows(tags: list[str]) -> int:
    """Rows of a Qwen2 table after adding ``tags``: single bytes are already base tokens."""
    return QWEN_BASE_VOCAB + len({t for t in tags if len(t.encode("utf-8")) > 1})


class TextConditioner(nn.Module):
    """Shared by lyrics and description: the tokenizer (attached on demand) and the id table."""

    def __init__(self, cfg: TextConditionerConfig, tags: list[str], dim: int):
        super().__init__()
        self.cfg = cfg
        self.tags = list(tags)
        self.max_len = cfg.max_len
        self.output_proj = nn.Embedding(text_vocab_rows(self.tags), dim, padding_idx=QWEN_PAD_ID)
        self.tokenizer = None

    def attach_tokenizer(self, folder: str | Path, tokenizer=None) -> None:
        tok = tokenizer if tokenizer is not None else load_text_tokenizer(folder)
        if self.tags:
            tok.add_tokens(self.tags, special_tokens=True)
        if len(tok) != self.output_proj.num_embeddings:
            raise InputError(f"{folder}: the tokenizer has {len(tok)} ids with the tags of conditioner "
                             f"'{self.cfg.name}', its table has {self.output_proj.num_embeddings} rows")
        self.tokenizer = tok

    def token_ids(self, texts: list[str | None]) -> torch.Tensor:
        """``[B, max_len]`` ids of ``'<|im_start|>' + text`` (None: the prefix alone), padded/cut."""
        if self.tokenizer is None:
            raise InputError(f"conditioner '{self.cfg.name}': no Qwen2 tokenizer attached (token_path)")
        out = torch.full((len(texts), self.max_len), QWEN_PAD_ID, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self.tokenizer(QWEN_IM_START + (text or ""), add_special_tokens=False)["input_ids"]
            ids = ids[:self.max_len]
            out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


class LyricConditioner(TextConditioner):
    def __init__(self, cfg: TextConditionerConfig, tags: list[str], dim: int):
        super().__init__(cfg, tags, dim)
        self.structure_emb = nn.Embedding(STRUCTURE_ROWS, dim, padding_idx=0)
        self.first_tag_id, self.last_tag_id = QWEN_BASE_VOCAB, self.output_proj.num_embeddings - 1

    def structure_index(self, ids: torch.Tensor) -> torch.Tensor:
        """Structure index of each token (0 before the first tag and on padding)."""
        out = torch.zeros_like(ids)
        for b in range(ids.shape[0]):
            real = int((ids[b] != QWEN_PAD_ID).nonzero().max()) + 1 if (ids[b] != QWEN_PAD_ID).any() else 0
            current = 0
            for i in range(real):
                tok = int(ids[b, i])
                if self.first_tag_id <= tok <= self.last_tag_id:
                    current = tok - STRUCTURE_OFFSET
                out[b, i] = current
        return out

    def rows(self, ids: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        return self.output_proj(ids) + self.structure_emb(structure)


class DescriptionConditioner(TextConditioner):
    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.output_proj(ids)


class PromptConditioner(nn.Module):
    def __init__(self, code_size: int, code_depth: int, max_len: int, dim: int):
        super().__init__()
        self.eos, self.special = code_size, code_size + 1
        self.max_len = max_len
        self.EOT_emb = nn.Parameter(torch.zeros(1, dim))
        self.layer2_EOT_emb = nn.Parameter(torch.zeros(1, dim))
        self.emb = nn.ModuleList(nn.Embedding(code_size + 2, dim, padding_idx=code_size + 1)
                                 for _ in range(code_depth))

    def token_ids(self, prompt: torch.Tensor) -> torch.Tensor:
        """``[B, K, T]`` prompt frames -> ``[B, K, max_len - 1]``: EOS in front, absent streams all special."""
        b, k, _ = prompt.shape
        seq = torch.cat([prompt.new_full((b, k, 1), self.eos), prompt], dim=-1)
        absent = prompt[:, :, :1] == self.special if prompt.shape[-1] else torch.ones_like(seq[:, :, :1], dtype=bool)
        seq = torch.where(absent, torch.full_like(seq, self.special), seq)
        n = self.max_len - 1
        if seq.shape[-1] >= n:
            return seq[:, :, :n]
        return torch.cat([seq, seq.new_full((b, k, n - seq.shape[-1]), self.special)], dim=-1)

    def rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = ids.shape[0]
        main = torch.cat([self.EOT_emb.expand(b, 1, -1), self.emb[0](ids[:, 0])], dim=1)
        sub = sum(self.emb[q](ids[:, q]) for q in range(1, ids.shape[1]))
        sub = torch.cat([self.layer2_EOT_emb.expand(b, 1, -1), sub], dim=1)
        return main, sub


class ConditionProvider(nn.Module):
    def __init__(self, config: LeLMConfig):
        super().__init__()
        d = config.dim
        lyric = LyricConditioner(config.lyric, config.lyric_tags, d)
        desc = DescriptionConditioner(config.description, config.description_tags, d)
        prompt = PromptConditioner(config.code_size, config.code_depth, config.prompt_max_len, d)
        by_name = {config.lyric.name: lyric, config.description.name: desc, config.prompt_name: prompt}
        self.conditioners = nn.ModuleDict({name: by_name[name] for name in config.prepend})
        self.lyric_name, self.desc_name, self.prompt_name = config.lyric.name, config.description.name, \
            config.prompt_name
        self.prepend = list(config.prepend)

    @property
    def lyric(self) -> LyricConditioner:
        return self.conditioners[self.lyric_name]

    @property
    def description(self) -> DescriptionConditioner:
        return self.conditioners[self.desc_name]

    @property
    def prompt(self) -> PromptConditioner:
        return self.conditioners[self.prompt_name]

    def prefix_rows(self, lyric_ids: torch.Tensor, lyric_structure: torch.Tensor, desc_ids: torch.Tensor,
                    prompt_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Main and sub prefixes ``[B, P, d]`` in ``fuser.prepend`` order, and each condition's rows."""
        lyric = self.lyric.rows(lyric_ids, lyric_structure)
        desc = self.description.rows(desc_ids)
        p_main, p_sub = self.prompt.rows(prompt_ids)
        main = {self.lyric_name: lyric, self.desc_name: desc, self.prompt_name: p_main}
        sub = {self.lyric_name: lyric, self.desc_name: desc, self.prompt_name: p_sub}
        parts = {"lyric": lyric, "description": desc, "prompt_main": p_main, "prompt_sub": p_sub}
        return (torch.cat([main[n] for n in self.prepend], dim=1), torch.cat([sub[n] for n in self.prepend], dim=1),
                parts)
