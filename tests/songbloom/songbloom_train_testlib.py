"""A tiny SongBloom config and feature cuts of synthetic songs, for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.audio import AudioSource
from lhotse.features.io import NumpyFilesWriter

from songbloom.models.config import config_dict

BLOCK, LATENT, PITCH, PROMPT = 4, 8, 32, 12
LYRICS = ["[verse] s a k u r a , s a k u r a .", "[verse] k a e r u n o . [chorus] u t a .",
          "[verse] ky o o w a . h a r e .", "[chorus] a i u e o , I U cl ts ."]


def write_config(path: Path, **overrides) -> Path:
    values = dict(block_size=BLOCK, latent_dim=LATENT, dim=64, num_heads=2, lm_layers=2, diff_layers=1,
                  num_pitch=PITCH, timestep_features_dim=16, prompt_max_len=PROMPT, lyric_max_len=32,
                  max_sentence_per_structure=8, max_dur=10.0)
    values.update(overrides)
    path.write_text(yaml.safe_dump(config_dict(**values)), encoding="utf-8")
    return path


def write_cuts(d: Path, n: int = 4, frames: int = 48, seed: int = 0) -> Path:
    """Songs whose sketch ids follow their latents (id = a quantised mean): learnable structure."""
    rng = np.random.default_rng(seed)
    cuts = []
    with NumpyFilesWriter(d / "storage") as w:
        for i in range(n):
            t = frames + BLOCK * i
            ids = (np.arange(t) // 3 + i) % PITCH
            latent = (np.sin(ids[None, :] * 0.7 + np.arange(LATENT)[:, None]) + 0.05 * rng.standard_normal((LATENT, t))
                      ).astype(np.float32)
            prompt = latent[:, :10].copy()
            cid = f"song{i}"
            rec = Recording(id=cid, sources=[AudioSource(type="file", channels=[0], source="/dev/null")],
                            sampling_rate=48000, num_samples=t * 1920, duration=t / 25)
            sup = SupervisionSegment(id=cid, recording_id=cid, start=0, duration=t / 25, text="",
                                     custom={"phonemes": LYRICS[i % len(LYRICS)]})
            cut = MonoCut(id=cid, start=0, duration=t / 25, channel=0, recording=rec, supervisions=[sup])
            cut = cut.with_custom("latent", w.store_array(f"{cid}_l", latent, frame_shift=0.04, temporal_dim=1))
            cut = cut.with_custom("sketch", w.store_array(f"{cid}_s", ids.astype(np.int64), frame_shift=0.04,
                                                          temporal_dim=0))
            cut = cut.with_custom("prompt_latent", w.store_array(f"{cid}_p", prompt, frame_shift=0.04, temporal_dim=1))
            cuts.append(cut)
    path = d / "cuts.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path
