"""Seed-VC's ``InterpolateRegulator``: content tokens or features → mel-rate conditioning.

``is_discrete``: token ids through ``embedding`` (codebook × channels); otherwise
continuous features through ``content_in_proj`` (in_channels → channels). The
sequence is nearest-interpolated to ``max(ylens)`` frames, passed through
``len(sampling_ratios)`` × [Conv1d k3, GroupNorm(1), Mish] and a 1×1 conv (an
identity when ``out_channels == channels``), returned frames-first and zeroed past
each item's ``ylen``. Parameter names are upstream's (``model.N``, ``mask_token``,
``embedding``, ``content_in_proj``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InterpolateRegulator(nn.Module):
    def __init__(
        self,
        channels: int = 512,
        sampling_ratios: tuple[int, ...] = (1, 1, 1, 1),
        is_discrete: bool = True,
        in_channels: int | None = None,
        codebook_size: int = 2048,
        out_channels: int | None = None,
        groups: int = 1,
        f0_condition: bool = False,
        **_ignored,
    ):
        super().__init__()
        if f0_condition:
            raise ValueError("the length regulator's own F0 path is not used here (SeedSVC conditions the DiT)")
        out_channels = out_channels or channels
        layers: list[nn.Module] = []
        for _ in sampling_ratios:
            layers += [nn.Conv1d(channels, channels, 3, 1, 1), nn.GroupNorm(groups, channels), nn.Mish()]
        layers.append(nn.Conv1d(channels, out_channels, 1, 1) if out_channels != channels else nn.Identity())
        self.model = nn.Sequential(*layers)
        self.is_discrete = is_discrete
        self.mask_token = nn.Parameter(torch.zeros(1, channels))
        self.embedding = nn.Embedding(codebook_size, channels)
        if not is_discrete:
            self.content_in_proj = nn.Linear(in_channels or channels, channels)
        self.channels = channels

    def forward(self, x: Tensor, ylens: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, N) ids or (B, N, in_channels) features → ((B, max(ylens), C), ylens)."""
        x = self.embedding(x) if self.is_discrete else self.content_in_proj(x)
        total = int(ylens.max())
        x = F.interpolate(x.transpose(1, 2).contiguous(), size=total, mode="nearest")
        out = self.model(x).transpose(1, 2)
        mask = (torch.arange(total, device=x.device)[None, :] < ylens[:, None]).unsqueeze(-1)
        return out * mask, ylens
