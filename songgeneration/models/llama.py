"""The two LLaMA decoders of LeLM, in the layout of the released ``model.pt``.

Each is a causal LM wrapper ``{model: {embed_tokens, layers.N, norm}, lm_head}`` as upstream's
vendored Hugging Face Llama (transformers 4.37) names it, so the ``transformer.*`` and
``transformer2.*`` keys load as they are. The maths is that model's in eager mode: pre-norm
RMSNorm (fp32 statistics, eps 1e-5), rotary embedding over the whole head (rotate-half, base
``rope_theta``, positions counted from 0 at the first input row and continued through the KV
cache), multi-head attention (kv heads = heads) with scale 1/sqrt(head_dim) and a causal mask only,
SwiGLU MLP, no biases.

The decoder layers, norm, rotary tables and KV cache are the project's own LLaMA blocks
(:mod:`shirabe.nn.llama`, identical maths with the eps as a parameter); transformers'
``LlamaModel`` is not used because its cache and attention classes change between releases.
``embed_tokens`` is kept for the checkpoint layout only: LeLM always feeds ``inputs_embeds``.
``max_position_embeddings`` bounds nothing here (the rotary angles are computed for any
position, as upstream's cache grows on demand).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from shirabe.nn.llama import KVCache, LlamaDecoderLayer, RMSNorm, rope_cos_sin

RMS_EPS = 1e-5


class LlamaModel(nn.Module):
    def __init__(self, vocab: int, dim: int, num_heads: int, num_layers: int, hidden: int, rope_theta: float):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(LlamaDecoderLayer(dim, num_heads, hidden, rope_theta, RMS_EPS)
                                    for _ in range(num_layers))
        self.norm = RMSNorm(dim, RMS_EPS)
        self.head_dim = dim // num_heads
        self.rope_theta = rope_theta
        self.gradient_checkpointing = False

    def forward(self, inputs_embeds: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """(B, n, dim) -> final-norm hidden states; positions continue after ``cache.length``."""
        x = inputs_embeds
        past = cache.length if cache is not None else 0
        positions = torch.arange(past, past + x.shape[1], device=x.device)
        cos, sin = rope_cos_sin(positions, self.head_dim, self.rope_theta, x.dtype)
        use_ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and cache is None
        for i, layer in enumerate(self.layers):
            if use_ckpt:
                x = checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin, cache, i)
        if cache is not None:
            cache.length = past + inputs_embeds.shape[1]
        return self.norm(x)


class LlamaCausalLM(nn.Module):
    """``model`` + ``lm_head`` (Linear dim -> vocab, no bias)."""

    def __init__(self, vocab: int, dim: int, num_heads: int, num_layers: int, hidden: int, rope_theta: float):
        super().__init__()
        self.model = LlamaModel(vocab, dim, num_heads, num_layers, hidden, rope_theta)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.model.layers))

    def forward(self, inputs_embeds: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The final-norm hidden states (the head is applied by the caller where it is used)."""
        return self.model(inputs_embeds, cache)
