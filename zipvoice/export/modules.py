"""Export-time versions of the Zipformer modules (same weights, ONNX-friendly forward).

:func:`convert_for_export` returns a copy of a ZipVoice model whose modules
trace into plain ONNX ops, with the same outputs as the original:

* Swoosh activations are written as ``relu(z) - 0.08 z - log(sigmoid(|z|))``
  (``logaddexp`` has no ONNX symbolic, and onnxruntime's ``Softplus`` is slow);
  in the feed-forward and convolution modules the swoosh offset is folded into
  the bias of the layer before it and the constant into the bias of the linear
  after it (exact up to float rounding), saving two passes per activation;
* the relative positional encoding interleaves cos/sin with ``stack`` +
  ``reshape`` instead of strided slice assignment;
* the relative-to-absolute shift of the position scores pads one column and
  re-slices the flattened rows (``Pad``/``Reshape``/``Slice``) instead of
  ``as_strided``;
* the downsampling gathers its right-padded input with an index computed from
  the traced length (no Python branch on a traced shape, no zero-size ops).

With a padding mask (the fixed-length graphs), frames after the last valid one
are replaced by the last valid frame before each downsampling, so a padded
sequence gives exactly the unpadded result on its valid frames. (The eager
model, like upstream's, averages padded frames into the last group; the
dynamic graphs run one unpadded item and never see a mask.)

The classes are swapped in place on the copy (``module.__class__``), so
parameter names stay those of the checkpoint (the folded biases change value;
the original model is never modified).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zipvoice.models.attention import (
    CompactRelPositionalEncoding,
    RelPositionMultiheadAttentionWeights,
)
from zipvoice.models.scaling import ActivationDropoutAndLinear, SwooshL, SwooshR
from zipvoice.models.zipformer import (
    ConvolutionModule,
    DownsampledZipformer2Encoder,
    FeedforwardModule,
    SimpleDownsample,
    simple_upsample,
)

SWOOSH_L = (4.0, 0.035)  # (offset, constant): swoosh(x) = softplus(x - offset) - 0.08 x - constant
SWOOSH_R = (1.0, 0.313261687)


def softplus_minus_linear(z: Tensor) -> Tensor:
    """``softplus(z) - 0.08 z`` as ``relu(z) - 0.08 z - log(sigmoid(|z|))``.

    Exact in real arithmetic, stable for any ``z``, and made of vectorised
    element-wise ops (onnxruntime's ``Softplus`` kernel is several times
    slower than ``Sigmoid`` + ``Log``).
    """
    return torch.relu(z) - 0.08 * z - torch.log(torch.sigmoid(z.abs()))


def swoosh_l_export(x: Tensor) -> Tensor:
    offset, const = SWOOSH_L
    return softplus_minus_linear(x - offset) - (0.08 * offset + const)


def swoosh_r_export(x: Tensor) -> Tensor:
    offset, const = SWOOSH_R
    return softplus_minus_linear(x - offset) - (0.08 * offset + const)


class ExportSwooshL(SwooshL):
    def forward(self, x: Tensor) -> Tensor:
        return swoosh_l_export(x)


class ExportSwooshR(SwooshR):
    def forward(self, x: Tensor) -> Tensor:
        return swoosh_r_export(x)


class FoldedSwooshLinear(ActivationDropoutAndLinear):
    """``linear(swoosh(x))`` whose input arrives already shifted by the swoosh offset (folded into
    the bias of the layer that produces it) and whose constant is folded into its own bias:
    ``W·(softplus(z) - 0.08 z - k) + b = W·(softplus(z) - 0.08 z) + (b - k·W·1)``."""

    def forward(self, z: Tensor) -> Tensor:
        return F.linear(softplus_minus_linear(z), self.weight, self.bias)


@torch.no_grad()
def _fold_swoosh(producer_bias: Tensor, act_linear: ActivationDropoutAndLinear, offset: float, const: float) -> None:
    producer_bias.sub_(offset)
    act_linear.bias.sub_((0.08 * offset + const) * act_linear.weight.sum(dim=1))
    act_linear.__class__ = FoldedSwooshLinear


class ExportRelPositionalEncoding(CompactRelPositionalEncoding):
    def forward(self, x: Tensor) -> Tensor:
        seq_len = x.size(0)
        offsets = torch.arange(-(seq_len - 1), seq_len, device=x.device).to(torch.float32).unsqueeze(1)
        freqs = 1 + torch.arange(self.embed_dim // 2, device=x.device).to(torch.float32)
        compression = self.embed_dim**0.5
        x_c = compression * offsets.sign() * ((offsets.abs() + compression).log() - math.log(compression))
        angle = (x_c / (self.length_factor * self.embed_dim / (2.0 * math.pi))).atan() * freqs
        pe = torch.stack([angle.cos(), angle.sin()], dim=-1).reshape(-1, self.embed_dim)
        pe = torch.cat([pe[:, :-1], torch.ones_like(pe[:, :1])], dim=1)
        return pe.to(dtype=x.dtype).unsqueeze(0)


class ExportRelPositionAttentionWeights(RelPositionMultiheadAttentionWeights):
    @staticmethod
    def _rel_shift(pos_scores: Tensor) -> Tensor:
        # Row i of the result starts at flat index (T-1) + i·(2T-1) of the rows padded to 2T.
        num_heads, batch_size, seq_len, n_rel = pos_scores.shape
        padded = F.pad(pos_scores, (0, 1)).reshape(num_heads, batch_size, -1)
        start = seq_len - 1
        flat = padded[:, :, start : start + seq_len * n_rel]
        return flat.reshape(num_heads, batch_size, seq_len, n_rel)[..., :seq_len]


class ExportSimpleDownsample(SimpleDownsample):
    def forward(self, src: Tensor, src_key_padding_mask: Tensor | None = None) -> Tensor:
        seq_len, batch_size, channels = src.shape
        ds = self.downsample
        # gather frames 0 .. ceil(T/ds)·ds - 1, repeating the last (valid) frame past the end
        positions = torch.arange((seq_len + ds - 1) // ds * ds, device=src.device)
        if src_key_padding_mask is None:
            src = src.index_select(0, torch.clamp(positions, max=seq_len - 1))
        else:
            valid = (~src_key_padding_mask).sum(dim=1, keepdim=True)  # (B, 1)
            index = torch.minimum(positions.unsqueeze(0), valid - 1).clamp(min=0).t()  # (L, B)
            src = torch.gather(src, 0, index.unsqueeze(-1).expand(-1, -1, channels))
        src = src.reshape(-1, ds, batch_size, channels)
        weights = self.bias.softmax(dim=0).unsqueeze(-1).unsqueeze(-1)
        return (src * weights).sum(dim=1)


class ExportDownsampledEncoder(DownsampledZipformer2Encoder):
    def forward(self, src, time_emb=None, src_key_padding_mask=None, attn_mask=None):
        src_orig = src
        ds = self.downsample_factor
        src = self.downsample(src, src_key_padding_mask)
        if attn_mask is not None:
            attn_mask = attn_mask[::ds, ::ds]
        if src_key_padding_mask is not None:
            src_key_padding_mask = src_key_padding_mask[..., ::ds]
        src = self.encoder(src, time_emb=time_emb, src_key_padding_mask=src_key_padding_mask, attn_mask=attn_mask)
        src = simple_upsample(src, ds)[: src_orig.shape[0]]
        return self.out_combiner(src_orig, src)


_SWAPS = (
    (ExportRelPositionalEncoding, CompactRelPositionalEncoding),
    (ExportRelPositionAttentionWeights, RelPositionMultiheadAttentionWeights),
    (ExportSimpleDownsample, SimpleDownsample),
    (ExportDownsampledEncoder, DownsampledZipformer2Encoder),
    (ExportSwooshL, SwooshL),
    (ExportSwooshR, SwooshR),
)
_EXPORT_ACTIVATIONS = {"SwooshL": swoosh_l_export, "SwooshR": swoosh_r_export}


def convert_for_export(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (eval mode) with export-friendly module classes."""
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for module in list(model.modules()):
        if isinstance(module, FeedforwardModule) and module.out_proj.activation == "SwooshL" \
                and module.out_proj.bias is not None and module.in_proj.bias is not None:
            _fold_swoosh(module.in_proj.bias, module.out_proj, *SWOOSH_L)
        elif isinstance(module, ConvolutionModule) and module.out_proj.activation == "SwooshR" \
                and module.out_proj.bias is not None and module.depthwise_conv.bias is not None:
            _fold_swoosh(module.depthwise_conv.bias, module.out_proj, *SWOOSH_R)
    for module in model.modules():
        for export_cls, base in _SWAPS:
            if type(module) is base:
                module.__class__ = export_cls
                break
        if type(module) is ActivationDropoutAndLinear:
            module._act = _EXPORT_ACTIVATIONS[module.activation]
    return model
