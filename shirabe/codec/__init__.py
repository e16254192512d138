"""The music latent codec: the stable-audio Oobleck VAE (SongBloom's 48 kHz stereo, 25 Hz x 64 latents).

``load_vae(json, ckpt)`` (or :meth:`OobleckVAE.from_files`) builds the model from its
``vae.json`` and loads a ``{'state_dict': ...}`` checkpoint, a bare state dict, or the
``vae.vae.*`` part of a SongBloom ``.pt`` (``prefix="vae.vae."``). ``encode(wav, sr)`` gives
(B, D, T) latents (posterior mean, or a sample), ``decode(latents)`` (B, 2, T·ratio) audio;
both can run in overlapped chunks.
"""

from shirabe.codec.chunking import ChunkPiece, chunk_plan
from shirabe.codec.config import (
    STABLE_AUDIO_1920_VAE_CONFIG,
    OobleckDecoderConfig,
    OobleckEncoderConfig,
    VAEConfig,
    parse_vae_config,
    read_vae_config,
)
from shirabe.codec.loading import (
    SONGBLOOM_VAE_PREFIX,
    build_stable_audio_1920_vae,
    build_vae,
    load_vae,
    vae_state_dict,
)
from shirabe.codec.oobleck import (
    DecoderBlock,
    EncoderBlock,
    OobleckDecoder,
    OobleckEncoder,
    OobleckVAE,
    ResidualUnit,
    Snake,
    VAEEncoding,
    WNConv1d,
    WNConvTranspose1d,
    vae_bottleneck,
)

__all__ = [
    "STABLE_AUDIO_1920_VAE_CONFIG",
    "SONGBLOOM_VAE_PREFIX",
    "ChunkPiece",
    "DecoderBlock",
    "EncoderBlock",
    "OobleckDecoder",
    "OobleckDecoderConfig",
    "OobleckEncoder",
    "OobleckEncoderConfig",
    "OobleckVAE",
    "ResidualUnit",
    "Snake",
    "VAEConfig",
    "VAEEncoding",
    "WNConv1d",
    "WNConvTranspose1d",
    "build_stable_audio_1920_vae",
    "build_vae",
    "chunk_plan",
    "load_vae",
    "parse_vae_config",
    "read_vae_config",
    "vae_bottleneck",
    "vae_state_dict",
]
