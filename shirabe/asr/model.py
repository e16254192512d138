"""A small CTC phone recognizer over the Vocos log-mel fbank.

Layers, in order:

1. per-utterance normalisation of each mel bin over the utterance's frames:
   the mean is subtracted (``feature_norm="mean"``, the default: the recording
   level and channel colour no longer matter, while a signal that hardly moves,
   such as steady noise, stays small) or the variance is normalised as well
   (``"meanvar"``);
2. in training only, SpecAugment-style masking: ``time_masks`` spans of up to
   ``time_mask_width`` frames (at most a fifth of the utterance) and
   ``freq_masks`` bands of up to ``freq_mask_width`` bins are set to 0, drawn
   from torch's global generator;
3. a convolutional front end: ``log2(subsampling)`` 1-D convolutions over time
   (kernel 5, stride 2, ReLU; one of stride 1 without subsampling), the first
   from the 100 bins to ``conv_channels``, with the frames past each
   utterance's end zeroed after each (an utterance decodes the same alone and
   in a padded batch), then ``conv_blocks`` residual blocks ``x + GELU(conv(LayerNorm(x)))``
   (kernel 5) and a LayerNorm;
4. ``num_layers`` (0: none) bidirectional LSTM layers of ``hidden_size`` units per
   direction (padding frames packed away, dropout between layers), projected
   back to ``conv_channels`` and added to their input: the residual path lets
   the convolutions learn the phones within the first few hundred updates,
   where a plain LSTM stack sits for long at the all-blank solution;
5. dropout and a linear layer to the phones plus the CTC blank (id 0), then
   log-softmax.

The default size has about 1.2 M parameters and sees 23.4 frames per second
(4x subsampling of 93.75), well above the 10 to 16 phones per second of
Japanese speech.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from shirabe.audio.mel import N_MELS

SUBSAMPLINGS = (1, 2, 4, 8)
FEATURE_NORMS = ("mean", "meanvar")
KERNEL = 5


@dataclass
class ModelConfig:
    """The recognizer's architecture (stored as ``model.json`` beside the weights)."""

    num_classes: int
    n_mels: int = N_MELS
    feature_norm: str = "mean"
    subsampling: int = 4
    conv_channels: int = 160
    conv_blocks: int = 4
    hidden_size: int = 96
    num_layers: int = 2
    dropout: float = 0.2
    time_masks: int = 2
    time_mask_width: int = 20
    freq_masks: int = 2
    freq_mask_width: int = 15

    def __post_init__(self):
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {self.feature_norm!r}")
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {self.subsampling}")
        if self.conv_blocks < 0 or self.num_layers < 0:
            raise ValueError(f"conv_blocks and num_layers must be >= 0, got {self.conv_blocks}, {self.num_layers}")
        for name in ("num_classes", "n_mels", "conv_channels", "hidden_size"):
            if int(getattr(self, name)) < 1 or (name == "num_classes" and self.num_classes < 2):
                raise ValueError(f"{name} must be positive (num_classes >= 2), got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        for name in ("time_masks", "time_mask_width", "freq_masks", "freq_mask_width"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        return cls(**data)


def normalize_features(feats: torch.Tensor, lens: torch.Tensor, variance: bool = True) -> torch.Tensor:
    """Mean 0 (and, with ``variance``, variance 1) per utterance and bin over the valid frames;
    padding frames become 0."""
    mask = (torch.arange(feats.size(1), device=feats.device)[None, :] < lens[:, None]).unsqueeze(-1)
    mask = mask.to(feats.dtype)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    mean = (feats * mask).sum(dim=1, keepdim=True) / count
    if not variance:
        return (feats - mean) * mask
    var = (((feats - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (feats - mean) / torch.sqrt(var + 1e-5) * mask


def spec_augment(feats: torch.Tensor, lens: torch.Tensor, time_masks: int, time_mask_width: int,
                 freq_masks: int, freq_mask_width: int) -> torch.Tensor:
    """Zero random time spans and mel bands of (B, T, F) features (torch's global generator)."""
    feats = feats.clone()
    batch, _, num_bins = feats.shape
    for b in range(batch):
        length = int(lens[b])
        for _ in range(freq_masks if freq_mask_width > 0 else 0):
            width = int(torch.randint(0, freq_mask_width + 1, ()))
            start = int(torch.randint(0, max(1, num_bins - width + 1), ()))
            feats[b, :, start:start + width] = 0.0
        for _ in range(time_masks if time_mask_width > 0 and length > 0 else 0):
            width = min(int(torch.randint(0, time_mask_width + 1, ())), length // 5)
            start = int(torch.randint(0, max(1, length - width + 1), ()))
            feats[b, start:start + width, :] = 0.0
    return feats


def subsampled_lengths(lens: torch.Tensor, subsampling: int) -> torch.Tensor:
    """Output frames of the front end for ``lens`` input frames (each stride-2 convolution: ceil(L / 2))."""
    out = lens.clone()
    for _ in range(int(math.log2(subsampling))):
        out = (out - 1) // 2 + 1
    return out


def _mask(lens: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length) float mask, 1 on each row's first ``lens[b]`` frames."""
    return (torch.arange(length, device=lens.device)[None, :] < lens[:, None]).float()


class ConvBlock(nn.Module):
    """``x + dropout(GELU(conv(LayerNorm(x))))`` over (B, T, C), kernel 5, same length."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.conv((self.norm(x) * mask).transpose(1, 2)).transpose(1, 2)
        return x + self.dropout(nn.functional.gelu(y))


class PhoneCTCModel(nn.Module):
    """See the module docstring; ``forward(feats, lens) -> (log_probs (B, T', C), out_lens)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        stride = 2 if config.subsampling > 1 else 1
        convs = [nn.Conv1d(config.n_mels, config.conv_channels, KERNEL, stride=stride, padding=KERNEL // 2)]
        for _ in range(int(math.log2(config.subsampling)) - 1):
            convs.append(nn.Conv1d(config.conv_channels, config.conv_channels, KERNEL, stride=2, padding=KERNEL // 2))
        self.frontend = nn.ModuleList(convs)
        channels = config.conv_channels
        self.blocks = nn.ModuleList(ConvBlock(channels, config.dropout) for _ in range(config.conv_blocks))
        self.norm = nn.LayerNorm(channels)
        self.lstm = None
        if config.num_layers > 0:
            self.lstm = nn.LSTM(channels, config.hidden_size, num_layers=config.num_layers, batch_first=True,
                                bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
            self.lstm_proj = nn.Linear(2 * config.hidden_size, channels)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(channels, config.num_classes)

    def forward(self, feats: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        lens = lens.to(feats.device)
        x = normalize_features(feats, lens, variance=c.feature_norm == "meanvar")
        if self.training and (c.time_masks or c.freq_masks):
            x = spec_augment(x, lens, c.time_masks, c.time_mask_width, c.freq_masks, c.freq_mask_width)
        x = x.transpose(1, 2)  # (B, F, T)
        out_lens = lens
        for conv in self.frontend:
            x = torch.relu(conv(x))
            out_lens = subsampled_lengths(out_lens, conv.stride[0])
            # zero the frames past each utterance's end, as if it were alone (the convolutions pad with 0)
            x = x * _mask(out_lens, x.size(2)).unsqueeze(1)
        x = x.transpose(1, 2)  # (B, T', C)
        out_lens = out_lens.clamp(min=1, max=x.size(1))
        mask = _mask(out_lens, x.size(1)).unsqueeze(-1)
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        if self.lstm is not None:
            packed = pack_padded_sequence(x, out_lens.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.size(1))
            x = x + self.lstm_proj(self.dropout(y))
        logits = self.output(self.dropout(x))
        return torch.log_softmax(logits.float(), dim=-1), out_lens


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
