"""python -m zipvoice.bin.train_zipvoice end to end on a tiny corpus (CPU)."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import time

import torch
from zipvoice_train_testlib import REPO, run_train, train_args, train_env

TINY_RUN = ("--base-lr", "0.02", "--seed", "3")


def read_token_table(path) -> dict[str, int]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        token, idx = line.rsplit("\t", 1)
        table[token] = int(idx)
    return table


def dev_loss(model, corpus) -> float:
    """Flow-matching loss on the dev cuts, computed here from the manifest (fixed noise, t = arange(B)/B)."""
    from lhotse import load_manifest

    table = read_token_table(corpus["tokens"])
    cuts = list(load_manifest(corpus["dev"]))
    feats = [torch.from_numpy(c.load_features()) * 0.1 for c in cuts]
    lens = torch.tensor([f.shape[0] for f in feats])
    features = torch.zeros(len(feats), int(lens.max()), 100)
    for i, f in enumerate(feats):
        features[i, : f.shape[0]] = f
    tokens = [[table[t] for t in c.supervisions[0].custom["tokens"]] for c in cuts]
    g = torch.Generator().manual_seed(123)
    noise = torch.randn(features.shape, generator=g)
    t = (torch.arange(len(cuts)) / len(cuts)).view(-1, 1, 1)
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        return float(model(tokens, features, lens, noise, t, condition_drop_ratio=0.0))


def test_training_lowers_the_dev_loss(corpus, tmp_path):
    from zipvoice.models import build_model, load_model, read_config
    from zipvoice.tokenizer import vocab_info

    vocab_size, pad_id = vocab_info(corpus["tokens"])
    torch.manual_seed(0)
    init = build_model(read_config(corpus["config"])["model"], vocab_size, pad_id)
    torch.save({"model": init.state_dict()}, tmp_path / "init.pt")
    exp = tmp_path / "exp"
    r = run_train(corpus, exp, *TINY_RUN, "--checkpoint", tmp_path / "init.pt", "--num-iters", 15,
                  "--save-every-n", 5, "--tensorboard", 1)
    assert r.returncode == 0, r.stderr[-3000:]
    trained = load_model(exp, "checkpoint-15.pt")  # model.json and tokens.txt were written beside it
    before, after = dev_loss(init, corpus), dev_loss(trained, corpus)
    assert math.isfinite(after) and after < 0.9 * before, (before, after)
    log = r.stderr
    assert "parameters: 498142 trainable of 498142" in log
    assert (exp / "tensorboard").is_dir() and any((exp / "tensorboard").iterdir())
    assert {f"checkpoint-{b}.pt" for b in (5, 10, 15)} <= {p.name for p in exp.iterdir()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _final_states(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(corpus, tmp_path):
    common = (*TINY_RUN, "--save-every-n", 4, "--average-period", 2)
    straight = tmp_path / "straight"
    r = run_train(corpus, straight, *common, "--num-iters", 12)
    assert r.returncode == 0, r.stderr[-3000:]

    killed = tmp_path / "killed"
    # a longer run, so the kill surely lands in the middle of it
    proc = subprocess.Popen(train_args(corpus, killed, *common, "--num-iters", 200), cwd=REPO, env=train_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (killed / "checkpoint-4.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "training ended before checkpoint-4.pt"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (killed / "checkpoint-200.pt").exists()

    r = run_train(corpus, killed, *common, "--num-iters", 12, "--start-batch", 4)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from" in r.stderr
    a, b = _final_states(straight / "checkpoint-12.pt"), _final_states(killed / "checkpoint-12.pt")
    for key in ("model", "model_avg"):
        assert a[key].keys() == b[key].keys()
        worst = max(float((a[key][k].double() - b[key][k].double()).abs().max()) for k in a[key])
        assert worst <= 1e-6, (key, worst)
    # the optimizer, scheduler and sampler continued exactly as well
    assert a["scheduler"] == b["scheduler"] and a["scheduler"]["batch"] == 12
    assert a["sampler"] == b["sampler"]
    assert a["optimizer"]["clip_state"] == b["optimizer"]["clip_state"]
    for idx, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            other = b["optimizer"]["state"][idx][name]
            if torch.is_tensor(value):
                assert torch.allclose(value.double(), other.double(), rtol=0, atol=1e-6), (idx, name)
            else:
                assert value == other, (idx, name)
    assert a["batch_idx_train"] == b["batch_idx_train"] == 12 and a["cur_epoch"] == b["cur_epoch"]


def test_two_process_ddp_on_cpu(corpus, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    exp = tmp_path / "ddp"
    r = run_train(corpus, exp, *TINY_RUN, "--world-size", 2, "--master-port", free_port(),
                  "--num-iters", 16, "--save-every-n", 8, "--max-duration", 2, "--tensorboard", 1)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (exp / "checkpoint-8.pt").is_file() and (exp / "checkpoint-16.pt").is_file()
    assert len(list((exp / "log").glob("log-train-*-[01]"))) == 2
    events = EventAccumulator(str(exp / "tensorboard"))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert len(losses) == 16 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4, losses
    ckpt = torch.load(exp / "checkpoint-16.pt", weights_only=True)
    assert len(ckpt["rng_states"]) == 2 and ckpt["sampler"]["world_size"] == 2


def test_bad_manifest_path_is_one_line_and_exit_2(corpus, tmp_path):
    missing = tmp_path / "nope" / "cuts_train.jsonl.gz"
    r = subprocess.run(train_args(corpus, tmp_path / "exp", "--num-iters", 1, "--train-manifest", missing),
                       cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "no such training manifest" in lines[0], r.stderr
