"""SeedSVC's audio front and back end: Seed-VC V2's 22 kHz / 80-band mel and its vocoder.

The mel is BigVGAN-v2's (``shirabe.vocoder.bigvgan_mel`` with the
``bigvgan_v2_22khz_80band_256x`` settings, the same function as Seed-VC's
``mel_fn``): 22,050 Hz, n_fft = win = 1024, hop 256, Slaney mel basis, natural
log floored at 1e-5; ``S // 256`` frames for S samples (86.13 frames/s).
The vocoder is BigVGAN-v2 from a local directory, or Griffin-Lim with a warning.
"""

from __future__ import annotations

import torch

from shirabe.vocoder.bigvgan import BIGVGAN_V2_22KHZ_80BAND_256X, bigvgan_mel, load_bigvgan_vocoder

MEL_CONFIG = BIGVGAN_V2_22KHZ_80BAND_256X
SAMPLE_RATE = int(MEL_CONFIG["sampling_rate"])
HOP = int(MEL_CONFIG["hop_size"])
N_MELS = int(MEL_CONFIG["num_mels"])
FRAME_RATE = SAMPLE_RATE / HOP


def mel_spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """Log-mel of 22.05 kHz ``audio`` (B, S) or (S,) → (B, 80, S // 256)."""
    return bigvgan_mel(audio, MEL_CONFIG)


def load_mel_vocoder(path=None, trust: bool = False, device="cpu"):
    """``(decode, sample_rate)``: ``decode(mel (B, 80, T)) -> (B, S)`` by BigVGAN from ``path``, else Griffin-Lim."""
    model = load_bigvgan_vocoder(path, trust=trust).to(device).eval()

    @torch.inference_mode()
    def decode(mel: torch.Tensor) -> torch.Tensor:
        out = model(mel.to(device)) if path is not None else model.decode(mel.to(device))
        return out.reshape(out.shape[0], -1).float().cpu()

    return decode, SAMPLE_RATE
