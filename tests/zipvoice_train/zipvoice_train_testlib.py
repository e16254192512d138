"""Helpers for the ZipVoice training tests: a tiny synthetic corpus (lhotse cuts with Vocos features
and tokens) and the command line of a small CPU training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 24000
REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TOKENS = FIXTURES / "zipvoice_tiny" / "tokens.txt"
VOWELS = ["a", "i", "u", "e", "o"]
CONSONANTS = ["k", "s", "t", "n", "m"]

TINY_CONFIG = {
    "model": {
        "fm_decoder_downsampling_factor": [1, 2, 4, 2, 1],
        "fm_decoder_num_layers": [1, 1, 1, 1, 1],
        "fm_decoder_cnn_module_kernel": [7, 5, 3, 5, 7],
        "fm_decoder_feedforward_dim": 96,
        "fm_decoder_num_heads": 2,
        "fm_decoder_dim": 64,
        "text_encoder_num_layers": 1,
        "text_encoder_feedforward_dim": 64,
        "text_encoder_cnn_module_kernel": 5,
        "text_encoder_num_heads": 2,
        "text_encoder_dim": 32,
        "query_head_dim": 16,
        "value_head_dim": 8,
        "pos_head_dim": 4,
        "pos_dim": 16,
        "time_embed_dim": 32,
        "text_embed_dim": 32,
        "feat_dim": 100,
    },
    "feature": {"sampling_rate": 24000, "type": "vocos"},
}


def syllable_wave(consonant: str, vowel: str, f0: float, seconds: float, rng) -> np.ndarray:
    """A short noise burst (the consonant) then a harmonic vowel whose formant depends on the vowel."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    formant = 300.0 + 250.0 * VOWELS.index(vowel)
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k * np.exp(-((f0 * k - formant) / 400.0) ** 2) for k in range(1, 12))
    wave = 0.3 * harmonics * np.hanning(n)
    burst = int(0.02 * SR) * (1 + CONSONANTS.index(consonant) % 3)
    wave[:burst] += 0.05 * rng.standard_normal(burst)
    return wave


def make_corpus(out_dir: Path, num_train: int = 16, num_dev: int = 4, seed: int = 0) -> dict[str, Path]:
    """Write wavs, features and ``train.jsonl.gz`` / ``dev.jsonl.gz`` (plus ``tiny.json``) under ``out_dir``."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.features.io import LilcomChunkyWriter

    from shirabe.audio.fbank import VocosFbank

    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    for split, count in (("train", num_train), ("dev", num_dev)):
        recordings, supervisions = [], []
        for i in range(count):
            n_syl = int(rng.integers(3, 7))
            f0 = float(rng.uniform(110, 220))
            tokens, pieces = [], []
            for _ in range(n_syl):
                c, v = str(rng.choice(CONSONANTS)), str(rng.choice(VOWELS))
                tokens += [c, v]
                pieces.append(syllable_wave(c, v, f0, 0.16, rng))
            wav = np.concatenate(pieces).astype(np.float32)
            utt = f"{split}spk{i % 2}_{i:04d}"
            path = out_dir / "wav" / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wav, SR)
            rec = Recording.from_file(path, recording_id=utt)
            recordings.append(rec)
            supervisions.append(
                SupervisionSegment(id=utt, recording_id=utt, start=0.0, duration=rec.duration, channel=0,
                                   text="".join(tokens), speaker=utt.split("_")[0], custom={"tokens": tokens})
            )
        cuts = CutSet.from_manifests(
            recordings=RecordingSet.from_recordings(recordings), supervisions=SupervisionSet.from_segments(supervisions)
        ).trim_to_supervisions(keep_overlapping=False).to_eager()
        cuts = cuts.compute_and_store_features(
            VocosFbank(), storage_path=out_dir / f"feats_{split}", num_jobs=1, storage_type=LilcomChunkyWriter
        )
        paths[split] = out_dir / f"{split}.jsonl.gz"
        cuts.to_file(paths[split])
    paths["config"] = out_dir / "tiny.json"
    paths["config"].write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    paths["tokens"] = TOKENS
    return paths


def train_args(corpus: dict[str, Path], exp_dir: Path, *extra) -> list[str]:
    """Command line of a small deterministic CPU run (extra options override the defaults here)."""
    return [
        sys.executable, "-m", "zipvoice.bin.train_zipvoice",
        "--exp-dir", str(exp_dir),
        "--model-config", str(corpus["config"]),
        "--token-file", str(corpus["tokens"]),
        "--train-manifest", str(corpus["train"]),
        "--dev-manifest", str(corpus["dev"]),
        "--max-duration", "3", "--min-len", "0", "--num-workers", "0",
        "--use-fp16", "0", "--tensorboard", "0", "--log-interval", "1",
        *map(str, extra),
    ]


def train_env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


def run_train(corpus, exp_dir, *extra, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(train_args(corpus, exp_dir, *extra), cwd=REPO, env=train_env(), capture_output=True,
                          text=True, timeout=timeout)
