"""Stand-in codecs load through the same strict loaders as the released files and run at 25 Hz."""

import json

import numpy as np
import torch

from shirabe.codec import load_vae
from shirabe.ssl import encode, load_muq
from songbloom.bin import make_standins


def test_standins_load_strictly_and_give_25_hz_frames(tmp_path):
    assert make_standins.main(["--output-dir", str(tmp_path), "--seed", "3"]) == 0
    cfg = json.loads((tmp_path / "vae.json").read_text())
    assert cfg["model"]["downsampling_ratio"] == 1920 and cfg["sample_rate"] == 48000
    vae = load_vae(tmp_path / "vae.json", tmp_path / "vae.ckpt")
    muq = load_muq(tmp_path / "muq")
    x = (0.1 * np.random.default_rng(0).standard_normal(48000 * 2)).astype(np.float32)
    lat = vae.encode(torch.from_numpy(x)[None], 48000)
    assert lat.shape == (1, 16, 50) and torch.isfinite(lat).all()
    feats = encode(muq, x, 48000)
    assert feats.shape == (50, 64) and torch.isfinite(feats).all()


def test_standins_are_kept_and_seeded(tmp_path):
    make_standins.main(["--output-dir", str(tmp_path / "a"), "--seed", "1"])
    make_standins.main(["--output-dir", str(tmp_path / "b"), "--seed", "1"])
    first = (tmp_path / "a" / "muq" / "model.safetensors").read_bytes()
    assert first == (tmp_path / "b" / "muq" / "model.safetensors").read_bytes()
    mtime = (tmp_path / "a" / "vae.ckpt").stat().st_mtime_ns
    make_standins.main(["--output-dir", str(tmp_path / "a"), "--seed", "2"])
    assert (tmp_path / "a" / "vae.ckpt").stat().st_mtime_ns == mtime  # kept without --overwrite
