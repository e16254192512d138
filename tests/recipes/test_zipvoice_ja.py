"""egs/zipvoice_ja/run.sh: options, stage ranges and the corpus stage on a tiny mini corpus."""

import os
import subprocess
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "zipvoice_ja"
TINY = ["--num-speakers", "2", "--sentences-per-speaker", "1"]


def run(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True, env=env)


def test_help_lists_every_option_with_its_default():
    r = run("--help")
    assert r.returncode == 0
    for option in ("--stage", "--stop-stage", "--dataset", "--data-dir", "--corpus-dir", "--train-tsv", "--dev-tsv",
                   "--nj", "--model-config", "--tokenizer-scheme", "--exp-dir", "--num-iters", "--num-epochs",
                   "--max-duration", "--quadratic-duration", "--base-lr", "--world-size", "--finetune-from",
                   "--freeze-fm-decoder", "--freeze-fm-decoder-stacks", "--use-lora", "--use-dora", "--lora-rank",
                   "--lora-alpha", "--lora-dropout", "--avg", "--use-fp16", "--seed", "--num-speakers",
                   "--sentences-per-speaker", "--use-gpu", "--device", "--phone-model-dir", "--lr-hours",
                   "--save-every-n"):
        assert option in r.stdout, option
    assert "mini | moe_speech_plus | custom (mini)" in r.stdout


def test_unknown_option_and_bad_dataset_fail(tmp_path):
    r = run("--no-such-option", "1")
    assert r.returncode != 0 and "invalid option --no-such-option" in r.stderr
    r = run("--dataset", "nope", "--data-dir", tmp_path)
    assert r.returncode == 2 and "--dataset nope is not supported" in r.stderr
    r = run("--dataset", "custom", "--data-dir", tmp_path)
    assert r.returncode == 2 and "needs --train-tsv and --dev-tsv" in r.stderr
    r = run("--stage", "4", "--finetune-from", tmp_path / "nothing", "--data-dir", tmp_path)
    assert r.returncode == 2 and "no model.json there" in r.stderr


def test_corpus_stage_then_noop_rerun(tmp_path):
    data = tmp_path / "data"
    r = run("--stage", "0", "--stop-stage", "0", "--data-dir", data, *TINY)
    assert r.returncode == 0, r.stderr
    assert "Stage 0: corpus (mini)" in r.stdout
    speech = data / "mini" / "speech"
    train = (speech / "train.tsv").read_text(encoding="utf-8").splitlines()
    test = (speech / "test.tsv").read_text(encoding="utf-8").splitlines()
    assert len(train) == 1 and len(test) == 1
    for line in train + test:
        utt_id, text, wav = line.split("\t")
        assert Path(wav).is_file() and text
    assert {t.split("\t")[0].rsplit("_", 1)[0] for t in train}.isdisjoint(
        {t.split("\t")[0].rsplit("_", 1)[0] for t in test}
    )
    stamp = (speech / "train.tsv").stat().st_mtime_ns
    again = run("--stage", "0", "--stop-stage", "0", "--data-dir", data, *TINY)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert (speech / "train.tsv").stat().st_mtime_ns == stamp


def test_stage_range_skips_the_corpus_stage(tmp_path):
    r = run("--stage", "1", "--stop-stage", "1", "--data-dir", tmp_path / "data")
    assert "Stage 0" not in r.stdout and "Stage 1: lhotse manifests" in r.stdout
    assert r.returncode != 0 and "train.tsv" in r.stderr  # no corpus yet: stage 1 says which file is missing
