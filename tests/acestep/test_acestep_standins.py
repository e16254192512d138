"""acestep.bin.make_standins: a stand-in checkpoint folder the strict loaders accept."""

from __future__ import annotations

import torch

from acestep.bin import make_standins
from acestep.models.config import load_config
from acestep.pipeline import ACEStepPipeline


def test_standin_checkpoint_loads_strictly_and_round_trips_shapes(tmp_path):
    assert make_standins.main(["--output-dir", str(tmp_path / "ckpt"), "--seed", "3"]) == 0
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["ace_step_transformer", "music_dcae_f8c8", "music_vocoder", "umt5-base"]
    config = load_config(tmp_path / "ckpt" / "ace_step_transformer" / "config.json")
    assert config.lyric_encoder_vocab_size == 6693  # the released lyric vocabulary
    pipe = ACEStepPipeline.from_checkpoint_dir(tmp_path / "ckpt")
    audio = torch.randn(1, 2, 48000)
    latents, lengths = pipe.dcae.encode(audio)
    # 1 s at 48 kHz → 44100 samples → padded to 45056 = 11 latent frames of 4096 samples
    assert latents.shape == (1, 8, 16, 11) and lengths.tolist() == [10]
    sr, wavs = pipe.dcae.decode(latents, sr=48000)
    assert sr == 48000 and wavs[0].shape[0] == 2
    hidden, mask = pipe.text_encoder.encode(["pop, piano, female vocal"])
    assert hidden.shape == (1, 6, 768) and mask.sum() == 6
