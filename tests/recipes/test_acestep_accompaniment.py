"""egs/acestep_accompaniment/run.sh: options, then every stage on two mini pieces with the stand-in checkpoint."""

import json
import os
import subprocess
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "acestep_accompaniment"


def run(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True, env=env,
                          timeout=900)


def test_help_and_bad_options(tmp_path):
    r = run("--help")
    assert r.returncode == 0
    for option in ("--corpus-dir", "--checkpoint-dir", "--output-type", "--loudness", "--i2i-config",
                   "--controlnet-config", "--optuna", "--strengths", "--use-gpu", "--device"):
        assert option in r.stdout, option
    r = run("--output-type", "stems", "--data-dir", tmp_path)
    assert r.returncode == 2 and "expected accompaniment or mix" in r.stderr


@pytest.mark.slow  # ~1.5 min: renders two pieces, trains both modes 20 steps, generates and scores
def test_all_stages_on_two_pieces(tmp_path):
    data, exp, results = tmp_path / "data", tmp_path / "exp", tmp_path / "R.md"
    args = ["--data-dir", data, "--exp-dir", exp, "--num-songs", 2, "--use-gpu", "false", "--infer-step", 4,
            "--strengths", "0.5", "--num-iters", 20, "--results", results]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 pairs prepared, 0 already done, 0 rejected" in r.stdout  # 1 train + 1 test
    for mode in ("image2image", "controlnet"):
        bundle = exp / mode / "bundle"
        config = json.loads((bundle / "accompaniment_config.json").read_text())
        assert config["accompaniment"]["mode"] == mode
        assert (bundle / "pytorch_lora_weights.safetensors").is_file()
    assert (exp / "controlnet" / "bundle" / "control_encoder.safetensors").is_file()
    systems = sorted(p.name for p in (exp / "generate").iterdir())
    assert systems == ["baseline_a2a", "controlnet", "image2image_s0.5"]
    for system in systems:
        assert len(list((exp / "generate" / system).glob("*_accompaniment.flac"))) == 1
        assert len(list((exp / "generate" / system).glob("*_mix.flac"))) == 1
    table = [ln for ln in results.read_text().splitlines() if ln.startswith("| ")]
    assert {ln.split("|")[1].strip() for ln in table[1:]} == {*systems, "reference"}
    page = (exp / "compare" / "index.html").read_text()
    assert page.count("<audio") == 4 and "image2image_s0.5" not in page.split("</h1>")[0]  # the vocal + 3 systems
    assert (exp / "spectrogram.png").stat().st_size > 10_000
    # running a finished training stage again keeps its bundle
    stamp = (exp / "image2image" / "bundle" / "pytorch_lora_weights.safetensors").stat().st_mtime_ns
    r = run(*args, "--stage", 3, "--stop-stage", 3)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nothing to do" in (exp / "image2image" / "log" / "train.log").read_text()
    assert (exp / "image2image" / "bundle" / "pytorch_lora_weights.safetensors").stat().st_mtime_ns == stamp
