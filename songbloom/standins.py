"""Small random-weight stand-ins for the released music codecs, so recipes run where no weights are.

The released VAE (``autoencoder_music_dsp1920.ckpt``, 169 M parameters) and
MuQ (``OpenMuQ/MuQ-large-msd-iter``, 316 M) cannot be downloaded on every
machine, and the mini corpus needs neither's quality. A stand-in has the
released layout at a small width, with seeded random weights, in the released
file formats (``vae.json`` + ``{'state_dict'}`` checkpoint; a MuQ directory
with ``config.json`` + ``model.safetensors``), so that every binary runs on it
exactly as on the real files:

* the VAE keeps the 1920-sample stride (48 kHz stereo → 25 Hz latents) with
  ``channels`` wide layers and ``latent_dim`` latents;
* MuQ keeps its 24 kHz front end and 25 Hz frames with a ``dim``-wide, ``depth``-layer conformer.

Their latents and features are deterministic functions of the audio, but
decoding stand-in latents gives noise: songs generated through them are only a
test of the pipeline. Real runs pass the released files instead.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from shirabe.codec import STABLE_AUDIO_1920_VAE_CONFIG, build_vae
from shirabe.ssl import MuQ, MuQConfig
from shirabe.ssl.muq_config import MSD_MEL_MEAN, MSD_MEL_STD
from shirabe.train.checkpoint import atomic_save


def standin_vae_config(channels: int = 8, latent_dim: int = 16) -> dict:
    config = copy.deepcopy(STABLE_AUDIO_1920_VAE_CONFIG)
    model = config["model"]
    model["encoder"]["config"].update(channels=channels, latent_dim=2 * latent_dim)
    model["decoder"]["config"].update(channels=channels, latent_dim=latent_dim)
    model["latent_dim"] = latent_dim
    return config


def write_standin_vae(out_dir: str | Path, seed: int = 0, channels: int = 8, latent_dim: int = 16) -> tuple[Path, Path]:
    """``vae.json`` + ``vae.ckpt`` of a random 25 Hz Oobleck VAE; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = standin_vae_config(channels, latent_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_vae(config, device="cpu", source="stand-in VAE")
    json_path = out_dir / "vae.json"
    json_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    ckpt = atomic_save({"state_dict": model.state_dict()}, out_dir / "vae.ckpt")
    return json_path, ckpt


def write_standin_muq(out_dir: str | Path, seed: int = 0, dim: int = 64, depth: int = 2, conv_dim: int = 16,
                      heads: int = 4) -> Path:
    """A MuQ directory (``config.json`` + ``model.safetensors``) with random weights; returns it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = MuQConfig(encoder_dim=dim, encoder_depth=depth, conv_dim=conv_dim, num_attention_heads=heads,
                       intermediate_size=2 * dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MuQ(config)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))
    flat = {
        "label_rate": 25, "hop_length": 240, "n_mels": 128, "features": ["melspec_2048"],
        "encoder_dim": dim, "encoder_depth": depth, "conv_dim": conv_dim,
        "stat": {"melspec_2048_mean": MSD_MEL_MEAN, "melspec_2048_std": MSD_MEL_STD},
        "w2v2_config": {"num_attention_heads": heads, "intermediate_size": 2 * dim, "hidden_act": "swish",
                        "position_embeddings_type": "rotary", "rotary_embedding_base": 10000,
                        "conv_depthwise_kernel_size": config.conv_depthwise_kernel_size, "layer_norm_eps": 1e-5},
    }
    (out_dir / "config.json").write_text(json.dumps(flat, indent=2) + "\n", encoding="utf-8")
    return out_dir
