"""ZipVoice: zero-shot TTS by flow matching with Zipformer text encoder and decoder.

The decoder predicts the velocity of the straight path from noise to log-mel
features (model scale = 0.1·log-mel) from ``concat[x_t, text_condition,
speech_condition]``. The text condition is the text encoder output average-
upsampled to frames; the speech condition is the prompt's features on the
prompt frames and zero elsewhere (masked infilling). Method names and
semantics follow upstream so ported scripts keep working.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from shirabe.flow import linear_path, linear_velocity_target
from zipvoice.models.solver import EulerSolver
from zipvoice.models.text_condition import (
    condition_time_mask,
    inference_num_frames,
    make_pad_mask,
    pad_labels,
    upsample_text,
)
from zipvoice.models.zipformer import TTSZipformer


class ZipVoice(nn.Module):
    solver_class = EulerSolver

    def __init__(
        self,
        fm_decoder_downsampling_factor=(1, 2, 4, 2, 1),
        fm_decoder_num_layers=(2, 2, 4, 4, 4),
        fm_decoder_cnn_module_kernel=(31, 15, 7, 15, 31),
        fm_decoder_feedforward_dim: int = 1536,
        fm_decoder_num_heads: int = 4,
        fm_decoder_dim: int = 512,
        text_encoder_num_layers: int = 4,
        text_encoder_feedforward_dim: int = 512,
        text_encoder_cnn_module_kernel: int = 9,
        text_encoder_num_heads: int = 4,
        text_encoder_dim: int = 192,
        time_embed_dim: int = 192,
        text_embed_dim: int = 192,
        query_head_dim: int = 32,
        value_head_dim: int = 12,
        pos_head_dim: int = 4,
        pos_dim: int = 48,
        feat_dim: int = 100,
        vocab_size: int = 26,
        pad_id: int = 0,
    ):
        super().__init__()
        self.fm_decoder = self._build_fm_decoder(
            feat_dim=feat_dim,
            downsampling_factor=fm_decoder_downsampling_factor,
            num_encoder_layers=fm_decoder_num_layers,
            cnn_module_kernel=fm_decoder_cnn_module_kernel,
            encoder_dim=fm_decoder_dim,
            feedforward_dim=fm_decoder_feedforward_dim,
            num_heads=fm_decoder_num_heads,
            query_head_dim=query_head_dim,
            pos_head_dim=pos_head_dim,
            value_head_dim=value_head_dim,
            pos_dim=pos_dim,
            time_embed_dim=time_embed_dim,
        )
        self.text_encoder = TTSZipformer(
            in_dim=text_embed_dim,
            out_dim=feat_dim,
            downsampling_factor=1,
            num_encoder_layers=text_encoder_num_layers,
            cnn_module_kernel=text_encoder_cnn_module_kernel,
            encoder_dim=text_encoder_dim,
            feedforward_dim=text_encoder_feedforward_dim,
            num_heads=text_encoder_num_heads,
            query_head_dim=query_head_dim,
            pos_head_dim=pos_head_dim,
            value_head_dim=value_head_dim,
            pos_dim=pos_dim,
            use_time_embed=False,
        )
        self.feat_dim = feat_dim
        self.text_embed_dim = text_embed_dim
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, text_embed_dim)
        self.solver = self.solver_class(self, func_name="forward_fm_decoder")

    def _build_fm_decoder(self, feat_dim: int, **kwargs) -> TTSZipformer:
        return TTSZipformer(in_dim=feat_dim * 3, out_dim=feat_dim, use_time_embed=True, **kwargs)

    # -- decoder ---------------------------------------------------------

    @staticmethod
    def _per_item(value: Tensor, batch_size: int) -> Tensor:
        """A scalar or (B, 1, 1)-like tensor as a (B,) vector."""
        while value.dim() > 1 and value.size(-1) == 1:
            value = value.squeeze(-1)
        if value.dim() == 0:
            value = value.repeat(batch_size)
        return value

    def forward_fm_decoder(
        self,
        t: Tensor,
        xt: Tensor,
        text_condition: Tensor,
        speech_condition: Tensor,
        padding_mask: Tensor | None = None,
        guidance_scale: Tensor | float | None = None,
    ) -> Tensor:
        """Velocity ``(B, T, feat_dim)`` at time ``t`` (scalar, (B,) or (B, 1, 1))."""
        xt = torch.cat([xt, text_condition, speech_condition], dim=2)
        if not torch.is_tensor(t):
            t = torch.tensor(t, dtype=xt.dtype, device=xt.device)
        t = self._per_item(t, xt.shape[0])
        if guidance_scale is not None:
            if not torch.is_tensor(guidance_scale):
                guidance_scale = torch.tensor(guidance_scale, dtype=t.dtype, device=t.device)
            guidance_scale = self._per_item(guidance_scale, xt.shape[0])
            return self.fm_decoder(x=xt, t=t, padding_mask=padding_mask, guidance_scale=guidance_scale)
        return self.fm_decoder(x=xt, t=t, padding_mask=padding_mask)

    # -- training ----------------------------------------------------------

    def forward(
        self,
        tokens: list[list[int]],
        features: Tensor,
        features_lens: Tensor,
        noise: Tensor,
        t: Tensor,
        condition_drop_ratio: float = 0.0,
    ) -> Tensor:
        """Flow-matching loss of one batch.

        ``features`` ``(B, T, feat_dim)`` in model scale, ``noise`` of the same
        shape, ``t`` ``(B, 1, 1)``. A random 70-100 % span of every utterance is
        hidden from the speech condition; with probability ``condition_drop_ratio``
        an utterance's text condition is dropped. The loss is the mean squared
        velocity error on the hidden, non-padded frames.
        """
        text_condition, padding_mask = self.forward_text_train(tokens, features_lens)
        hidden = condition_time_mask(features_lens, (0.7, 1.0), max_len=features.size(1))
        speech_condition = torch.where(hidden.unsqueeze(-1), torch.zeros_like(features), features)
        if condition_drop_ratio > 0.0:
            keep = torch.rand(text_condition.size(0), 1, 1, device=text_condition.device) > condition_drop_ratio
            text_condition = text_condition * keep
        xt = linear_path(noise, features, t)
        target = linear_velocity_target(noise, features)
        vt = self.forward_fm_decoder(t=t, xt=xt, text_condition=text_condition,
                                     speech_condition=speech_condition, padding_mask=padding_mask)
        loss_mask = hidden & ~padding_mask
        return torch.mean((vt[loss_mask] - target[loss_mask]) ** 2)

    # -- text ------------------------------------------------------------

    def forward_text_embed(self, tokens: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Encode token ids: returns ``(B, S+1, feat_dim)`` (one pad appended) and the lengths ``(B,)``."""
        device = self.embed.weight.device
        tokens_padded = pad_labels(tokens, pad_id=self.pad_id, device=device)
        embed = self.embed(tokens_padded)
        tokens_lens = torch.tensor([len(t) for t in tokens], dtype=torch.int64, device=device)
        mask = make_pad_mask(tokens_lens, embed.shape[1])
        embed = self.text_encoder(x=embed, t=None, padding_mask=mask)
        return embed, tokens_lens

    def forward_text_condition(self, embed: Tensor, tokens_lens: Tensor, features_lens: Tensor):
        """Average-upsample encoded text to ``features_lens`` frames: ``(B, T, C)``, mask ``(B, T)``."""
        return upsample_text(embed, tokens_lens, features_lens)

    def forward_text_train(self, tokens: list[list[int]], features_lens: Tensor):
        embed, tokens_lens = self.forward_text_embed(tokens)
        return self.forward_text_condition(embed, tokens_lens, features_lens)

    def forward_text_inference_gt_duration(
        self, tokens: list[list[int]], features_lens: Tensor, prompt_tokens: list[list[int]],
        prompt_features_lens: Tensor,
    ):
        """Text condition for prompt ++ text over ``prompt_features_lens + features_lens`` frames."""
        cat_tokens = [list(p) + list(t) for p, t in zip(prompt_tokens, tokens)]
        return self.forward_text_train(cat_tokens, prompt_features_lens + features_lens)

    def forward_text_inference_ratio_duration(
        self, tokens: list[list[int]], prompt_tokens: list[list[int]], prompt_features_lens: Tensor,
        speed: float,
    ):
        """Text condition when the length follows the prompt's speaking rate.

        Total frames per item: ``P + ceil(P / N_prompt · N_text / speed)``; prompt and
        text tokens are average-upsampled over them as one sequence.
        """
        device = self.embed.weight.device
        cat_tokens = [list(p) + list(t) for p, t in zip(prompt_tokens, tokens)]
        prompt_tokens_lens = torch.tensor([len(p) for p in prompt_tokens], dtype=torch.int64, device=device)
        tokens_lens = torch.tensor([len(t) for t in tokens], dtype=torch.int64, device=device)
        cat_embed, cat_tokens_lens = self.forward_text_embed(cat_tokens)
        features_lens = inference_num_frames(prompt_features_lens.to(device), prompt_tokens_lens, tokens_lens, speed)
        return self.forward_text_condition(cat_embed, cat_tokens_lens, features_lens)

    # -- sampling ----------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        tokens: list[list[int]],
        prompt_tokens: list[list[int]],
        prompt_features: Tensor,
        prompt_features_lens: Tensor,
        features_lens: Tensor | None = None,
        speed: float = 1.0,
        t_shift: float = 1.0,
        duration: str = "predict",
        num_step: int = 5,
        guidance_scale: float = 0.5,
        noise: Tensor | None = None,
    ):
        """Generate features after the prompt.

        ``prompt_features`` is ``(B, P, feat_dim)`` in model scale. The initial noise
        is ``torch.randn(B, T_total, feat_dim)`` from the global generator (T_total =
        prompt + generated frames), unless ``noise`` of that shape is given.
        ``duration="real"`` uses ``features_lens`` generated frames instead of the
        prompt's speaking rate.

        Returns ``(features, features_lens, prompt_features, prompt_features_lens)``:
        generated frames ``(B, T_gen_max, feat_dim)`` with their lengths, and the
        prompt part of the solution.
        """
        if duration == "predict":
            text_condition, padding_mask = self.forward_text_inference_ratio_duration(
                tokens, prompt_tokens, prompt_features_lens, speed
            )
        elif duration == "real":
            if features_lens is None:
                raise ValueError('duration="real" needs features_lens')
            text_condition, padding_mask = self.forward_text_inference_gt_duration(
                tokens, features_lens, prompt_tokens, prompt_features_lens
            )
        else:
            raise ValueError(f'duration must be "predict" or "real", got {duration!r}')
        prompt_features_lens = prompt_features_lens.to(text_condition.device)
        batch_size, num_frames, _ = text_condition.shape
        speech_condition = nn.functional.pad(prompt_features, (0, 0, 0, num_frames - prompt_features.size(1)))
        speech_condition_mask = make_pad_mask(prompt_features_lens, num_frames)
        speech_condition = torch.where(
            speech_condition_mask.unsqueeze(-1), torch.zeros_like(speech_condition), speech_condition
        )
        if noise is None:
            x0 = torch.randn(batch_size, num_frames, self.feat_dim, device=text_condition.device)
        else:
            if tuple(noise.shape) != (batch_size, num_frames, self.feat_dim):
                raise ValueError(
                    f"noise has shape {tuple(noise.shape)}, expected {(batch_size, num_frames, self.feat_dim)}"
                )
            x0 = noise.to(device=text_condition.device, dtype=text_condition.dtype)
        x1 = self.solver.sample(
            x=x0,
            text_condition=text_condition,
            speech_condition=speech_condition,
            padding_mask=padding_mask,
            num_step=num_step,
            guidance_scale=guidance_scale,
            t_shift=t_shift,
        )
        gen_lens = (~padding_mask).sum(-1) - prompt_features_lens
        x_prompt = torch.zeros(batch_size, int(prompt_features_lens.max()), x1.size(2), device=x1.device)
        x_gen = torch.zeros(batch_size, int(gen_lens.max()), x1.size(2), device=x1.device)
        for i in range(batch_size):
            p, g = int(prompt_features_lens[i]), int(gen_lens[i])
            x_gen[i, :g] = x1[i, p : p + g]
            x_prompt[i, :p] = x1[i, :p]
        return x_gen, gen_lens, x_prompt, prompt_features_lens
