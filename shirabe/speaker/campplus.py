"""CAM++ speaker encoder, weight-compatible with ``campplus_cn_common.bin``.

Input: Kaldi fbank (B, T, 80), mean-normalised over time; output: a 192-d
embedding per utterance. Parameter names follow the released state_dict
(937 entries):

- ``head`` (front convolution module, 2-D over frequency x time, 32 channels):
  ``conv1`` 3x3 + ``bn1`` + ReLU; ``layer1`` and ``layer2``, two residual
  blocks each, the first of each halving the frequency axis (stride (2, 1))
  with a 1x1 ``shortcut`` conv + BN; ``conv2`` 3x3 stride (2, 1) + ``bn2`` +
  ReLU. 80 bins → 10, flattened to 32·10 = 320 channels over time.
- ``xvector``:
  ``tdnn`` (Conv1d 320 → 128, kernel 5, stride 2, padding 2, no bias; BN,
  ReLU) — the frame rate halves to 50/s;
  ``block1..3``: densely connected layers (12, 24, 16 of them; kernel 3;
  dilation 1, 2, 2), each appending 32 channels: ``nonlinear1`` (BN, ReLU) →
  ``linear1`` (1x1 to 128) → ``nonlinear2`` (BN, ReLU) → ``cam_layer``;
  ``transit1..3`` halve the channels (BN, ReLU, 1x1 conv): 512 → 256,
  1024 → 512, 1024 → 512;
  ``out_nonlinear`` (BN, ReLU); statistics pooling (mean and unbiased std over
  time → 1024); ``dense`` (1x1 conv 1024 → 192, no bias; BN without affine).
- ``cam_layer`` (context-aware masking): ``linear_local`` (Conv1d 128 → 32,
  kernel 3, no bias) gated by ``sigmoid(linear2(relu(linear1(c))))`` where
  the context ``c`` is the utterance mean plus the mean of the 100-frame
  segment each frame falls in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEAT_DIM = 80
EMBEDDING_SIZE = 192
SEGMENT_LENGTH = 100


class BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(planes)
            )
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """Front convolution module: (B, F, T) → (B, channels · F / 8, T)."""

    def __init__(self, feat_dim: int = FEAT_DIM, channels: int = 32, num_blocks: tuple[int, int] = (2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = self._layer(channels, num_blocks[0])
        self.layer2 = self._layer(channels, num_blocks[1])
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (feat_dim // 8)

    @staticmethod
    def _layer(channels: int, num_blocks: int) -> nn.Sequential:
        return nn.Sequential(*[BasicResBlock(channels, channels, 2 if i == 0 else 1) for i in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.flatten(1, 2)


class NonLinear(nn.Module):
    """``batchnorm`` (+ ReLU): the key layout ``*.nonlinear.batchnorm.*``."""

    def __init__(self, channels: int, relu: bool = True, affine: bool = True):
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(channels, affine=affine)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.batchnorm(x)
        return F.relu(x) if self.relu else x


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=False)
        self.nonlinear = NonLinear(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


def segment_mean(x: torch.Tensor, seg_len: int = SEGMENT_LENGTH) -> torch.Tensor:
    """Mean of each ``seg_len``-frame segment (the last one may be shorter), per frame."""
    seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
    return seg.repeat_interleave(seg_len, dim=-1)[..., : x.shape[-1]]


class CAMLayer(nn.Module):
    def __init__(self, bn_channels: int, out_channels: int, kernel_size: int, dilation: int, reduction: int = 2):
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, 1, padding, dilation, bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // reduction, 1)
        self.linear2 = nn.Conv1d(bn_channels // reduction, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.linear_local(x)
        context = x.mean(dim=-1, keepdim=True) + segment_mean(x)
        mask = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return local * mask


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.nonlinear1 = NonLinear(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = NonLinear(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.Module):
    """Densely connected layers named ``tdnnd1..N``; each appends ``growth`` channels."""

    def __init__(self, num_layers: int, in_channels: int, growth: int, bn_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(in_channels + i * growth, growth, bn_channels, kernel_size, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_layers):
            x = torch.cat([x, getattr(self, f"tdnnd{i + 1}")(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = NonLinear(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = NonLinear(out_channels, relu=False, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1))).squeeze(-1)


def stats_pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) → (B, 2C): mean and unbiased standard deviation over time."""
    return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)


class XVector(nn.Module):
    def __init__(self, in_channels: int, embedding_size: int, growth: int = 32, bn_size: int = 4, init_channels: int = 128):
        super().__init__()
        self.tdnn = TDNNLayer(in_channels, init_channels, 5, stride=2)
        channels = init_channels
        blocks = zip((12, 24, 16), (3, 3, 3), (1, 2, 2))
        for i, (num_layers, kernel_size, dilation) in enumerate(blocks, start=1):
            block = CAMDenseTDNNBlock(num_layers, channels, growth, bn_size * growth, kernel_size, dilation)
            self.add_module(f"block{i}", block)
            channels += num_layers * growth
            self.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.out_nonlinear = NonLinear(channels)
        self.dense = DenseLayer(channels * 2, embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tdnn(x)
        for i in (1, 2, 3):
            x = getattr(self, f"transit{i}")(getattr(self, f"block{i}")(x))
        return self.dense(stats_pool(self.out_nonlinear(x)))


class CAMPPlus(nn.Module):
    """Mean-normalised fbank (B, T, 80) → embedding (B, 192)."""

    def __init__(self, feat_dim: int = FEAT_DIM, embedding_size: int = EMBEDDING_SIZE):
        super().__init__()
        self.head = FCM(feat_dim)
        self.xvector = XVector(self.head.out_channels, embedding_size)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.xvector(self.head(feats.transpose(1, 2)))
