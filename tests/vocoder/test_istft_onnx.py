"""The matmul/conv ISTFT equals torch.istft, and the whole vocoder exports to ONNX."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shirabe.audio.mel import hann_window
from shirabe.vocoder.istft import ISTFT

N_FFT, HOP = 1024, 256


def _random_spec(batch, frames, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, N_FFT // 2 + 1, frames, generator=gen)
    imag = torch.randn(batch, N_FFT // 2 + 1, frames, generator=gen)
    return torch.complex(real, imag)


@pytest.mark.parametrize("method", ["conv", "fft"])
def test_center_padding_matches_torch_istft(method):
    spec = _random_spec(2, 37)
    ref = torch.istft(spec, N_FFT, HOP, N_FFT, hann_window(N_FFT), center=True)
    out = ISTFT(N_FFT, HOP, padding="center", method=method)(spec.real, spec.imag)
    assert out.shape == ref.shape == (2, 36 * HOP)
    assert (out - ref).abs().max() < 1e-5 * ref.abs().max()


@pytest.mark.parametrize("method", ["conv", "fft"])
def test_same_padding_matches_irfft_overlap_add(method):
    spec = _random_spec(1, 20, seed=1)
    window = hann_window(N_FFT)
    frames = torch.fft.irfft(spec, N_FFT, dim=1) * window[None, :, None]
    length = (spec.shape[-1] - 1) * HOP + N_FFT
    fold = dict(output_size=(1, length), kernel_size=(1, N_FFT), stride=(1, HOP))
    trim = (N_FFT - HOP) // 2
    ola = F.fold(frames, **fold)[:, 0, 0, trim:-trim]
    env = F.fold(window.square()[None, :, None].expand(1, -1, spec.shape[-1]), **fold)[:, 0, 0, trim:-trim]
    ref = ola / env
    out = ISTFT(N_FFT, HOP, padding="same", method=method)(spec.real, spec.imag)
    assert out.shape == ref.shape == (1, 20 * HOP)
    assert (out - ref).abs().max() < 1e-5 * ref.abs().max()


@pytest.mark.parametrize("method", ["conv", "fft"])
def test_perfect_reconstruction_of_a_real_stft(method):
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(2))
    spec = torch.stft(x, N_FFT, HOP, N_FFT, hann_window(N_FFT), center=True, return_complex=True)
    y = ISTFT(N_FFT, HOP, padding="center", method=method)(spec.real, spec.imag)
    n = min(y.shape[-1], x.shape[-1])
    assert (y[:, :n] - x[:, :n]).abs().max() < 1e-5


def test_kernel_follows_loaded_window(tiny_vocos):
    istft = tiny_vocos.head.istft
    other = ISTFT(N_FFT, HOP)
    other.load_state_dict({"window": torch.ones(N_FFT)})
    assert not torch.equal(other.kernel, istft.kernel)
    other.load_state_dict({"window": istft.window.clone()})
    assert torch.equal(other.kernel, istft.kernel)


def test_vocoder_paths_agree_on_fixture(tiny_vocos, vocos_cases):
    mel = torch.from_numpy(vocos_cases["mel"])
    istft = tiny_vocos.head.istft
    outs = {}
    for method in ("conv", "fft"):
        istft.method = method
        outs[method] = tiny_vocos.decode(mel)
    istft.method = "auto"
    for out in outs.values():
        assert np.abs(out.numpy() - vocos_cases["audio"]).max() <= 1e-4
    assert (outs["conv"] - outs["fft"]).abs().max() <= 1e-5


class _Decode(torch.nn.Module):
    def __init__(self, vocos):
        super().__init__()
        self.vocos = vocos

    def forward(self, mel):
        return self.vocos.decode(mel)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_pytorch(tiny_vocos, vocos_cases):
    # The export traces the transposed-convolution ISTFT; eager PyTorch runs the FFT one.
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    buf = io.BytesIO()
    torch.onnx.export(
        _Decode(tiny_vocos).eval(),  # export restores the wrapper's mode on every submodule
        (torch.randn(1, 100, 40),),
        buf,
        dynamo=False,
        opset_version=17,
        input_names=["mel"],
        output_names=["audio"],
        dynamic_axes={"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 1: "samples"}},
    )
    graph = onnx.load_from_string(buf.getvalue()).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"DFT", "STFT", "If", "Loop"}
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for mel in (vocos_cases["mel"], rng.normal(-4.0, 2.0, (2, 100, 123)).astype(np.float32)):
        got = sess.run(None, {"mel": mel})[0]
        want = tiny_vocos.decode(torch.from_numpy(mel)).numpy()
        assert got.shape == want.shape == (mel.shape[0], mel.shape[2] * HOP)
        assert np.abs(got - want).max() <= 1e-4
    assert not tiny_vocos.training
    got = sess.run(None, {"mel": vocos_cases["mel"]})[0]
    assert np.abs(got - vocos_cases["audio"]).max() <= 1e-4
