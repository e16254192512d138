"""The two conditions SongBloom prepends to its LM sequence: the lyrics and the style prompt.

**Lyrics** (:class:`LyricConditioner`, ``condition_provider.conditioners.lyrics``): every symbol
row is ``E[id] + E[structure] + S[sentence]`` with the lyric embedding ``E`` (``output_proj``,
an Embedding with padding row 0) and the sentence-in-section embedding ``S``; the ids come from
:func:`songbloom.g2p.tokenize`. Rows are cut to ``max_len`` or padded with ``blank_emb`` (zeros).
The mask (1 on real rows) is returned but, as upstream, nothing downstream uses it. The null
(classifier-free) lyric is the empty string, which tokenizes to ``[0]``: its first row is
``S[1]``, not zero.

**Prompt** (:class:`PromptConditioner`, ``conditioners.prompt_wav``): VAE latents (B, D, Tp)
-> ``output_proj`` (D -> dim, no bias) -> cut or zero-padded to ``max_len`` rows -> times the
mask. The mask is ``round(len · max_len / Tp_padded)`` leading ones (so equal-length prompts get
all ones, including on zero-padded rows); a null prompt has length 0 and gives zeros.

:func:`apply_condition_dropout` nulls conditions for classifier-free guidance training, with
upstream's draws (see there).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from songbloom.g2p.tokenizer import LyricTokens
from songbloom.models.config import LYRICS, PROMPT, ModelConfig, SongBloomConfig

NULL_LYRIC = LyricTokens(ids=[0], structure=[0], sentence=[1])  # '' -> vocab entry 0, sentence 1


@dataclass
class LyricBatch:
    """Padded lyric ids, structure ids and sentence indices (B, L) with lengths (B,).

    L is the conditioner's ``max_len``: longer lyrics are cut, shorter ones padded with 0
    (the padded rows become ``blank_emb``).
    """

    ids: torch.Tensor
    structure: torch.Tensor
    sentence: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def from_tokens(cls, tokens: Sequence[LyricTokens | None], max_len: int) -> LyricBatch:
        """Batch :class:`~songbloom.g2p.LyricTokens`; ``None`` is the null lyric (``''`` -> ``[0]``)."""
        batch = len(tokens)
        out = [torch.zeros(batch, max_len, dtype=torch.long) for _ in range(3)]
        lengths = torch.zeros(batch, dtype=torch.long)
        for i, tok in enumerate(tokens):
            tok = NULL_LYRIC if tok is None else tok
            n = min(len(tok.ids), max_len)
            for buf, values in zip(out, (tok.ids, tok.structure, tok.sentence)):
                buf[i, :n] = torch.as_tensor(values[:n], dtype=torch.long)
            lengths[i] = n
        return cls(*out, lengths)

    @classmethod
    def null(cls, batch: int, max_len: int) -> LyricBatch:
        return cls.from_tokens([None] * batch, max_len)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def to(self, device: torch.device | str) -> LyricBatch:
        return LyricBatch(*(t.to(device) for t in (self.ids, self.structure, self.sentence, self.lengths)))

    def select(self, index: torch.Tensor | Sequence[int]) -> LyricBatch:
        index = torch.as_tensor(index, dtype=torch.long, device=self.ids.device)
        return LyricBatch(*(t.index_select(0, index) for t in (self.ids, self.structure, self.sentence,
                                                              self.lengths)))

    def with_null_rows(self, rows: torch.Tensor) -> LyricBatch:
        """A copy where the rows flagged in ``rows`` (B,) bool are the null lyric."""
        rows = rows.to(self.ids.device)
        null = LyricBatch.null(len(self), self.ids.shape[1]).to(self.ids.device)
        keep = ~rows
        return LyricBatch(*(torch.where(keep[:, None], a, b) if a.dim() == 2 else torch.where(keep, a, b)
                            for a, b in zip((self.ids, self.structure, self.sentence, self.lengths),
                                            (null.ids, null.structure, null.sentence, null.lengths))))

    @staticmethod
    def concat(batches: Sequence[LyricBatch]) -> LyricBatch:
        return LyricBatch(*(torch.cat([getattr(b, f) for b in batches], dim=0)
                            for f in ("ids", "structure", "sentence", "lengths")))


class LyricConditioner(nn.Module):
    """``conditioners.lyrics``: ``blank_emb``, ``output_proj`` (vocab x dim), ``sentence_idx_in_structure_emb``."""

    def __init__(self, vocab_size: int, dim: int, max_len: int, max_sentences: int):
        super().__init__()
        self.max_len = max_len
        self.blank_emb = nn.Parameter(torch.zeros(1, dim), requires_grad=False)
        self.output_proj = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.sentence_idx_in_structure_emb = nn.Embedding(max_sentences, dim, padding_idx=0)

    def forward(self, lyrics: LyricBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, max_len, dim) rows and the (B, max_len) long mask."""
        device = self.output_proj.weight.device
        ids, structure, sentence = (t[:, :self.max_len].to(device)
                                    for t in (lyrics.ids, lyrics.structure, lyrics.sentence))
        rows = self.output_proj(ids) + self.output_proj(structure) + self.sentence_idx_in_structure_emb(sentence)
        b, n = ids.shape
        if n < self.max_len:
            pad = rows.new_zeros(b, self.max_len - n, rows.shape[-1])
            rows = torch.cat([rows, pad], dim=1)
        mask = (torch.arange(self.max_len, device=device)[None, :]
                < lyrics.lengths.to(device).clamp(max=self.max_len)[:, None]).long()
        blank = self.blank_emb.to(rows.dtype).expand(b, self.max_len, -1)
        return torch.where(mask[..., None].bool(), rows, blank), mask


class PromptConditioner(nn.Module):
    """``conditioners.prompt_wav``: ``output_proj`` (latent_dim -> dim, no bias; identity when equal)."""

    def __init__(self, latent_dim: int, dim: int, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.dim = dim
        self.output_proj = nn.Identity() if latent_dim == dim else nn.Linear(latent_dim, dim, bias=False)

    def _param_like(self) -> torch.Tensor:
        if isinstance(self.output_proj, nn.Linear):
            return self.output_proj.weight
        return torch.empty(0)

    def forward(self, latents: torch.Tensor | None, lengths: torch.Tensor | None = None,
                batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (B, D, Tp) (``None``: ``batch`` null prompts) -> (B, max_len, dim), (B, max_len) mask.

        ``lengths`` (B,) are the prompts' valid frames (``None``: all ``Tp``); a length of 0 is a
        null prompt.
        """
        ref = self._param_like()
        if latents is None:
            if batch is None:
                raise ValueError("a null prompt needs the batch size")
            zeros = torch.zeros(batch, self.max_len, self.dim, device=ref.device, dtype=ref.dtype)
            return zeros, torch.zeros(batch, self.max_len, dtype=torch.long, device=ref.device)
        x = latents.transpose(1, 2)
        if isinstance(self.output_proj, nn.Linear):
            x = x.to(device=ref.device, dtype=ref.dtype)
        x = self.output_proj(x)
        b, t = x.shape[0], x.shape[1]
        if t >= self.max_len:
            x = x[:, :self.max_len]
        else:
            x = torch.cat([x, x.new_zeros(b, self.max_len - t, x.shape[-1])], dim=1)
        if lengths is None:
            mask = torch.ones(b, self.max_len, dtype=torch.long, device=x.device)
        else:
            frames = torch.round(lengths.to(x.device).float() * self.max_len / max(t, 1))
            mask = (torch.arange(self.max_len, device=x.device)[None, :] < frames[:, None]).long()
        return x * mask[..., None].to(x.dtype), mask


class ConditionProvider(nn.Module):
    """``condition_provider.conditioners.{prompt_wav,lyrics}`` and the prefix they make."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.conditioners = nn.ModuleDict({
            PROMPT: PromptConditioner(config.latent_dim, config.dim, config.prompt_max_len),
            LYRICS: LyricConditioner(len(config.vocab), config.dim, config.lyric_max_len,
                                     config.max_sentence_per_structure),
        })

    @property
    def lyrics(self) -> LyricConditioner:
        return self.conditioners[LYRICS]

    @property
    def prompt(self) -> PromptConditioner:
        return self.conditioners[PROMPT]

    def forward(self, lyrics: LyricBatch, prompt_latents: torch.Tensor | None,
                prompt_lens: torch.Tensor | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{'prompt_wav': (emb, mask), 'lyrics': (emb, mask)}``."""
        return {
            PROMPT: self.prompt(prompt_latents, prompt_lens, batch=len(lyrics)),
            LYRICS: self.lyrics(lyrics),
        }

    @staticmethod
    def prefix(conditions: dict[str, tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype) -> torch.Tensor:
        """The LM prefix: prompt rows, then lyric rows (upstream's fuser prepends in reverse order)."""
        return torch.cat([conditions[PROMPT][0].to(dtype), conditions[LYRICS][0].to(dtype)], dim=1)


# -- condition dropout -----------------------------------------------------------------------


@dataclass
class ConditionInputs:
    """What :func:`apply_condition_dropout` changes: the lyrics and the prompt latents of a batch."""

    lyrics: LyricBatch
    prompt_latents: torch.Tensor | None
    prompt_lens: torch.Tensor | None = None


def _get(batch: Any, name: str) -> Any:
    return batch[name] if isinstance(batch, dict) else getattr(batch, name)


def _replace(batch: Any, **values) -> Any:
    if isinstance(batch, dict):
        out = dict(batch)
        out.update(values)
        return out
    if dataclasses.is_dataclass(batch):
        return dataclasses.replace(batch, **values)
    out = copy.copy(batch)
    for k, v in values.items():
        setattr(out, k, v)
    return out


def _draw(generator: torch.Generator | None, n: int) -> torch.Tensor:
    return torch.rand(n, generator=generator)


def apply_condition_dropout(batch: Any, cfg: SongBloomConfig | ModelConfig,
                            generator: torch.Generator | None = None, per_sample: bool = False) -> Any:
    """Null conditions for classifier-free guidance training: a changed copy of ``batch``
    (``batch`` itself when nothing is dropped).

    ``batch`` is a :class:`ConditionInputs`, a dataclass or object with the attributes
    ``lyrics`` (:class:`LyricBatch`), ``prompt_latents`` (B, D, Tp) and ``prompt_lens`` (B,) or
    ``None``, or a dict with those keys. A nulled lyric becomes ``''`` (-> ``[0]``); a nulled
    prompt gets zero latents and length 0 (all-zero prompt rows).

    Draws, in order, from ``generator`` (torch's global generator if ``None``), as upstream's
    ``ClassifierFreeGuidanceDropout`` then ``AttributeDropout``:

    1. one uniform: below ``cfg_dropout`` nulls every condition;
    2. one uniform per ``attribute_dropout`` entry in config order (``text.lyrics``, then
       ``wav.prompt_wav``): below its probability nulls that condition.

    Upstream decides once per batch (every element is dropped together). ``per_sample=True``
    draws each decision for every element instead (B uniforms per step).
    """
    model_cfg = cfg.model if isinstance(cfg, SongBloomConfig) else cfg
    lyrics: LyricBatch = _get(batch, "lyrics")
    latents = _get(batch, "prompt_latents")
    lens = _get(batch, "prompt_lens")
    b = len(lyrics)
    n = b if per_sample else 1
    drop_lyrics = torch.zeros(b, dtype=torch.bool)
    drop_prompt = torch.zeros(b, dtype=torch.bool)
    all_drop = (_draw(generator, n) < model_cfg.cfg_dropout).expand(b)
    drop_lyrics |= all_drop
    drop_prompt |= all_drop
    for kind, names in model_cfg.attribute_dropout.items():
        for name, p in names.items():
            hit = (_draw(generator, n) < p).expand(b)
            if (kind, name) == ("text", LYRICS):
                drop_lyrics |= hit
            elif (kind, name) == ("wav", PROMPT):
                drop_prompt |= hit
    if not drop_lyrics.any() and not drop_prompt.any():
        return batch
    changes: dict[str, Any] = {}
    if drop_lyrics.any():
        changes["lyrics"] = lyrics.with_null_rows(drop_lyrics)
    if drop_prompt.any():
        if latents is not None:
            keep = (~drop_prompt).to(latents.device)
            changes["prompt_latents"] = latents * keep[:, None, None].to(latents.dtype)
            if lens is None:
                lens = torch.full((b,), latents.shape[-1], dtype=torch.long, device=latents.device)
            changes["prompt_lens"] = torch.where(keep.to(lens.device), lens, torch.zeros_like(lens))
    return _replace(batch, **changes)
