"""egs/songbloom_ja/run.sh: every stage on a small mini corpus, then a re-run that keeps everything."""

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from lhotse import CutSet

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "songbloom_ja"


def run(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True, env=env,
                          timeout=900)


def test_help_and_bad_options(tmp_path):
    r = run("--help")
    assert r.returncode == 0
    for option in ("--dataset", "--corpus-dir", "--num-songs", "--prompt-sec", "--clean-japanese", "--vae-config",
                   "--vae-ckpt", "--muq-dir", "--codebook", "--muq-layer", "--codebook-size", "--nj", "--use-gpu",
                   "--device"):
        assert option in r.stdout, option
    r = run("--dataset", "jacappella", "--data-dir", tmp_path)
    assert r.returncode == 2 and "needs --corpus-dir" in r.stderr
    r = run("--vae-config", tmp_path / "vae.json", "--data-dir", tmp_path)
    assert r.returncode == 2 and "give both --vae-config and --vae-ckpt" in r.stderr


@pytest.mark.slow  # ~2.5 min: renders 4 songs and runs every stage at a tiny size
def test_all_stages_on_four_songs(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ["--data-dir", data, "--exp-dir", exp, "--num-songs", 4, "--codebook-size", 16, "--vq-steps", 50,
            "--nj", 2, "--use-gpu", "false", "--num-iters", 8, "--max-duration", 4, "--results", tmp_path / "R.md"]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "kept 4 of 4 songs (train 2, dev 1, test 1)" in r.stdout
    prepared = data / "prepared"
    with gzip.open(prepared / "songs_supervisions_train.jsonl.gz", "rt") as f:
        sups = [json.loads(line) for line in f]
    assert all(s["custom"]["phonemes"].startswith("[verse] ") for s in sups)
    codebook_report = json.loads((exp / "vq" / "codebook.json").read_text())
    assert codebook_report["codebook_size"] == 16 and codebook_report["codes_used"] >= 8
    latent_dim = json.loads((exp / "codecs" / "vae.json").read_text())["model"]["latent_dim"]
    for split, n in (("train", 2), ("dev", 1), ("test", 1)):
        cuts = CutSet.from_file(data / "features" / f"cuts_{split}.jsonl.gz")
        assert len(cuts) == n
        for cut in cuts:
            latent, sketch, prompt = (cut.load_custom(k) for k in ("latent", "sketch", "prompt_latent"))
            assert latent.shape == (latent_dim, cut.recording.num_samples // 1920)  # 25 Hz
            assert sketch.shape == (latent.shape[1],) and 0 <= sketch.min() and sketch.max() < 16
            assert prompt.shape == (latent_dim, 250)  # the 10 s prompt
            assert cut.supervisions[0].custom["phonemes"]
    assert not list((data / "features").glob("cuts_train.*.jsonl.gz"))  # parts joined and removed
    # training, averaging, generation, evaluation
    assert (exp / "songbloom" / "model-avg2.pt").is_file() and (exp / "songbloom" / "songbloom.yaml").is_file()
    generated = [json.loads(line) for line in
                 (exp / "generate" / "songbloom-avg2" / "generated.jsonl").read_text().splitlines()]
    assert len(generated) == 1 and generated[0]["seconds"] <= 4.0 + 0.64 + 1e-6  # upstream stops after the patch
    # that passes the budget (16 frames, 0.64 s)
    results = (tmp_path / "R.md").read_text()
    assert "<!-- begin: songbloom-evaluate:songbloom-avg2 -->" in results and "ground truth (ceiling)" in results
    metrics = json.loads((exp / "report" / "metrics.json").read_text())
    assert "sketch_accuracy" in json.dumps(metrics)
    assert (exp / "report" / "index.html").is_file()
    # a second run keeps every product
    stamp = (data / "features" / "cuts_train.jsonl.gz").stat().st_mtime_ns
    r = run(*args, "--stage", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "codebook.pt exists; kept" in r.stdout and "cuts_train.jsonl.gz exists; kept" in r.stdout
    assert "model.pt exists; nothing to do" in (exp / "songbloom" / "log" / "train.log").read_text()
    assert (data / "features" / "cuts_train.jsonl.gz").stat().st_mtime_ns == stamp
