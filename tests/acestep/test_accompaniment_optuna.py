"""acestep.bin.optuna_search: trials train and report validation losses to the pruner, a crashing trial is
recorded as FAIL while the study goes on, the study resumes, and the best config is a valid training config."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
from test_accompaniment_train import LORA, make_pair_cache

from acestep.accompaniment import search
from acestep.accompaniment.search import TrialReporter
from acestep.bin import optuna_search
from acestep.config import load_config

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_pair_cache(tmp_path_factory.getbasetemp() / "accompaniment_pairs")


def test_a_crashing_trial_fails_and_the_study_goes_on(setup, tmp_path, monkeypatch):
    ckpt, cache = setup
    base = tmp_path / "base.json"
    base.write_text(json.dumps({
        "lora": LORA, "accompaniment": {"mode": "image2image", "reference_strength": 0.5},
        "dataset_path": str(cache), "learning_rate": 1e-3, "max_steps": 6, "warmup_steps": 1,
        "checkpoint_every_n_steps": 6, "ssl_coeff": 0.0, "ssl_depths": [1], "logger_dir": str(tmp_path / "exp")}))
    space = tmp_path / "search.json"
    space.write_text(json.dumps({
        "n_trials": 3, "pruner_type": "median", "pruner_n_startup_trials": 10, "pruner_n_warmup_steps": 0,
        "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 3e-3},
                         "reference_strength": {"type": "float", "low": 0.2, "high": 0.8},
                         "lora_rank": {"type": "categorical", "choices": [2, 4]}}}))
    original = search.train_trial

    def sometimes_crash(trial, setup_):
        if trial.number == 1:
            raise ValueError("forced failure\nsecond line")
        return original(trial, setup_)

    monkeypatch.setattr(search, "train_trial", sometimes_crash)
    out, storage = tmp_path / "out", f"sqlite:///{tmp_path / 'study.db'}"
    args = ["--config", str(base), "--optuna-config", str(space), "--checkpoint-dir", str(ckpt), "--storage", storage,
            "--study-name", "s", "--output-dir", str(out), "--valid-interval", "2", "--device", "cpu",
            "--tensorboard", "false", "--sampler-seed", "0"]
    assert optuna_search.main(args) == 0
    study = optuna.load_study(study_name="s", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["error"] == "ValueError: forced failure"
    # every tracked validation (steps 2, 4, 6; not the untrained one) went to the trial
    assert sorted(study.trials[0].intermediate_values) == [2, 4, 6]
    assert study.trials[0].value == study.trials[0].intermediate_values[6]
    rows = list(csv.DictReader((out / "trials.tsv").open(), delimiter="\t"))
    assert [r["state"] for r in rows] == states and rows[1]["error"] == "ValueError: forced failure"
    best = load_config(out / "best_config.json", "training", num_layers=2)
    winner = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert best.learning_rate == winner.params["learning_rate"] and best.lora.r == winner.params["lora_rank"]
    assert best.accompaniment.reference_strength == winner.params["reference_strength"]
    assert best.max_steps == 6 and best.dataset_path == str(cache)
    assert (out / f"trial-{winner.number:04d}" / "bundle" / "pytorch_lora_weights.safetensors").is_file()
    # a second run resumes the study and adds its trials
    assert optuna_search.main([*args, "--n-trials", "1", "--sampler-seed", "1"]) == 0
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 4


def test_worse_validation_losses_are_pruned():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    reporter = TrialReporter(good)
    for step, loss in ((2, 1.0), (4, 0.8), (6, 0.7)):
        reporter(loss, step)
    study.tell(good, 0.7)
    assert reporter.reports == [(2, 1.0), (4, 0.8), (6, 0.7)]
    worse = study.ask()
    with pytest.raises(optuna.TrialPruned, match="step 2"):
        TrialReporter(worse)(3.0, 2)
    assert worse.should_prune()
    better = study.ask()
    TrialReporter(better)(0.5, 2)  # below the median: goes on


class FakeTrial:
    def __init__(self, prune_from: int):
        self.prune_from, self.reported = prune_from, []

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return len(self.reported) >= self.prune_from


def test_reporter_reports_then_asks_the_pruner():
    trial = FakeTrial(prune_from=2)
    reporter = TrialReporter(trial)
    reporter(0.9, 10)
    with pytest.raises(optuna.TrialPruned):
        reporter(0.8, 20)
    assert trial.reported == [(10, 0.9), (20, 0.8)]
    with pytest.raises(RuntimeError, match="nan"):
        reporter(float("nan"), 30)
