"""SongBloom as a whole: the music VAE (``vae.vae.*``) beside MVSA-DiTAR (``model.*``).

:class:`SongBloom` holds ``.vae`` (a :class:`SongBloomVAE` wrapping the Oobleck VAE as ``.vae.vae``,
or ``None``) and ``.model`` (:class:`~songbloom.models.ditar.MVSADiTAR`), so its state dict has the
released ``.pt`` layout. :meth:`SongBloom.generate` turns a lyric symbol string and a style prompt
into sketch tokens and latents; :meth:`SongBloom.decode` turns latents into 48 kHz stereo audio.
Loading is in :mod:`songbloom.models.loading`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from shirabe.codec import OobleckVAE, build_vae, read_vae_config
from songbloom.g2p.tokenizer import tokenize
from songbloom.models.conditioners import LyricBatch
from songbloom.models.config import SongBloomConfig
from songbloom.models.ditar import GenerationTrace, MVSADiTAR


class SongBloomVAE(nn.Module):
    """``vae``: the frozen Oobleck VAE as ``.vae`` (keys ``vae.vae.encoder.*``/``decoder.*``)."""

    def __init__(self, vae: OobleckVAE):
        super().__init__()
        self.vae = vae
        for p in self.vae.parameters():
            p.requires_grad_(False)

    @property
    def sample_rate(self) -> int:
        return self.vae.sample_rate

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    @property
    def frame_rate(self) -> float:
        return self.vae.frame_rate

    def encode(self, wav: torch.Tensor, sample_rate: int, *, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) or (B, C, N) audio -> (B, D, T) latents, a posterior sample (as upstream)."""
        return self.vae.encode(wav, sample_rate, sample=True, generator=generator, noise=noise)

    def decode(self, latents: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        return self.vae.decode(latents, chunked=chunked)


def vae_from_config(config: SongBloomConfig, device: str | torch.device | None = None) -> OobleckVAE | None:
    """A random-weight VAE of the config's layout (``vae_config`` or the ``vae.vae_cfg`` json), or None."""
    if config.vae_config is not None:
        return build_vae(config.vae_config, device=device, source=f"{config.source}: vae config")
    if config.vae_cfg:
        return build_vae(read_vae_config(config.vae_cfg), device=device, source=config.vae_cfg)
    return None


class SongBloom(nn.Module):
    """SongBloom: ``.vae`` (may be ``None``) and ``.model``; see the module docstring.

    ``vae``: an :class:`~shirabe.codec.OobleckVAE` to use; by default one of the config's layout
    is built (random weights) when the config names a VAE, unless ``with_vae=False``.
    ``device="meta"`` builds without allocating (for listing names and shapes, or loading).
    """

    def __init__(self, config: SongBloomConfig, vae: OobleckVAE | None = None, with_vae: bool = True,
                 device: str | torch.device | None = None):
        super().__init__()
        self.config = config
        if vae is None and with_vae:
            vae = vae_from_config(config, device=device)
        if vae is not None and vae.latent_dim != config.model.latent_dim:
            raise ValueError(f"the VAE has {vae.latent_dim} latent channels, the model {config.model.latent_dim}")
        self.vae = SongBloomVAE(vae) if vae is not None else None
        with torch.device(device) if device is not None else nullcontext():
            self.model = MVSADiTAR(config.model)

    # -- properties -----------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.vae.sample_rate if self.vae is not None else self.config.sr

    @property
    def device(self) -> torch.device:
        return self.model.bos_token.device

    def _need_vae(self, what: str) -> SongBloomVAE:
        if self.vae is None:
            raise RuntimeError(f"{what} needs the VAE, and this model has none (config vae.vae_cfg)")
        return self.vae

    # -- inputs -------------------------------------------------------------------------------

    def lyric_batch(self, lyrics_symbols: str, allow_unknown: bool = False) -> LyricBatch:
        """A symbol string -> the one-row :class:`LyricBatch` (unknown symbols: an error unless allowed)."""
        m = self.config.model
        tokens = tokenize(lyrics_symbols, m.vocab, max_sentences=m.max_sentence_per_structure,
                          allow_unknown=allow_unknown)
        return LyricBatch.from_tokens([tokens], m.lyric_max_len)

    @torch.no_grad()
    def encode_prompt(self, prompt_wav: torch.Tensor, sample_rate: int | None = None, *,
                      generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A style prompt (N,), (1, N) or (C, N) (channels averaged to mono) at ``sample_rate``
        (default the VAE's, 48 kHz) -> (1, D, T) latents of its first ``train_dataset.prompt_len``
        seconds, a posterior sample (``noise`` (1, D, T) or drawn from ``generator``)."""
        vae = self._need_vae("encoding a prompt")
        sample_rate = int(sample_rate or vae.sample_rate)
        wav = torch.as_tensor(prompt_wav, dtype=torch.float32)
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise ValueError(f"a prompt is (N,), (1, N) or (C, N) audio, got shape {tuple(wav.shape)}")
        if wav.shape[0] > 1:
            wav = wav.mean(dim=0, keepdim=True)
        wav = wav[:, :int(sample_rate * self.config.prompt_len)]
        return vae.encode(wav, sample_rate, generator=generator, noise=noise)

    # -- generation and decoding --------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        lyrics_symbols: str,
        prompt_wav: torch.Tensor | None = None,
        *,
        prompt_latents: torch.Tensor | None = None,
        sample_rate: int | None = None,
        cfg_coef: float | tuple[float, float] | None = None,
        temp: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        penalty_repeat: bool | None = None,
        penalty_window: int | None = None,
        steps: int | None = None,
        diff_temp: float | None = None,
        dit_cfg_type: str | None = None,
        max_frames: float | None = None,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
        noise_fn: Callable[[int, tuple, torch.dtype, torch.device], torch.Tensor] | None = None,
        allow_unknown: bool = False,
        use_cache: bool = True,
        trace: GenerationTrace | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sketch tokens (1, T) and latents (1, D, T) of a song (:meth:`MVSADiTAR.generate`).

        The style prompt is ``prompt_wav`` (audio, see :meth:`encode_prompt`; its posterior
        noise is the generator's first draw) or ready ``prompt_latents`` (1, D, Tp); with neither
        the prompt is the null one. Sampling options left ``None`` come from the config's
        ``inference:`` section (the released values when it has none); ``max_frames`` defaults
        to ``max_dur · 25``. The same seeded ``generator`` gives the same song.
        """
        if prompt_wav is not None and prompt_latents is not None:
            raise ValueError("give prompt_wav or prompt_latents, not both")
        was_training = self.training
        self.eval()
        try:
            if prompt_wav is not None:
                prompt_latents = self.encode_prompt(prompt_wav, sample_rate, generator=generator)
            inf = self.config.inference
            options: dict[str, Any] = dict(
                cfg_coef=inf.cfg_coef if cfg_coef is None else cfg_coef,
                temp=inf.temp if temp is None else temp,
                top_k=inf.top_k if top_k is None else top_k,
                top_p=inf.top_p if top_p is None else top_p,
                use_sampling=inf.use_sampling,
                penalty_repeat=inf.penalty_repeat if penalty_repeat is None else penalty_repeat,
                penalty_window=inf.penalty_window if penalty_window is None else penalty_window,
                steps=inf.steps if steps is None else steps,
                diff_temp=inf.diff_temp if diff_temp is None else diff_temp,
                dit_cfg_type=inf.dit_cfg_type if dit_cfg_type is None else dit_cfg_type,
                max_frames=self.config.default_max_frames if max_frames is None else max_frames,
            )
            lyrics = self.lyric_batch(lyrics_symbols, allow_unknown=allow_unknown).to(self.device)
            return self.model.generate(lyrics, prompt_latents, generator=generator, progress=progress,
                                       noise_fn=noise_fn, use_cache=use_cache, trace=trace, **options)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Latents (B, D, T) -> audio (B, 2, T · ratio) through the fp32 VAE (chunks of 128 frames)."""
        return self._need_vae("decoding").decode(latents.float(), chunked=chunked)
