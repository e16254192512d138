"""MuQ parity with the reference outputs of the released implementation (``muq_tiny`` fixture).

Tolerances are those of the fixture's README: dB mel atol 1e-3, normalised mel atol 1e-4,
network outputs atol 1e-4 + rtol 1e-4 (an fp64 re-run moves them by at most 1.7e-6; the
stored arrays come from a correct float32 Hann window, which ours is by construction).
"""

import numpy as np
import pytest
import torch
from muq_testlib import MUQ_FIXTURE

from shirabe.ssl import MuQ, load_muq, muq_mel_db, muq_power_spectrum, num_frames

SUFFIXES = ["", "_odd"]


def _close(actual: torch.Tensor, expected: np.ndarray, atol: float, rtol: float = 0.0) -> None:
    np.testing.assert_allclose(actual.detach().cpu().numpy(), expected, atol=atol, rtol=rtol)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_front_end(cases, suffix, backend):
    wav = torch.from_numpy(cases["wav" + suffix])
    mel = muq_mel_db(wav, backend=backend)
    assert mel.dtype == torch.float32
    assert tuple(mel.shape) == cases["mel_db" + suffix].shape
    _close(mel, cases["mel_db" + suffix], atol=1e-3)
    mean, std = 6.768444971712967, 18.417922652295623  # the fixture config's MSD statistics
    _close((mel - mean) / std, cases["mel_norm" + suffix], atol=1e-4)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_full_forward(muq, cases, suffix):
    with torch.no_grad():
        out = muq(torch.from_numpy(cases["wav" + suffix]))
    assert len(out.hidden_states) == 3  # input of layer 1, output of layer 1, final norm
    _close(muq.normalize(muq.mel_db(torch.from_numpy(cases["wav" + suffix]))), cases["mel_norm" + suffix], 1e-4)
    _close(out.hidden_states[0], cases["conv_out" + suffix], atol=1e-4, rtol=1e-4)
    _close(torch.stack(out.hidden_states), cases["hidden_states" + suffix], atol=1e-4, rtol=1e-4)
    _close(out.last_hidden_state, cases["last_hidden_state" + suffix], atol=1e-4, rtol=1e-4)
    assert out.last_hidden_state.shape[1] == num_frames(cases["wav" + suffix].shape[1])


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_network_only_from_reference_mel(muq, cases, suffix):
    """Feeding the stored ``mel_norm`` isolates the network from the front end."""
    with torch.no_grad():
        out = muq.forward_mel(torch.from_numpy(cases["mel_norm" + suffix]))
    _close(out.hidden_states[0], cases["conv_out" + suffix], atol=1e-4, rtol=1e-4)
    _close(torch.stack(out.hidden_states), cases["hidden_states" + suffix], atol=1e-4, rtol=1e-4)
    _close(out.last_hidden_state, cases["last_hidden_state" + suffix], atol=1e-4, rtol=1e-4)


def test_odd_length_frame_arithmetic(cases):
    # 36123 samples: 150 mel frames -> 75 -> 38 (the fixture's README)
    assert cases["wav_odd"].shape == (1, 36123)
    assert cases["mel_db_odd"].shape[-1] == 150 and cases["conv_out_odd"].shape[1] == 38
    assert num_frames(36123) == 38
    assert num_frames(48000) == 50


def test_real_valued_stft_path(muq, cases):
    """The matmul STFT (the one MPS uses) has no complex tensors and matches torch.stft."""
    wav = torch.from_numpy(cases["wav"])
    fft = muq_power_spectrum(wav, backend="fft")
    real = muq_power_spectrum(wav, backend="matmul")
    assert not real.is_complex() and real.shape == fft.shape == (2, 1025, 200)
    scale = float(fft.max())
    assert float((real - fft).abs().max()) < 1e-5 * scale
    matmul_model = load_muq(MUQ_FIXTURE, stft_backend="matmul")
    with torch.no_grad():
        out = matmul_model(wav)
    _close(torch.stack(out.hidden_states), cases["hidden_states"], atol=1e-4, rtol=1e-4)


def test_auto_backend_uses_the_real_path_on_mps():
    from shirabe.ssl.muq_mel import resolve_stft_backend

    assert resolve_stft_backend("auto", "mps") == "matmul"
    assert resolve_stft_backend("auto", "cpu") == "fft"
    assert resolve_stft_backend("auto", "cuda") == "fft"
    with pytest.raises(ValueError, match="unknown STFT backend"):
        MuQ(stft_backend="complex")


def test_mel_is_float32_for_a_half_precision_model(cases):
    model = load_muq(MUQ_FIXTURE, dtype=torch.bfloat16)
    wav = torch.from_numpy(cases["wav"])
    assert model.mel_db(wav.to(torch.bfloat16)).dtype == torch.float32
    _close(model.mel_db(wav), cases["mel_db"], atol=1e-3)
    with torch.no_grad():
        out = model(wav)
    assert out.last_hidden_state.dtype == torch.bfloat16
    # bf16 weights: a loose check that it is the same network (values of order 1)
    _close(out.last_hidden_state.float(), cases["last_hidden_state"], atol=0.15)


def test_short_audio_is_a_clear_error(muq):
    with pytest.raises(ValueError, match="too short"):
        muq(torch.zeros(1, 1024))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        muq(torch.zeros(48000))
