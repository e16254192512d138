"""egs/seedsvc/run.sh end to end on a very small corpus and model (slow: about two minutes)."""

import os
import subprocess
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "seedsvc"
TINY_CONFIG = """
cfm:
  estimator: {hidden_dim: 32, depth: 2, num_heads: 2, in_channels: 80, content_dim: 32, style_encoder_dim: 192,
              block_size: 512, class_dropout_prob: 0.1, time_as_token: true, style_as_token: true,
              uvit_skip_connection: false}
cfm_length_regulator: {channels: 32, is_discrete: false, in_channels: null, sampling_ratios: [1, 1], codebook_size: 16}
f0: {enabled: true, n_f0_bins: 256, embedding_dim: 768, band: 2, num_heads: 2}
training:
  segment_frames: 64
  batch_size: 2
  phase0: {lr: 1.0e-3, num_steps: 2, warmup: 1}
  phase1: {lr: 1.0e-3, num_steps: 2, warmup: 1}
inference: {max_context_frames: 300, max_prompt_frames: 100, crossfade_frames: 8, diffusion_steps: 1,
            cfg_rate: [0.7, 0.7]}
"""


def run(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    return subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True, env=env)


def test_help_and_bad_dataset():
    r = run("--help")
    assert r.returncode == 0
    for option in ("--stage", "--stop-stage", "--num-songs", "--singers", "--pairs", "--model-config", "--v2-checkpoint",
                   "--v1-f0-checkpoint", "--content-extractor", "--style-encoder", "--f0-method", "--vocoder-path",
                   "--phase2", "--compare-no-f0", "--no-f0", "--results"):
        assert option in r.stdout, option
    r = run("--dataset", "nope")
    assert r.returncode == 2 and "--dataset nope is not supported" in r.stderr


@pytest.mark.slow
def test_all_stages_on_two_songs(tmp_path):
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY_CONFIG)
    results = tmp_path / "RESULTS.md"
    args = ["--data-dir", tmp_path / "data", "--exp-dir", tmp_path / "exp", "--num-songs", 2, "--num-train-songs", 1,
            "--singers", "hts_mei,hts_mei_low", "--pairs", "hts_mei:hts_mei_low:-12", "--model-config", conf,
            "--content-steps", 2, "--style-encoder", "melstats", "--results", results]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = results.read_text()
    assert "| f0 | 2 |" in text and "| no_f0 | 2 |" in text and "shift -12 st" in text
    for sys in ("f0", "no_f0"):
        assert len(list((tmp_path / "exp" / "convert" / sys).glob("*.wav"))) == 2
    model = tmp_path / "exp" / "f0_p1" / "model.pth"
    stamp = model.stat().st_mtime_ns
    again = run(*args, "--stage", 3, "--stop-stage", 3)
    assert again.returncode == 0
    assert model.stat().st_mtime_ns == stamp
    assert "nothing to do" in (tmp_path / "exp" / "f0_p1" / "log" / "train.log").read_text()
