"""Griffin-Lim fallback: right length, and its audio re-analyses to the input mel."""

import torch

from shirabe.audio.mel import vocos_mel
from shirabe.vocoder import GriffinLim, griffin_lim

# Measured on the fixture mel (1 s chirp + noise): mean |log-mel diff| 0.079 at
# 32 iterations (0.78 with random phase and no iterations).
MEAN_LOG_MEL_TOL = 0.15


def test_griffin_lim_inverts_vocos_mel(vocos_cases):
    mel = torch.from_numpy(vocos_cases["mel"])
    frames = mel.shape[-1]
    audio = griffin_lim(mel, n_iter=32)
    assert audio.shape == (1, frames * 256) and audio.dtype == torch.float32
    diff = (vocos_mel(audio)[..., :frames] - mel).abs()
    assert diff.mean() < MEAN_LOG_MEL_TOL
    no_iter = GriffinLim(n_iter=0).decode(mel)
    assert diff.mean() < 0.5 * (vocos_mel(no_iter)[..., :frames] - mel).abs().mean()


def test_griffin_lim_batch_and_determinism(vocos_cases):
    mel = torch.from_numpy(vocos_cases["mel"])[..., :20]
    gl = GriffinLim(n_iter=4)
    batch = gl.decode(torch.cat([mel, mel - 1.0]))
    assert batch.shape == (2, 20 * 256)
    assert torch.equal(gl.decode(mel), gl.decode(mel))


def test_mel_to_magnitude_is_non_negative_and_consistent(vocos_cases):
    mel = torch.from_numpy(vocos_cases["mel"])
    gl = GriffinLim()
    mag = gl.mel_to_magnitude(mel)
    assert mag.shape == (1, 513, mel.shape[-1]) and (mag >= 0).all()
    refit = torch.log(torch.clamp(gl.fb.t() @ mag, min=1e-7))
    assert (refit - mel).abs().mean() < 0.01


def test_extreme_log_mels_stay_finite():
    mel = torch.full((1, 100, 20), 66.0)
    mel[:, :, ::2] = -20.0
    audio = griffin_lim(mel, n_iter=4)
    assert torch.isfinite(audio).all() and audio.shape == (1, 20 * 256)
