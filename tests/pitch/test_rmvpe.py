"""RMVPE: strict loading of an rmvpe.pt-format state_dict and parity with upstream's outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from shirabe.cli import InputError
from shirabe.pitch import extract_f0
from shirabe.pitch.rmvpe import E2E, config_from_state_dict, decode_salience, load_rmvpe

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "rmvpe_tiny"


@pytest.fixture(scope="module")
def cases():
    with np.load(FIXTURE / "cases.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def rmvpe():
    return load_rmvpe(FIXTURE / "rmvpe_tiny.pt")


def test_state_dict_layout_and_sizes():
    state = torch.load(FIXTURE / "rmvpe_tiny.pt", map_location="cpu", weights_only=True)
    assert len(state) == 357
    cfg = config_from_state_dict(state)
    # The fixture README's network: E2E(2, 1, (2, 2), 5, 2, 1, 2), 1,584,015 parameters.
    assert cfg == {"n_blocks": 2, "n_gru": 1, "kernel_size": (2, 2), "en_de_layers": 5,
                   "inter_layers": 2, "in_channels": 1, "en_out_channels": 2}
    model = E2E(**cfg)
    assert sum(p.numel() for p in model.parameters()) == 1_584_015
    # The released rmvpe.pt sizes (E2E(4, 1, (2, 2)) with defaults): about 90.4M parameters.
    with torch.device("meta"):
        full = E2E(4, 1, (2, 2))
    assert 90.0e6 < sum(p.numel() for p in full.parameters()) < 90.8e6


def test_mel_front_end(rmvpe, cases):
    mel = rmvpe.mel(torch.from_numpy(cases["audio_16k"]))[0].numpy()
    assert mel.shape == (128, 101)
    # log domain; the largest differences sit in near-silent bins (float32 STFT rounding)
    np.testing.assert_allclose(mel, cases["mel"], atol=2e-4, rtol=0)
    assert np.mean(np.abs(mel - cases["mel"])) < 1e-5


def test_network_salience(rmvpe, cases):
    mel = torch.from_numpy(cases["mel"])[None]
    salience = rmvpe.salience(mel)[0].numpy()
    assert salience.shape == (101, 360)
    np.testing.assert_allclose(salience, cases["salience"], atol=1e-5, rtol=0)
    padded = rmvpe.model(torch.from_numpy(cases["model_input_padded"])[None])[0].detach().numpy()
    np.testing.assert_allclose(padded, cases["salience_padded"], atol=1e-5, rtol=0)


def test_decoding_of_stored_salience(rmvpe, cases):
    np.testing.assert_array_equal(rmvpe.cents_mapping, cases["cents_mapping_padded"])
    np.testing.assert_allclose(decode_salience(cases["salience"], 0.03), cases["f0_thred_0p03"], atol=1e-9, rtol=0)
    f0 = decode_salience(cases["salience"], float(cases["thred2"]))
    np.testing.assert_allclose(f0, cases["f0_thred2"], atol=1e-9, rtol=0)
    assert (f0 == 0).sum() == 50


@pytest.mark.parametrize("thred_key,f0_key", [(None, "f0_thred_0p03"), ("thred2", "f0_thred2")])
def test_end_to_end_f0(cases, thred_key, f0_key):
    threshold = None if thred_key is None else float(cases[thred_key])
    f0 = extract_f0(cases["audio_16k"], 16000, "rmvpe", threshold=threshold,
                    rmvpe_model_path=FIXTURE / "rmvpe_tiny.pt")
    want = cases[f0_key]
    assert f0.shape == want.shape
    np.testing.assert_array_equal(f0 > 0, want > 0)
    np.testing.assert_allclose(f0[want > 0], want[want > 0], rtol=1e-5)


def test_wrong_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "not_rmvpe.pt"
    torch.save({"weight": torch.zeros(3)}, bad)
    with pytest.raises(InputError, match="not_rmvpe.pt"):
        load_rmvpe(bad)
    with pytest.raises(InputError, match="rmvpe_model_path"):
        extract_f0(np.zeros(1600, np.float32), 16000, "rmvpe")
