"""The ACE-Step v1 training loss for :class:`shirabe.train.loop.Trainer` (``compute_loss``).

Per batch (training): the condition dropouts of the released trainer, each drawn independently per
song: the prompt's UMT5 states zeroed with probability ``text_dropout`` (0.15), the speaker
embedding with ``speaker_dropout`` (0.5; the cache's speaker embeddings are zeros anyway), the
lyric ids and the lyric mask both zeroed with ``lyrics_dropout`` (0.15). Then noise ~ N(0, I),
u ~ N(0, 1) per song → table index, timestep and σ (:func:`acestep.schedule.training_draw`),
x_t = σ·noise + (1−σ)·x0, the transformer's velocity v, x0_hat = x_t − σ·v, and the masked MSE of
:mod:`acestep.models.objective` (plus ``ssl_coeff`` × the REPA losses, which need SSL targets the
cache does not hold: ``ssl_coeff`` is 0 here).

Random draws use the global generator on the CPU (the Trainer saves and restores it, so a resumed
run draws the same), in this order: the three dropout draws [B] each, the noise, u. Validation
(``is_training=False``) drops nothing and draws from a generator seeded by the batch's song ids.
"""

from __future__ import annotations

import zlib

import torch

from acestep.models.objective import denoising_loss, noisy_latents, total_loss, x0_from_velocity
from acestep.schedule import training_draw
from shirabe.train.metrics import MetricsTracker

TEXT_DROPOUT = 0.15
SPEAKER_DROPOUT = 0.5
LYRICS_DROPOUT = 0.15


def keep_mask(batch_size: int, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """[B] float: 0 where the condition is dropped (probability ``p``), else 1."""
    return (torch.rand(batch_size, generator=generator) >= p).float()


def apply_dropouts(batch: dict, text_p: float, speaker_p: float, lyrics_p: float,
                   generator: torch.Generator | None = None) -> dict:
    """The batch with its conditions dropped per song (see the module docstring)."""
    b = batch["latents"].shape[0]
    keep_text = keep_mask(b, text_p, generator)
    keep_speaker = keep_mask(b, speaker_p, generator)
    keep_lyrics = keep_mask(b, lyrics_p, generator)
    out = dict(batch)
    out["text_hidden"] = batch["text_hidden"] * keep_text[:, None, None]
    out["speaker"] = batch["speaker"] * keep_speaker[:, None]
    out["lyric_ids"] = batch["lyric_ids"] * keep_lyrics.long()[:, None]
    out["lyric_mask"] = batch["lyric_mask"] * keep_lyrics.long()[:, None]
    return out


def batch_generator(ids: list[str]) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32("\n".join(ids).encode()))


def compute_loss(model, batch: dict, is_training: bool, *, device: torch.device, ssl_coeff: float = 0.0,
                 text_dropout: float = TEXT_DROPOUT, speaker_dropout: float = SPEAKER_DROPOUT,
                 lyrics_dropout: float = LYRICS_DROPOUT):
    """``(loss, metrics)``; the loss is a mean over songs, so the normaliser ``frames`` counts songs."""
    generator = None
    if is_training:
        batch = apply_dropouts(batch, text_dropout, speaker_dropout, lyrics_dropout)
    else:
        generator = batch_generator(batch["ids"])
    x0 = batch["latents"]
    b = x0.shape[0]
    noise = torch.randn(x0.shape, generator=generator)
    u = torch.randn(b, generator=generator)
    _, timestep, sigma = training_draw(u)
    x0, noise, sigma = x0.to(device), noise.to(device), sigma.to(device)
    mask = batch["attention_mask"].to(device)
    x_t = noisy_latents(x0, noise, sigma)
    with torch.set_grad_enabled(is_training):
        out = model(hidden_states=x_t, attention_mask=mask,
                    encoder_text_hidden_states=batch["text_hidden"].to(device),
                    text_attention_mask=batch["text_mask"].to(device), speaker_embeds=batch["speaker"].to(device),
                    lyric_token_idx=batch["lyric_ids"].to(device), lyric_mask=batch["lyric_mask"].to(device),
                    timestep=timestep.to(device))
        x0_hat = x0_from_velocity(out.sample.float(), x_t, sigma)
        denoising = denoising_loss(x0_hat, x0, mask)
        loss = total_loss(denoising, out.proj_losses, ssl_coeff) if ssl_coeff > 0 else denoising
    metrics = MetricsTracker(loss=float(loss.detach()) * b, denoising_loss=float(denoising.detach()) * b,
                             latent_frames=float(mask.sum()), frames=float(b), utterances=b)
    return loss, metrics
