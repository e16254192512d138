"""ACE-Step Music-DCAE: stereo audio ⇄ latents, the music vocoder, resampling and the mel front end."""

from acestep.dcae.loading import (
    RELEASED_DCAE_CONFIG,
    build_dcae,
    build_vocoder,
    load_dcae,
    load_vocoder,
)
from acestep.dcae.pipeline import MusicDCAE
from acestep.dcae.vocoder import MusicVocoder, VocoderConfig

__all__ = ["RELEASED_DCAE_CONFIG", "MusicDCAE", "MusicVocoder", "VocoderConfig", "build_dcae", "build_vocoder",
           "load_dcae", "load_vocoder"]
