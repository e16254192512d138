"""Oobleck VAE config parsing, strict loading, the full-size layout and the encode/decode API."""

import argparse
import copy
import json

import numpy as np
import pytest
import torch

from shirabe.cli import InputError
from shirabe.codec import (
    STABLE_AUDIO_1920_VAE_CONFIG,
    OobleckVAE,
    build_stable_audio_1920_vae,
    build_vae,
    load_vae,
    parse_vae_config,
    read_vae_config,
)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def one_line_error(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# ---- config -------------------------------------------------------------------

def test_read_tiny_config(tiny_files):
    raw = json.loads(tiny_files[0].read_text())
    cfg = read_vae_config(tiny_files[0])
    assert cfg.sample_rate == raw["sample_rate"] and cfg.audio_channels == raw["audio_channels"]
    assert cfg.latent_dim == raw["model"]["latent_dim"]
    assert cfg.downsampling_ratio == raw["model"]["downsampling_ratio"]
    assert cfg.encoder.strides == tuple(raw["model"]["encoder"]["config"]["strides"])
    assert cfg.decoder.final_tanh is raw["model"]["decoder"]["config"]["final_tanh"]


def test_released_config():
    cfg = parse_vae_config(STABLE_AUDIO_1920_VAE_CONFIG)
    assert (cfg.sample_rate, cfg.audio_channels, cfg.latent_dim, cfg.downsampling_ratio) == (48000, 2, 64, 1920)
    assert cfg.frame_rate == 25.0
    assert cfg.encoder.latent_dim == 128 and cfg.decoder.channels == 128


def _edit(config, path, value):
    config = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = config
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return config


@pytest.mark.parametrize("path, value, field", [
    ("model.latent_dim", None, "model.latent_dim"),
    ("sample_rate", None, "sample_rate"),
    ("model_type", "diffusion_cond", "model_type"),
    ("model.bottleneck.type", "rvq", "model.bottleneck.type"),
    ("model.encoder.type", "dac", "model.encoder.type"),
    ("model.encoder.config.channels", "16", "model.encoder.config.channels"),
    ("model.decoder.config.strides", [2, 4, 0], "model.decoder.config.strides"),
    ("model.decoder.config.strides", [2, 2], "model.decoder.config.strides"),
    ("model.encoder.config.latent_dim", 8, "model.encoder.config.latent_dim"),
    ("model.decoder.config.use_snake", "yes", "model.decoder.config.use_snake"),
    ("model.decoder.config.use_nearest_upsample", True, "model.decoder.config.use_nearest_upsample"),
    ("model.encoder.config.kernel", 5, "model.encoder.config.kernel"),
    ("audio_channels", 1, "audio_channels"),
])
def test_config_errors_name_the_file_and_field(tmp_path, tiny_files, path, value, field):
    bad = _edit(json.loads(tiny_files[0].read_text()), path, value)
    target = tmp_path / "bad_vae.json"
    target.write_text(json.dumps(bad))
    with pytest.raises(InputError) as e:
        read_vae_config(target)
    text = one_line_error(e)
    assert str(target) in text and f"'{field}'" in text


def test_config_file_errors(tmp_path):
    with pytest.raises(InputError, match="no such VAE config"):
        read_vae_config(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError) as e:
        read_vae_config(broken)
    assert "broken.json" in one_line_error(e)


# ---- full-size layout -------------------------------------------------------------

def test_full_size_keys_and_shapes(full_keys_tsv):
    prefix = "vae.vae."
    expected = []
    for line in full_keys_tsv.read_text().splitlines()[1:]:
        key, shape = line.split("\t")[:2]
        if key.startswith(prefix):
            expected.append((key[len(prefix):], tuple(int(d) for d in shape.split("x"))))
    assert expected
    model = build_stable_audio_1920_vae()
    assert all(p.is_meta for p in model.parameters())
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == expected


# ---- loading ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_state(tiny_files):
    return torch.load(tiny_files[1], map_location="cpu", weights_only=True)["state_dict"]


def test_bare_state_dict_and_eval_mode(tmp_path, tiny_files, tiny_state, tiny_vae):
    bare = tmp_path / "bare.pt"
    torch.save(tiny_state, bare)
    model = OobleckVAE.from_files(tiny_files[0], bare, device="cpu")
    assert isinstance(model, OobleckVAE) and not model.training and not tiny_vae.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_state[k])


@pytest.mark.parametrize("change, words", [
    ("drop", "missing keys: decoder.layers.4.weight_v"),
    ("extra", "unexpected keys: decoder.layers.9.weight_v"),
    ("shape", "shape mismatch: encoder.layers.0.bias (3,)"),
])
def test_strict_load_errors(tmp_path, tiny_files, tiny_state, change, words):
    state = dict(tiny_state)
    if change == "drop":
        del state["decoder.layers.4.weight_v"]
    elif change == "extra":
        state["decoder.layers.9.weight_v"] = torch.zeros(1)
    else:
        state["encoder.layers.0.bias"] = torch.zeros(3)
    path = tmp_path / "changed.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(InputError) as e:
        load_vae(tiny_files[0], path)
    text = one_line_error(e)
    assert str(path) in text and words in text


def test_prefix_errors(songbloom_files):
    with pytest.raises(InputError) as e:
        load_vae(songbloom_files["json"], songbloom_files["pt"])
    assert "prefix='vae.vae.'" in one_line_error(e)
    with pytest.raises(InputError) as e:
        load_vae(songbloom_files["json"], songbloom_files["pt"], prefix="autoencoder.")
    assert "no keys start with 'autoencoder.'" in one_line_error(e)


def test_pickled_checkpoint_is_refused(tmp_path, tiny_files):
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "extra": argparse.Namespace(a=1)}, path)
    with pytest.raises(InputError, match="pickle"):
        load_vae(tiny_files[0], path)


# ---- encode/decode API ----------------------------------------------------------------

def test_short_input_gives_no_frames(tiny_vae):
    rate, ratio = tiny_vae.sample_rate, tiny_vae.downsampling_ratio
    assert tiny_vae.encode(torch.zeros(3, 2047), rate).shape == (3, tiny_vae.latent_dim, 0)
    assert tiny_vae.encode(torch.zeros(3, 2047), rate, sample=True).shape == (3, tiny_vae.latent_dim, 0)
    assert tiny_vae.encode(torch.zeros(1, 1, 2048), rate).shape == (1, tiny_vae.latent_dim, 2048 // ratio)
    assert tiny_vae.decode(torch.zeros(2, tiny_vae.latent_dim, 0)).shape == (2, 2, 0)
    assert tiny_vae.num_frames(2047) == 0 and tiny_vae.num_frames(2048 + ratio - 1) == 2048 // ratio


def sines(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
    return np.stack([left, 0.25 * np.sin(2 * np.pi * 660 * t)])[None].astype(np.float32)


def test_other_rates_are_resampled(tiny_vae):
    rate = tiny_vae.sample_rate
    native = tiny_vae.encode(torch.from_numpy(sines(rate, 0.5)), rate)
    at_44k = tiny_vae.encode(torch.from_numpy(sines(44100, 0.5)), 44100)
    assert at_44k.shape == native.shape == (1, tiny_vae.latent_dim, int(rate * 0.5) // tiny_vae.downsampling_ratio)
    inner = slice(20, -20)  # away from the resampler's edges (measured 1.8e-7 inside, 1.2e-4 at the edges)
    assert (at_44k - native)[..., inner].abs().max().item() < 1e-5
    assert (at_44k - native).abs().max().item() < 1e-3
    # read as if it were at the VAE rate, the same samples give fewer, different frames
    assert tiny_vae.encode(torch.from_numpy(sines(44100, 0.5)), rate).shape[-1] < native.shape[-1]


def test_sampling_with_a_generator(tiny_vae, tiny_cases):
    audio, rate = torch.from_numpy(tiny_cases["audio"]), tiny_vae.sample_rate
    info = tiny_vae.encode_with_info(audio, rate, sample=True, generator=torch.Generator().manual_seed(7))
    noise = torch.randn(info.mean.shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(info.latents, info.mean + noise * info.std)
    again = tiny_vae.encode(audio, rate, sample=True, generator=torch.Generator().manual_seed(7))
    assert torch.equal(again, info.latents)
    assert not torch.equal(tiny_vae.encode(audio, rate, sample=True), info.mean)


def test_api_errors(tiny_vae, tiny_cases):
    audio, rate = torch.from_numpy(tiny_cases["audio"]), tiny_vae.sample_rate
    with pytest.raises(ValueError, match="sample=False"):
        tiny_vae.encode(audio, rate, noise=torch.zeros(1))
    with pytest.raises(ValueError, match="noise must have shape"):
        tiny_vae.encode(audio, rate, sample=True, noise=torch.zeros(1, tiny_vae.latent_dim, 3))
    with pytest.raises(ValueError, match="3 channels"):
        tiny_vae.encode(torch.zeros(1, 3, 4096), rate)
    with pytest.raises(ValueError, match="latents of shape"):
        tiny_vae.decode(torch.zeros(1, tiny_vae.latent_dim + 1, 10))


def test_build_vae_random_weights(tiny_files):
    model = build_vae(json.loads(tiny_files[0].read_text()))
    assert not model.training
    out = model.decode(model.encode(torch.randn(1, 2, 4096), model.sample_rate))
    assert out.shape == (1, 2, 4096) and torch.isfinite(out).all()
