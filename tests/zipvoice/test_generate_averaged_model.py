"""generate_averaged_model: icefall's epoch/iter averaging, from model_avg or plain weights."""

import subprocess
import sys

import pytest
import torch

from shirabe.train.checkpoint import safe_load

BATCHES_PER_EPOCH = 3


def run(*args):
    return subprocess.run([sys.executable, "-m", "zipvoice.bin.generate_averaged_model", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture
def exp(tmp_path):
    """A fake run: the weights after batch b are w[b]; model_avg is their running mean (period 1)."""
    g = torch.Generator().manual_seed(0)
    w = {b: {"a.weight": torch.randn(3, 2, generator=g), "steps": torch.tensor(b)} for b in range(1, 13)}
    for b in range(1, 13):
        avg = {"a.weight": torch.stack([w[i]["a.weight"] for i in range(1, b + 1)]).double().mean(0),
               "steps": torch.tensor(b)}
        ckpt = {"model": w[b], "model_avg": avg, "batch_idx_train": b, "finetune": {"mode": "lora"}}
        if b % BATCHES_PER_EPOCH == 0:
            torch.save(ckpt, tmp_path / f"epoch-{b // BATCHES_PER_EPOCH}.pt")
        if b % 2 == 0:
            torch.save(ckpt, tmp_path / f"checkpoint-{b}.pt")
    return tmp_path, w


def mean_of(w, batches):
    return torch.stack([w[b]["a.weight"] for b in batches]).mean(0)


def test_epoch_range_from_the_running_average(exp):
    d, w = exp
    r = run("--exp-dir", d, "--epoch", 4, "--avg", 2)
    assert r.returncode == 0, r.stderr
    out = safe_load(d / "epoch-4-avg-2.pt")
    assert out["model"]["a.weight"].dtype == torch.float32
    torch.testing.assert_close(out["model"]["a.weight"], mean_of(w, range(7, 13)), rtol=0, atol=1e-6)
    assert out["finetune"] == {"mode": "lora"}


def test_epoch_range_from_plain_weights(exp):
    d, w = exp
    r = run("--exp-dir", d, "--epoch", 4, "--avg", 2, "--use-averaged-model", "false")
    assert r.returncode == 0, r.stderr
    out = safe_load(d / "epoch-4-avg-2.pt")
    torch.testing.assert_close(out["model"]["a.weight"], mean_of(w, [9, 12]), rtol=0, atol=1e-6)


def test_iter_range(exp):
    d, w = exp
    r = run("--exp-dir", d, "--iter", 10, "--avg", 2)  # checkpoints 10, 8, 6 -> batches 7..10
    assert r.returncode == 0, r.stderr
    out = safe_load(d / "iter-10-avg-2.pt")
    torch.testing.assert_close(out["model"]["a.weight"], mean_of(w, range(7, 11)), rtol=0, atol=1e-6)
    r = run("--exp-dir", d, "--iter", 10, "--avg", 2, "--use-averaged-model", "0", "--output", d / "plain.pt")
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(safe_load(d / "plain.pt")["model"]["a.weight"], mean_of(w, [8, 10]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--epoch", 2, "--avg", 2], "epoch-0.pt does not exist"),
    (["--epoch", 9, "--avg", 1], "epoch-8.pt: no such checkpoint"),
    (["--iter", 4, "--avg", 3], "4 checkpoint-B.pt with B <= 4 needed, found 2"),
    (["--epoch", 2, "--iter", 4], "exactly one of --epoch and --iter"),
])
def test_bad_ranges_fail_in_one_line(exp, args, message):
    r = run("--exp-dir", exp[0], *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
