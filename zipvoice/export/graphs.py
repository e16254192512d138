"""The modules traced into ONNX graphs: text encoder, flow-matching decoder, vocoder.

Dynamic graphs (upstream's interface, one item at a time, any length):

* :class:`TextEncoderGraph`: ``tokens`` (N, T) int64, ``prompt_tokens`` (N, T')
  int64, ``prompt_features_len`` int64 scalar, ``speed`` float32 scalar →
  ``text_condition`` (N, T_total, feat_dim). prompt ++ text ++ [pad] is encoded
  (only the appended pad key-masked), every token gets ``T_total // n`` frames
  and the remaining frames the pad's encoding.
* :class:`FmDecoderGraph`: ``t`` float32 scalar, ``x``, ``text_condition``,
  ``speech_condition`` (N, T, feat_dim), ``guidance_scale`` float32 scalar →
  ``v`` (N, T, feat_dim), the guided velocity the Euler sampler integrates
  (ZipVoice: batch doubling and the ``t > 0.5`` switch done with ``Where``;
  ZipVoiceDistill: ``w`` goes to the guidance-scale embedding).
* :class:`VocoderGraph`: ``mel`` (N, n_mels, T) → ``audio`` (N, T·hop).

Fixed-length graphs (Unity Sentis: static shapes, no control flow) take the
sequence padded to a fixed length plus the valid length or a ``mask`` (1.0 =
valid frame), and give on the valid frames what the dynamic graphs give on the
unpadded sequence: :class:`StaticTextEncoderGraph`, :class:`StaticFmDecoderGraph`,
:class:`StaticVocoderGraph`.

Frame count of the text condition (``speed_rule``):

* ``"torch"`` (default): ``P + ceil(P / N_prompt · N_text / speed)``, the
  PyTorch model's rule (the prompt keeps its P frames at any speed);
* ``"upstream"``: ``ceil(P / N_prompt · (N_prompt + N_text) / speed)``, the rule
  of upstream's exported graph (speed also rescales the prompt's share).
Both agree at speed 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from shirabe.vocoder.vocos import MAX_MAGNITUDE
from zipvoice.export.modules import convert_for_export

SPEED_RULES = ("torch", "upstream")


def total_frames_graph(prompt_features_len: Tensor, n_prompt: Tensor, n_text: Tensor, speed: Tensor,
                       rule: str) -> Tensor:
    """Total frames (prompt + generated) as an int64 tensor, float32 arithmetic like the eager model."""
    p = prompt_features_len.to(torch.float32)
    if rule == "torch":
        ratio = p / n_prompt.to(torch.float32) * n_text.to(torch.float32) / speed
        return prompt_features_len + torch.ceil(ratio).to(torch.int64)
    if rule == "upstream":
        ratio = p / n_prompt.to(torch.float32) * (n_prompt + n_text).to(torch.float32) / speed
        return torch.ceil(ratio).to(torch.int64)
    raise ValueError(f"speed_rule must be one of {SPEED_RULES}, got {rule!r}")


def frame_token_index(frames: Tensor, total: Tensor, num_tokens: Tensor) -> Tensor:
    """Token index of each frame: ``frame // d`` for the first ``n·d`` frames (``d = total // n``),
    ``n`` (the appended pad) after them."""
    dur = torch.div(total, num_tokens, rounding_mode="floor")
    index = torch.div(frames, dur.clamp(min=1), rounding_mode="floor")
    return torch.where(frames < dur * num_tokens, index, num_tokens)


class TextEncoderGraph(nn.Module):
    def __init__(self, model: nn.Module, speed_rule: str = "torch"):
        super().__init__()
        if speed_rule not in SPEED_RULES:
            raise ValueError(f"speed_rule must be one of {SPEED_RULES}, got {speed_rule!r}")
        model = convert_for_export(model)
        self.embed = model.embed
        self.text_encoder = model.text_encoder
        self.pad_id = int(model.pad_id)
        self.speed_rule = speed_rule

    def forward(self, tokens: Tensor, prompt_tokens: Tensor, prompt_features_len: Tensor, speed: Tensor) -> Tensor:
        pad = torch.full_like(tokens[:, :1], self.pad_id)
        cat = torch.cat([prompt_tokens, tokens, pad], dim=1)  # (N, n + 1)
        # lengths as traced int64 scalars (not constants baked in by the tracer)
        n_prompt = torch.ones_like(prompt_tokens[0]).sum()
        n_text = torch.ones_like(tokens[0]).sum()
        num_tokens = n_prompt + n_text
        positions = torch.arange(cat.shape[1], device=tokens.device)
        key_mask = (positions >= num_tokens).unsqueeze(0).expand(cat.shape[0], -1)
        enc = self.text_encoder(x=self.embed(cat), t=None, padding_mask=key_mask)  # (N, n + 1, C)
        total = total_frames_graph(prompt_features_len, n_prompt, n_text, speed, self.speed_rule)
        frames = torch.arange(total, device=tokens.device)
        index = frame_token_index(frames, total, num_tokens)
        return torch.index_select(enc, 1, index)


def _guided(fm_decoder, distill: bool, t, x, text_condition, speech_condition, padding_mask, guidance_scale):
    """Velocity with guidance, batch ``N``: t and guidance_scale are 0-dim or (1,)."""
    t = t.reshape(-1)[:1]
    w = guidance_scale.reshape(-1)[:1]
    batch = x.shape[0]
    if distill:
        xt = torch.cat([x, text_condition, speech_condition], dim=2)
        return fm_decoder(x=xt, t=t.expand(batch), padding_mask=padding_mask, guidance_scale=w.expand(batch))
    late = t > 0.5
    speech_uncond = torch.where(late, torch.zeros_like(speech_condition), speech_condition)
    xt = torch.cat(
        [
            torch.cat([x, torch.zeros_like(text_condition), speech_uncond], dim=2),
            torch.cat([x, text_condition, speech_condition], dim=2),
        ],
        dim=0,
    )
    mask = None if padding_mask is None else torch.cat([padding_mask, padding_mask], dim=0)
    v = fm_decoder(x=xt, t=t.expand(2 * batch), padding_mask=mask)
    v_uncond, v_cond = v[:batch], v[batch:]
    w = torch.where(late, w, 2.0 * w)
    return (1.0 + w) * v_cond - w * v_uncond


class FmDecoderGraph(nn.Module):
    def __init__(self, model: nn.Module, distill: bool):
        super().__init__()
        self.fm_decoder = convert_for_export(model).fm_decoder
        self.distill = bool(distill)

    def forward(self, t, x, text_condition, speech_condition, guidance_scale):
        return _guided(self.fm_decoder, self.distill, t, x, text_condition, speech_condition, None, guidance_scale)


class StaticTextEncoderGraph(nn.Module):
    """Fixed shapes: ``tokens`` (1, S) = prompt ++ text ids right-padded with the pad id
    (S ≥ n + 1), ``prompt_tokens_len``, ``tokens_len``, ``prompt_features_len`` int64 (1,),
    ``speed`` float32 (1,) → ``text_condition`` (1, F, feat_dim) and ``num_frames`` int64 (1,),
    the valid frames (prompt + generated; more than F means the text is too long for F)."""

    def __init__(self, model: nn.Module, num_frames: int, speed_rule: str = "torch"):
        super().__init__()
        model = convert_for_export(model)
        self.embed = model.embed
        self.text_encoder = model.text_encoder
        self.num_frames = int(num_frames)
        self.speed_rule = speed_rule

    def forward(self, tokens, prompt_tokens_len, tokens_len, prompt_features_len, speed):
        num_tokens = prompt_tokens_len + tokens_len  # (1,)
        positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        key_mask = positions >= num_tokens.unsqueeze(1)
        enc = self.text_encoder(x=self.embed(tokens), t=None, padding_mask=key_mask)  # (1, S, C)
        total = total_frames_graph(prompt_features_len, prompt_tokens_len, tokens_len, speed, self.speed_rule)
        frames = torch.arange(self.num_frames, device=tokens.device)
        index = frame_token_index(frames, total, num_tokens)
        cond = torch.index_select(enc, 1, index)
        valid = (frames < total).to(cond.dtype).unsqueeze(0).unsqueeze(-1)
        return cond * valid, total


class StaticFmDecoderGraph(nn.Module):
    """Fixed shapes: ``t`` (1,), ``x``, ``text_condition``, ``speech_condition`` (1, F, feat_dim),
    ``mask`` (1, F) float32 (1.0 = valid frame), ``guidance_scale`` (1,) → ``v`` (1, F, feat_dim),
    zero on padded frames."""

    def __init__(self, model: nn.Module, distill: bool):
        super().__init__()
        self.fm_decoder = convert_for_export(model).fm_decoder
        self.distill = bool(distill)

    def forward(self, t, x, text_condition, speech_condition, mask, guidance_scale):
        padding_mask = mask < 0.5
        v = _guided(self.fm_decoder, self.distill, t, x, text_condition, speech_condition, padding_mask,
                    guidance_scale)
        return v * mask.unsqueeze(-1)


class VocoderGraph(nn.Module):
    """Vocos decode with the transposed-convolution ISTFT."""

    def __init__(self, vocos: nn.Module):
        super().__init__()
        self.vocos = vocos
        vocos.head.istft.method = "conv"

    def forward(self, mel: Tensor) -> Tensor:
        return self.vocos.head(self.vocos.backbone(mel))


class StaticVocoderGraph(nn.Module):
    """``mel`` (1, n_mels, F), ``mask`` (1, F) → ``audio`` (1, F·hop): every convolution and the
    overlap-add see zeros after the valid frames, so the first ``valid·hop`` samples equal
    decoding the unpadded mel."""

    def __init__(self, vocos: nn.Module):
        super().__init__()
        self.vocos = vocos
        vocos.head.istft.method = "conv"

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        bb, head = self.vocos.backbone, self.vocos.head
        m = mask.unsqueeze(1)  # (1, 1, F)
        x = bb.embed(mel * m)
        x = bb.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in bb.convnext:
            x = block(x * m)
        x = bb.final_layer_norm(x.transpose(1, 2))
        x = head.out(x).transpose(1, 2)
        log_mag, phase = x.chunk(2, dim=1)
        mag = torch.clamp(torch.exp(log_mag), max=MAX_MAGNITUDE) * m
        istft = head.istft
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)
        signal = nn.functional.conv_transpose1d(spec, istft.kernel, stride=istft.hop_length)[:, 0]
        envelope = nn.functional.conv_transpose1d(m, istft.window_sq, stride=istft.hop_length)[:, 0]
        trim = istft.trim
        end = signal.shape[-1] - trim
        return signal[:, trim:end] / torch.clamp(envelope[:, trim:end], min=1e-11)
