"""Text → frame-level condition by average upsampling (ZipVoice has no duration model).

An utterance of N tokens over T frames gives every token ``d = T // N`` frames;
the ``T - N·d`` frames left over (and any batch padding) take the encoding of
the pad token appended to every sequence, i.e. index N of the encoder output.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pad_labels(tokens: list[list[int]], pad_id: int, device: torch.device | str = "cpu") -> Tensor:
    """Append one ``pad_id`` to every sequence, then right-pad to a rectangle: ``(B, S+1)``."""
    seqs = [list(t) + [pad_id] for t in tokens]
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], dtype=torch.int64, device=device)


def make_pad_mask(lengths: Tensor, max_len: int = 0) -> Tensor:
    """``(B, max(max_len, lengths.max()))`` bool, True at positions ``>= length``."""
    max_len = max(int(max_len), int(lengths.max()))
    positions = torch.arange(0, max_len, device=lengths.device)
    return positions.unsqueeze(0).expand(lengths.size(0), max_len) >= lengths.unsqueeze(-1)


def average_token_durations(features_lens: Tensor, tokens_lens: Tensor) -> list[list[int]]:
    """Per utterance, ``tokens_len`` copies of ``features_len // tokens_len``."""
    out = []
    for n_frames, n_tokens in zip(features_lens.tolist(), tokens_lens.tolist()):
        if n_tokens <= 0:
            raise ValueError("an utterance has no tokens")
        out.append([n_frames // n_tokens] * n_tokens)
    return out


def tokens_index(durations: list[list[int]], num_frames: int) -> Tensor:
    """Frame → token index ``(B, num_frames)``; frames after the last token map to index N."""
    index = torch.zeros(len(durations), num_frames, dtype=torch.int64)
    for b, durs in enumerate(durations):
        start = 0
        for i, d in enumerate(durs):
            index[b, start : start + d] = i
            start += d
        if start > num_frames:
            raise ValueError(f"durations sum to {start} > {num_frames} frames")
        index[b, start:] = len(durs)
    return index


def upsample_text(embed: Tensor, tokens_lens: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
    """Gather ``embed`` (B, S+1, C) to frames: returns ``(B, T, C)`` and the padding mask ``(B, T)``."""
    num_frames = int(features_lens.max())
    padding_mask = make_pad_mask(features_lens, max_len=num_frames)
    index = tokens_index(average_token_durations(features_lens, tokens_lens), num_frames).to(embed.device)
    cond = torch.gather(embed, dim=1, index=index.unsqueeze(-1).expand(-1, -1, embed.size(-1)))
    return cond, padding_mask


def inference_num_frames(
    prompt_features_lens: Tensor, prompt_tokens_lens: Tensor, tokens_lens: Tensor, speed: float
) -> Tensor:
    """Total frames (prompt + generated): ``P + ceil(P / N_prompt · N_text / speed)`` in float32."""
    ratio = prompt_features_lens / prompt_tokens_lens * tokens_lens / speed
    return prompt_features_lens + torch.ceil(ratio).to(dtype=torch.int64)


def condition_time_mask(
    features_lens: Tensor, mask_percent: tuple[float, float] = (0.7, 1.0), max_len: int = 0
) -> Tensor:
    """One contiguous span per utterance, True inside: the frames the model must infill.

    The span covers a uniform ``mask_percent`` share of the utterance and starts
    at a uniform position that keeps it inside. Returns ``(B, max(max_len, T))``.
    """
    lens = features_lens.to(torch.float32)
    size = (torch.empty_like(lens).uniform_(*mask_percent) * lens).to(torch.int64)
    start = (torch.rand_like(lens) * (features_lens - size).to(torch.float32)).to(torch.int64)
    width = max(int(max_len), int(features_lens.max()))
    pos = torch.arange(width, device=features_lens.device)
    return (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + size)[:, None])
