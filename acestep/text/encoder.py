"""The prompt (tag) encoder: UMT5 from a local ``umt5-base`` directory (transformers).

:class:`TextEncoder` tokenizes prompts (at most ``max_length`` 256 tokens, padded to the longest
prompt in the batch, as the released pipeline does) and returns the encoder's last hidden state
[B, L, d_model] with the int64 attention mask [B, L].

ERG for tags (``erg=True``): the unconditional text branch is the same prompt encoded with the
self-attention queries of blocks ``ERG_BLOCKS`` multiplied by ``ERG_TAU`` (a high attention
temperature), instead of zeroed embeddings. Blocks a smaller model lacks are ignored.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from shirabe.cli import InputError

MAX_LENGTH = 256
ERG_TAU = 0.01
ERG_BLOCKS = (8, 9)


class TextEncoder:
    def __init__(self, model, tokenizer, device: torch.device | str = "cpu", max_length: int = MAX_LENGTH):
        self.model = model.to(device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    @classmethod
    def from_dir(cls, folder: str | Path, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> TextEncoder:
        from transformers import AutoTokenizer, UMT5EncoderModel

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: text encoder folder (umt5-base) not found")
        for name in ("config.json",):
            if not (folder / name).is_file():
                raise InputError(f"{folder / name}: file not found (a umt5-base directory holds config.json, "
                                 "the weights and the tokenizer files)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # transformers raises several error types
            raise InputError(f"{folder}: cannot load the tokenizer ({type(exc).__name__}: {exc})") from None
        try:
            model = UMT5EncoderModel.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
        except Exception as exc:
            raise InputError(f"{folder}: cannot load the UMT5 encoder ({type(exc).__name__}: {exc})") from None
        return cls(model, tokenizer, device)

    def tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device),
                "attention_mask": enc["attention_mask"].to(self.device).long()}

    @torch.no_grad()
    def encode(self, prompts: list[str], erg: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(last_hidden_state [B, L, d], attention_mask int64 [B, L]); ``erg`` applies the query temperature."""
        enc = self.tokenize(prompts)
        with self.query_temperature() if erg else contextlib.nullcontext():
            hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        return hidden, enc["attention_mask"]

    @contextlib.contextmanager
    def query_temperature(self, tau: float = ERG_TAU, blocks: tuple[int, ...] = ERG_BLOCKS):
        """Multiply the self-attention query projections of ``blocks`` by ``tau`` while active."""
        handles = []
        layers = self.model.encoder.block
        for i in blocks:
            if i < len(layers):
                q = layers[i].layer[0].SelfAttention.q
                handles.append(q.register_forward_hook(lambda _m, _i, out: out * tau))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
