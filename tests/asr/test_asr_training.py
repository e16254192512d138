"""Training a tiny recognizer on the shared mini speech corpus: the loss falls, a seed fixes the weights,
and the result loads and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shirabe.asr import load_recognizer, score
from shirabe.asr.data import plan_epoch, read_utterance_list
from shirabe.bin.train_phone_recognizer import main as train_main

TINY = ["--conv-channels", "24", "--hidden-size", "24", "--num-layers", "1", "--batch-size", "3",
        "--num-epochs", "8", "--lr", "0.01", "--warmup-epochs", "0", "--tensorboard", "false",
        "--num-threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def corpus(mini_speech, tmp_path_factory) -> Path:
    """The fixture's train split, with its own utterances as dev so validation shows the fit."""
    d = tmp_path_factory.mktemp("asr_corpus")
    train = (mini_speech / "train.tsv").read_text(encoding="utf-8")
    (d / "train.tsv").write_text(train, encoding="utf-8")
    (d / "dev.tsv").write_text(train, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def two_runs(corpus, tmp_path_factory, single_torch_thread) -> tuple[Path, Path]:
    exps = []
    for name in ("a", "b"):
        exp = tmp_path_factory.mktemp(f"asr_exp_{name}")
        assert train_main(["--corpus-dir", str(corpus), "--exp-dir", str(exp), "--seed", "7", *TINY]) == 0
        exps.append(exp)
    return exps[0], exps[1]


def test_training_lowers_the_loss(two_runs):
    summary = json.loads((two_runs[0] / "train-summary.json").read_text())
    # 6 utterances + round(0.3 * 6) = 2 non-speech clips, in batches of 3: 3 batches per epoch
    assert summary["train_utterances"] == 6 and summary["nonspeech_clips"] == 2
    assert summary["updates"] == 8 * 3
    assert summary["dev_loss"] < 0.8 * summary["initial_dev_loss"]


def test_same_seed_same_weights(two_runs):
    a = torch.load(two_runs[0] / "model.pt", weights_only=True)["model"]
    b = torch.load(two_runs[1] / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (two_runs[0] / "phones.txt").read_bytes() == (two_runs[1] / "phones.txt").read_bytes()
    assert (two_runs[0] / "fbank" / "train.pt").is_file()  # features are cached


def test_batches_depend_on_seed_and_epoch():
    lengths = list(range(40))
    first = plan_epoch(lengths, 4, seed=1, epoch=0)
    assert sorted(i for b in first for i in b) == lengths
    assert plan_epoch(lengths, 4, seed=1, epoch=0) == first
    assert plan_epoch(lengths, 4, seed=1, epoch=1) != first
    assert plan_epoch(lengths, 4, seed=2, epoch=0) != first


def test_trained_model_scores_files_and_arrays(two_runs, mini_speech):
    recognizer = load_recognizer(two_runs[0])
    utts = read_utterance_list(mini_speech / "test.tsv")[:1]
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(16000 * 2)).astype(np.float32)
    details = score(recognizer, [str(utts[0].wav), (noise, 16000)], [utts[0].text, utts[0].text], ids=["a", "n"])
    assert [i.item_id for i in details.items] == ["a", "n"]
    ref_len = details.items[0].counts.ref_len
    assert ref_len > 10 and details.counts.ref_len == 2 * ref_len
    for item in details.items:
        c = item.counts
        assert c.errors == c.substitutions + c.deletions + c.insertions
        assert c.ref_len - c.deletions == len(item.hyp) - c.insertions  # matched + substituted phones


def test_score_cli_json(two_runs, mini_speech, tmp_path):
    from shirabe.bin.score_phones import main as score_main

    out = tmp_path / "per.json"
    assert score_main(["--model-dir", str(two_runs[0]), "--tsv", str(mini_speech / "test.tsv"), "--format", "json",
                       "--output", str(out), "--nonspeech-baseline", "true", "--device", "cpu"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    test_ids = [line.split("\t")[0] for line in (mini_speech / "test.tsv").read_text(encoding="utf-8").splitlines()]
    assert [i["id"] for i in result["items"]] == test_ids
    assert result["overall"]["ref_phones"] == sum(i["ref_phones"] for i in result["items"])
    assert result["overall"]["items"] == len(test_ids)
    for name in ("white_noise", "clicks"):
        assert result[name]["ref_phones"] == result["overall"]["ref_phones"]
