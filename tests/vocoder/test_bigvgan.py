"""BigVGAN v2: strict loading of upstream-format checkpoints, parity with upstream's outputs,
the full-size layout, and fixed-weight checks of the Snake and anti-alias filter pieces."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal

from shirabe.cli import InputError
from shirabe.vocoder import (
    BigVGAN,
    bigvgan_mel,
    load_bigvgan,
    load_bigvgan_dir,
    load_bigvgan_vocoder,
)
from shirabe.vocoder.bigvgan import (
    BIGVGAN_V2_22KHZ_80BAND_256X,
    Activation1d,
    SnakeBeta,
    kaiser_sinc_filter1d,
    read_bigvgan_config,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "bigvgan_tiny"


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield


@pytest.fixture(scope="module")
def bigvgan_cases():
    with np.load(FIXTURE / "cases.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", ["v2", "snake_tanh"])
@pytest.mark.parametrize("fold", [False, True])
def test_matches_upstream_output(bigvgan_cases, case, fold):
    model = load_bigvgan(FIXTURE / case / "config.json", FIXTURE / case / "bigvgan_generator.pt",
                         remove_weight_norm=fold)
    mel = torch.from_numpy(bigvgan_cases[f"{case}_mel_in"])
    with torch.no_grad():
        audio = model(mel)
    assert audio.shape == (1, 1, mel.shape[-1] * 256)
    torch.testing.assert_close(audio, torch.from_numpy(bigvgan_cases[f"{case}_audio_out"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(model.decode(mel), audio[:, 0])


def test_full_size_layout_equals_upstream_keys():
    """The released 22 kHz / 80-band / 256x config: same keys as upstream's tiny v2 checkpoint
    (only widths differ) and NVIDIA's published size of about 112M parameters."""
    upstream = torch.load(FIXTURE / "v2" / "bigvgan_generator.pt", map_location="cpu", weights_only=True)
    with torch.device("meta"):
        full = BigVGAN(BIGVGAN_V2_22KHZ_80BAND_256X)
    assert set(full.state_dict()) == set(upstream["generator"])
    assert len(full.state_dict()) == 783
    assert 111.5e6 < sum(p.numel() for p in full.parameters()) < 112.5e6
    fixture_config = json.loads((FIXTURE / "v2" / "config.json").read_text())
    for key, value in BIGVGAN_V2_22KHZ_80BAND_256X.items():
        if key != "upsample_initial_channel":
            assert fixture_config[key] == value, key


def test_output_length_and_folded_weight_norm(tmp_path):
    config = dict(BIGVGAN_V2_22KHZ_80BAND_256X, upsample_initial_channel=64,
                  upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4], hop_size=8)
    torch.manual_seed(0)
    model = BigVGAN(config).eval()
    mel = torch.randn(2, 80, 7)
    with torch.no_grad():
        before = model(mel)
        assert before.shape == (2, 1, 7 * 8)
        torch.save(model.state_dict(), tmp_path / "bare.pt")  # bare state_dict, weight norm kept
        (tmp_path / "config.json").write_text(json.dumps(config))
        loaded = load_bigvgan(tmp_path / "config.json", tmp_path / "bare.pt", remove_weight_norm=False)
        torch.testing.assert_close(loaded(mel), before)
        model.remove_weight_norm()
        assert "conv_pre.weight" in model.state_dict() and "conv_pre.weight_g" not in model.state_dict()
        torch.testing.assert_close(model(mel), before, atol=1e-6, rtol=0)
        torch.save({"generator": model.state_dict()}, tmp_path / "bigvgan_generator.pt")
        folded = load_bigvgan_dir(tmp_path)
        torch.testing.assert_close(folded(mel), before, atol=1e-6, rtol=0)


def test_snakebeta_formula():
    act = SnakeBeta(3, logscale=True)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.0, 0.5, -0.7]))
        act.beta.copy_(torch.tensor([0.2, -0.3, 1.0]))
    x = torch.linspace(-3, 3, 11).repeat(1, 3, 1)
    alpha = np.exp(np.array([0.0, 0.5, -0.7]))[None, :, None]
    beta = np.exp(np.array([0.2, -0.3, 1.0]))[None, :, None]
    xn = x.double().numpy()
    want = xn + np.sin(alpha * xn) ** 2 / (beta + 1e-9)
    np.testing.assert_allclose(act(x).detach().double().numpy(), want, atol=1e-6)


def test_anti_alias_filters_are_kaiser_sincs():
    # Independent design with scipy: 12 taps, cutoff 0.25 cycles/sample, Kaiser beta for the
    # attenuation 2.285 * (12/2 - 1) * pi * (4 * 0.3) + 7.95 dB.
    attenuation = 2.285 * 5 * np.pi * 1.2 + 7.95
    taps = signal.firwin(12, 0.25, window=("kaiser", signal.kaiser_beta(attenuation)), fs=1.0)
    ours = kaiser_sinc_filter1d(0.25, 0.3, 12).view(-1).double().numpy()
    np.testing.assert_allclose(ours, taps, atol=1e-7)
    upstream = torch.load(FIXTURE / "v2" / "bigvgan_generator.pt", map_location="cpu", weights_only=True)
    sd = upstream["generator"]
    np.testing.assert_allclose(sd["resblocks.0.activations.0.upsample.filter"].view(-1).numpy(), taps, atol=1e-7)
    np.testing.assert_allclose(sd["activation_post.downsample.lowpass.filter"].view(-1).numpy(), taps, atol=1e-7)


def test_activation_keeps_length_and_removes_aliases():
    """Identity activation: the up/down path is a low-pass that keeps the length and passes low tones."""
    path = Activation1d(torch.nn.Identity())
    t = torch.arange(400, dtype=torch.float32)
    low = torch.sin(2 * np.pi * 0.02 * t)[None, None]
    out = path(low)
    assert out.shape == low.shape
    assert (out - low)[..., 20:-20].abs().max() < 0.05


def test_mel_front_end_matches_upstream(bigvgan_cases):
    audio = torch.from_numpy(bigvgan_cases["audio_22k"])
    cfg = read_bigvgan_config(FIXTURE / "v2" / "config.json")
    mel = bigvgan_mel(audio, cfg)
    assert mel.shape == (1, 80, len(audio) // 256)
    torch.testing.assert_close(mel, torch.from_numpy(bigvgan_cases["mel_fmax_null"]), atol=1e-4, rtol=0)
    mel8k = bigvgan_mel(audio, dict(cfg, fmax=8000))
    torch.testing.assert_close(mel8k, torch.from_numpy(bigvgan_cases["mel_fmax_8000"]), atol=1e-4, rtol=0)


def test_griffin_lim_fallback_warns_and_inverts(bigvgan_cases, caplog):
    with caplog.at_level(logging.WARNING):
        vocoder = load_bigvgan_vocoder(None)
    assert "Griffin-Lim" in caplog.text
    mel = bigvgan_mel(torch.from_numpy(bigvgan_cases["audio_22k"]))[..., :40]
    audio = vocoder.decode(mel, n_iter=16)
    assert audio.shape == (1, 40 * 256)
    again = bigvgan_mel(audio)
    assert (again - mel)[..., 2:-2].abs().mean() < 0.5


def test_mismatched_checkpoint_is_a_one_line_error(tmp_path):
    config = dict(read_bigvgan_config(FIXTURE / "v2" / "config.json"), upsample_initial_channel=64)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="bigvgan_generator.pt"):
        load_bigvgan(tmp_path / "config.json", FIXTURE / "v2" / "bigvgan_generator.pt")
    (tmp_path / "bad.json").write_text(json.dumps(dict(config, hop_size=300)))
    with pytest.raises(InputError, match="hop_size"):
        read_bigvgan_config(tmp_path / "bad.json")
