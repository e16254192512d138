"""Parity of the Oobleck VAE with the reference arrays of ``oobleck_vae_tiny`` and ``songbloom_tiny``.

Tolerances are the fixtures' own: atol 2e-6 / rtol 1e-5 (kl: rtol 1e-5) for the VAE outputs
(including SongBloom's ``gen_audio``), 1e-4 for the SongBloom conditioner output.
"""

import json

import numpy as np
import pytest
import torch

from shirabe.codec import SONGBLOOM_VAE_PREFIX, load_vae

pytestmark = pytest.mark.usefixtures("single_torch_thread")

ATOL, RTOL = 2e-6, 1e-5
KL_RTOL = 1e-5
SONGBLOOM_ATOL = 1e-4
CHUNK_SEAM_ATOL = 2e-6  # chunked vs unchunked decode of latents_long must differ by more than this

USED_ARRAYS = {
    "audio", "enc_pre_bottleneck", "enc_mean", "enc_scale", "enc_std", "enc_noise", "enc_latents_sampled",
    "enc_kl", "dec_from_mean", "audio_mono", "mono_noise", "mono_mean", "mono_latents_sampled", "audio_odd",
    "odd_mean", "latents_long", "dec_long_unchunked", "dec_long_chunked",
}


def close(actual: torch.Tensor, expected: np.ndarray, atol: float = ATOL, rtol: float = RTOL):
    assert tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.numpy(), expected, atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def rate(tiny_files) -> int:
    return json.loads(tiny_files[0].read_text())["sample_rate"]


def test_every_array_is_checked(tiny_cases):
    assert set(tiny_cases) == USED_ARRAYS


def test_stereo_encode(tiny_vae, tiny_cases, rate):
    c = tiny_cases
    info = tiny_vae.encode_with_info(torch.from_numpy(c["audio"]), rate, sample=True,
                                     noise=torch.from_numpy(c["enc_noise"]))
    close(info.pre_bottleneck, c["enc_pre_bottleneck"])
    close(info.mean, c["enc_mean"])
    close(info.scale, c["enc_scale"])
    close(info.std, c["enc_std"])
    close(info.latents, c["enc_latents_sampled"])
    np.testing.assert_allclose(info.kl.item(), c["enc_kl"], rtol=KL_RTOL)
    # the default is the deterministic posterior mean
    close(tiny_vae.encode(torch.from_numpy(c["audio"]), rate), c["enc_mean"])


def test_decode_from_mean(tiny_vae, tiny_cases):
    close(tiny_vae.decode(torch.from_numpy(tiny_cases["enc_mean"])), tiny_cases["dec_from_mean"])


@pytest.mark.parametrize("layout", ["(B,1,N)", "(B,N)"])
def test_mono_is_repeated_to_stereo(tiny_vae, tiny_cases, rate, layout):
    mono = torch.from_numpy(tiny_cases["audio_mono"])
    if layout == "(B,N)":
        mono = mono[:, 0]
    info = tiny_vae.encode_with_info(mono, rate, sample=True, noise=torch.from_numpy(tiny_cases["mono_noise"]))
    close(info.mean, tiny_cases["mono_mean"])
    close(info.latents, tiny_cases["mono_latents_sampled"])


def test_odd_length_floors(tiny_vae, tiny_cases, rate):
    close(tiny_vae.encode(torch.from_numpy(tiny_cases["audio_odd"]), rate), tiny_cases["odd_mean"])


def test_long_decode_unchunked_and_chunked(tiny_vae, tiny_cases):
    latents = torch.from_numpy(tiny_cases["latents_long"])
    unchunked = tiny_vae.decode(latents)
    chunked = tiny_vae.decode(latents, chunked=True)
    close(unchunked, tiny_cases["dec_long_unchunked"])
    close(chunked, tiny_cases["dec_long_chunked"])
    # the two really differ, so matching dec_long_chunked tests the chunk layout
    assert np.abs(tiny_cases["dec_long_chunked"] - tiny_cases["dec_long_unchunked"]).max() > CHUNK_SEAM_ATOL
    assert (chunked - unchunked).abs().max().item() > CHUNK_SEAM_ATOL


# ---- the VAE bundled with songbloom_tiny -----------------------------------

@pytest.fixture(scope="module")
def songbloom_vaes(songbloom_files):
    from_pt = load_vae(songbloom_files["json"], songbloom_files["pt"], prefix=SONGBLOOM_VAE_PREFIX)
    from_ckpt = load_vae(songbloom_files["json"], songbloom_files["ckpt"])
    return from_pt, from_ckpt


def test_songbloom_vae_loads_are_identical(songbloom_vaes, tiny_vae):
    from_pt, from_ckpt = songbloom_vaes
    a, b, tiny = from_pt.state_dict(), from_ckpt.state_dict(), tiny_vae.state_dict()
    assert list(a) == list(b) == list(tiny)
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], tiny[k]), k


def test_songbloom_prompt_latents(songbloom_vaes, songbloom_files, songbloom_cases):
    """Case 3: the prompt wav through the bundled VAE, then the prompt conditioner's projection."""
    c = songbloom_cases
    vae_rate = json.loads(songbloom_files["json"].read_text())["sample_rate"]
    wav = torch.from_numpy(c["e2e_prompt_wav"])  # (1, N) mono
    noise = torch.from_numpy(c["e2e_vae_noise"][:1])
    weights = torch.load(songbloom_files["pt"], map_location="cpu", weights_only=True)
    proj = weights["model.condition_provider.conditioners.prompt_wav.output_proj.weight"]  # (d, D)
    prompt_len = c["e2e_cond_prompt"].shape[1]
    for vae in songbloom_vaes:
        mean = vae.encode(wav, vae_rate)
        latents = vae.encode(wav, vae_rate, sample=True, noise=noise)
        assert mean.shape == latents.shape == noise.shape
        assert (latents - mean).abs().max() > 1e-3  # the sample is not the mean
        projected = latents[0, :, :prompt_len].T @ proj.T
        close(projected, c["e2e_cond_prompt"][0], atol=SONGBLOOM_ATOL, rtol=SONGBLOOM_ATOL)


def test_songbloom_generated_audio(songbloom_vaes, songbloom_cases):
    """``gen_audio`` = unchunked decode of ``gen_latents``; chunked decode below one chunk is one piece."""
    latents = torch.from_numpy(songbloom_cases["gen_latents"])
    for vae in songbloom_vaes:
        close(vae.decode(latents), songbloom_cases["gen_audio"])
        assert torch.equal(vae.decode(latents, chunked=True), vae.decode(latents))
