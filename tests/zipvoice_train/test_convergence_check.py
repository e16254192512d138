"""The convergence check of bench/zipvoice_convergence.py can fail: a deliberately broken trainer
(loss on the prompt frames instead of the hidden ones, or features left unscaled) does not pass it,
while the real trainer does, on the same tiny corpus, model and number of updates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from shirabe.flow import linear_path, linear_velocity_target
from zipvoice.bin import train_zipvoice
from zipvoice.models.text_condition import condition_time_mask
from zipvoice.models.zipvoice import ZipVoice

REPO = Path(__file__).resolve().parents[2]
UPDATES = 400
RATIO = 0.2  # the dev loss must fall to 20 % of the untrained model's within UPDATES updates


def load_bench():
    spec = importlib.util.spec_from_file_location("zipvoice_convergence", REPO / "bench" / "zipvoice_convergence.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def run_check(corpus, exp_dir: Path) -> tuple[int, list[dict]]:
    bench = load_bench()
    status = bench.main([
        "--data-dir", str(exp_dir), "--train-manifest", str(corpus["train"]), "--dev-manifest", str(corpus["dev"]),
        "--token-file", str(corpus["tokens"]), "--model-config", str(corpus["config"]), "--exp-dir", str(exp_dir),
        "--num-iters", str(UPDATES), "--eval-every", str(UPDATES), "--num-eval", "0", "--max-duration", "3",
        "--lr-hours", "1", "--device", "cpu", "--train-args", "--min-len 0 --log-interval 100",
        "--check-dev-loss-ratio", str(RATIO),
    ])
    points = [json.loads(line) for line in (exp_dir / "convergence.jsonl").read_text().splitlines()]
    return status, points


def prompt_frame_loss(self, tokens, features, features_lens, noise, t, condition_drop_ratio=0.0):
    """The classic masking bug: the loss is taken on the frames the model is shown, not the hidden ones."""
    text_condition, padding_mask = self.forward_text_train(tokens, features_lens)
    hidden = condition_time_mask(features_lens, (0.7, 1.0), max_len=features.size(1))
    speech_condition = torch.where(hidden.unsqueeze(-1), torch.zeros_like(features), features)
    vt = self.forward_fm_decoder(t=t, xt=linear_path(noise, features, t), text_condition=text_condition,
                                 speech_condition=speech_condition, padding_mask=padding_mask)
    shown = ~hidden & ~padding_mask
    return torch.mean((vt[shown] - linear_velocity_target(noise, features)[shown]) ** 2)


@pytest.fixture(scope="module")
def healthy(corpus, tmp_path_factory):
    return run_check(corpus, tmp_path_factory.mktemp("healthy"))


def test_the_real_trainer_passes(healthy):
    status, points = healthy
    assert [p["batch"] for p in points] == [0, UPDATES]
    assert status == 0
    assert points[1]["dev_loss"] <= RATIO * points[0]["dev_loss"]


def test_loss_on_the_prompt_frames_fails_the_check(corpus, tmp_path, monkeypatch, healthy):
    monkeypatch.setattr(ZipVoice, "forward", prompt_frame_loss)
    status, points = run_check(corpus, tmp_path)
    assert status == 1
    assert points[0]["dev_loss"] == pytest.approx(healthy[1][0]["dev_loss"])  # same untrained model
    assert points[1]["dev_loss"] > RATIO * points[0]["dev_loss"]


def test_unscaled_features_fail_the_check(corpus, tmp_path, monkeypatch, healthy):
    real = train_zipvoice.compute_loss

    def unscaled(*a, feat_scale, **kw):
        return real(*a, feat_scale=1.0, **kw)

    monkeypatch.setattr(train_zipvoice, "compute_loss", unscaled)
    status, points = run_check(corpus, tmp_path)
    assert status == 1
    assert points[1]["dev_loss"] > RATIO * points[0]["dev_loss"]
