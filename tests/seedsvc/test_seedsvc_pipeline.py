"""Features → content model → training phases → conversion, on a few synthetic 'singers'.

Checks the training phases (phase 1 leaves every frozen tensor unchanged, resume is
exact) and the conversion CLI's handling of bad input.
"""

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from seedsvc_testlib import V1_F0

from shirabe.cli import InputError

SR = 22050
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
  save_every: 2
  log_every: 1
  phase0: {lr: 1.0e-3, num_steps: 3, warmup: 1}
  phase1: {lr: 1.0e-3, num_steps: 4, warmup: 1}
  phase2: {lr: 1.0e-3, num_steps: 2, warmup: 1, dit_lr_scale: 0.5}
inference: {max_context_frames: 200, max_prompt_frames: 60, crossfade_frames: 8, diffusion_steps: 2,
            cfg_rate: [0.7, 0.7]}
"""


def sing(path: Path, f0_hz: float, bright: float, seconds: float = 1.6):
    """A vowel-like harmonic tone with a rising glide; F0 track at 100 frames/s."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = f0_hz * 2 ** (t / seconds / 6)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum((bright**k) * np.sin(k * phase) for k in range(1, 12)) * 0.1
    wav[: SR // 10] = 0.0
    sf.write(path.with_suffix(".wav"), wav.astype(np.float32), SR)
    frames = np.arange(int(np.ceil(seconds * 100))) / 100
    track = f0_hz * 2 ** (frames / seconds / 6)
    track[frames < 0.1] = 0.0
    np.save(path.with_suffix(".f0.npy"), track.astype(np.float32))
    path.with_suffix(".phones.tsv").write_text(f"0.1\t0.5\ta\n0.5\t{seconds}\ti\n")


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def run(module, *args):
    """Call ``module.main(args)`` in this process; log lines and one-line errors land in ``stderr``."""
    mod = importlib.import_module(module)
    records = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda rec: records.append(rec.getMessage())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    import shirabe.train.process

    # the binaries' logging set-up would replace the handler above
    saved = [(m, name, getattr(m, name)) for m in (mod, shirabe.train.process)
             for name in ("setup_logging", "setup_rank_logging") if hasattr(m, name)]
    for m, name, _ in saved:
        setattr(m, name, lambda *a, **k: None)
    try:
        code = mod.main([str(a) for a in args])
    except InputError as e:
        records.append(f"error: {e}")
        code = 2
    finally:
        for m, name, fn in saved:
            setattr(m, name, fn)
        root.removeHandler(handler)
        root.setLevel(old_level)
    return Result(int(code or 0), "\n".join(records))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("svc")
    rows = ["utt_id\tspeaker\twav\tf0\tphones"]
    for i, (f0, bright) in enumerate([(220.0, 0.5), (330.0, 0.8), (150.0, 0.3)]):
        sing(d / f"s{i}", f0, bright)
        rows.append(f"s{i}\tspk{i}\ts{i}.wav\ts{i}.f0.npy\ts{i}.phones.tsv")
    (d / "list.tsv").write_text("\n".join(rows) + "\n")
    (d / "phones.txt").write_text("sil 0\na 1\ni 2\n")
    (d / "conf.yaml").write_text(TINY_CONFIG)
    steps = [
        ("seedsvc.bin.compute_features", "--input", d / "list.tsv", "--output-dir", d / "feats", "--subset", "train",
         "--phone-table", d / "phones.txt", "--style-encoder", "melstats"),
        ("seedsvc.bin.train_content", "--cuts", d / "feats/cuts_train.jsonl.gz", "--phone-table", d / "phones.txt",
         "--output", d / "content.pt", "--num-iters", 3, "--segment-frames", 64, "--channels", 16, "--num-layers", 1),
        ("seedsvc.bin.compute_content", "--cuts", d / "feats/cuts_train.jsonl.gz", "--output", d / "feats/cuts.jsonl.gz",
         "--content-checkpoint", d / "content.pt"),
        ("seedsvc.bin.train", "--config", d / "conf.yaml", "--phase", 0, "--cuts", d / "feats/cuts.jsonl.gz",
         "--exp-dir", d / "p0"),
        ("seedsvc.bin.train", "--config", d / "conf.yaml", "--phase", 1, "--cuts", d / "feats/cuts.jsonl.gz",
         "--exp-dir", d / "p1", "--checkpoint", d / "p0/model.pth", "--v1-f0-checkpoint",
         V1_F0 / "v1_f0_embedding_module_prefix.pth"),
    ]
    os.environ["TQDM_DISABLE"] = "1"
    for step in steps:
        r = run(*step)
        assert r.returncode == 0, f"{step[0]} failed:\n{r.stderr[-3000:]}"
    (d / "p1_log.txt").write_text(r.stderr)
    return d


def net(path):
    return torch.load(path, weights_only=True)["net"]


def test_phase1_trains_only_f0_modules(pipeline):
    before, after = net(pipeline / "p0/model.pth"), net(pipeline / "p1/model.pth")
    for part in ("cfm", "length_regulator"):
        for k, v in before[part].items():
            assert torch.equal(v, after[part][k]), f"frozen {part}.{k} changed"
    new = {k: v for k, v in after["cfm"].items() if k not in before["cfm"]}
    assert new and all(k.startswith(("estimator.f0_encoder.", "estimator.f0_cross_attention.")) for k in new)
    v1 = torch.load(V1_F0 / "v1_f0_embedding.pth", weights_only=True)["net"]["length_regulator"]
    assert torch.equal(new["estimator.f0_encoder.embedding.weight"], v1["f0_embedding.weight"])
    gates = [v for k, v in new.items() if k.endswith(".gate")]
    assert gates and all(g.abs().max() > 0 for g in gates)
    log = pipeline.joinpath("p1_log.txt").read_text()
    assert "trainable parameters" in log and "frozen; the optimizer gets" in log


def test_phase1_resume_is_exact(pipeline, tmp_path):
    # the full run kept checkpoint-2.pt (and the last, checkpoint-4.pt); resuming from
    # checkpoint-2.pt must give the same final weights
    ckpts = sorted((pipeline / "p1").glob("checkpoint-*.pt"))
    assert [c.name for c in ckpts] == ["checkpoint-2.pt", "checkpoint-4.pt"]
    resumed = tmp_path / "p1"
    resumed.mkdir()
    (resumed / "checkpoint-2.pt").write_bytes(ckpts[0].read_bytes())
    r = run("seedsvc.bin.train", "--config", pipeline / "conf.yaml", "--phase", 1, "--cuts",
            pipeline / "feats/cuts.jsonl.gz", "--exp-dir", resumed, "--checkpoint", pipeline / "p0/model.pth",
            "--v1-f0-checkpoint", V1_F0 / "v1_f0_embedding.pth")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in r.stderr
    a, b = net(pipeline / "p1/model.pth"), net(resumed / "model.pth")
    for k in a["cfm"]:
        assert torch.equal(a["cfm"][k], b["cfm"][k]), k


def convert(pipeline, *args):
    return run("seedsvc.bin.convert", "--model-dir", pipeline / "p1", "--content-checkpoint", pipeline / "content.pt",
               "--style-encoder", "melstats", *args)


def test_convert_with_shift_and_long_reference(pipeline, tmp_path):
    ref = tmp_path / "long_ref"
    sing(ref, 200.0, 0.6, seconds=3.0)  # longer than the 60-frame prompt window: trimmed
    out = tmp_path / "out.wav"
    r = convert(pipeline, "--source", pipeline / "s0.wav", "--reference", ref.with_suffix(".wav"), "--output", out,
                "--semitone-shift", 12)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "using its first" in r.stderr
    wav, sr = sf.read(out)
    src, _ = sf.read(pipeline / "s0.wav")
    assert sr == SR and len(wav) == (len(src) // 256) * 256  # chunked (3 chunks) and cross-faded to full length
    assert np.isfinite(wav).all()


def test_convert_bad_inputs_are_one_line_errors(pipeline, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    low = tmp_path / "low_rate.wav"
    sf.write(low, 0.1 * np.sin(np.arange(4000) * 0.3).astype(np.float32), 4000)
    cases = [(tmp_path / "missing.wav", "no such source file"), (silent, "silent"), (low, "unsupported sample rate")]
    for src, message in cases:
        r = convert(pipeline, "--source", src, "--reference", pipeline / "s1.wav", "--output", tmp_path / "o.wav")
        assert r.returncode == 2
        err = r.stderr.strip().splitlines()[-1]
        assert str(src) in err and message in err, r.stderr[-1000:]
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text("source\treference\toutput\tsemitone_shift\n"
                    f"{silent}\t{pipeline / 's1.wav'}\t{tmp_path / 'a.wav'}\t0\n"
                    f"{pipeline / 's2.wav'}\t{pipeline / 's1.wav'}\t{tmp_path / 'b.wav'}\t-3\n")
    r = convert(pipeline, "--jobs", jobs)
    assert r.returncode == 2 and f"{silent}: the source is silent" in r.stderr
    assert (tmp_path / "b.wav").is_file() and not (tmp_path / "a.wav").exists()


def test_convert_cli_prints_one_line(pipeline, tmp_path):
    missing = tmp_path / "nope.wav"
    r = subprocess.run(
        [sys.executable, "-m", "seedsvc.bin.convert", "--model-dir", str(pipeline / "p1"), "--content-checkpoint",
         str(pipeline / "content.pt"), "--source", str(missing), "--reference", str(pipeline / "s1.wav"),
         "--output", str(tmp_path / "o.wav")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"convert.py: error: {missing}: no such source file"]


def test_training_options_reach_the_loop_and_the_phase_is_checked(pipeline, tmp_path):
    exp = tmp_path / "nof0"
    r = run("seedsvc.bin.train", "--config", pipeline / "conf.yaml", "--phase", 1, "--cuts",
            pipeline / "feats/cuts.jsonl.gz", "--exp-dir", exp, "--checkpoint", pipeline / "p0/model.pth",
            "--num-iters", 2, "--accum-grad", 2, "--dtype", "bf16", "--max-grad-norm", 0.5, "--no-f0", "true")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(no F0)" in r.stderr
    ckpt = torch.load(exp / "checkpoint-2.pt", weights_only=True)
    assert (ckpt["accum_grad"], ckpt["dtype"], ckpt["max_grad_norm"], ckpt["phase"]) == (2, "bf16", 0.5, 1)
    # two batches per update: the sampler is further on than after the 2 updates of the p1 run
    assert ckpt["sampler"] != torch.load(pipeline / "p1/checkpoint-2.pt", weights_only=True)["sampler"]
    model = torch.load(exp / "model.pth", weights_only=True)
    assert set(model) == {"net", "iters", "epoch", "phase"} and model["iters"] == 2
    assert set(model["net"]) == {"cfm", "length_regulator"}
    assert "estimator.f0_cross_attention.0.gate" not in model["net"]["cfm"]
    lines = (exp / "command.txt").read_text().splitlines()
    assert lines[0].startswith("# ") and " torch " in lines[0] and lines[1].endswith("--no-f0 true")
    assert (exp / "config.yaml").is_file() and any((exp / "tensorboard").iterdir())

    wrong = tmp_path / "p2"
    wrong.mkdir()
    (wrong / "checkpoint-2.pt").write_bytes((pipeline / "p1/checkpoint-2.pt").read_bytes())
    r = run("seedsvc.bin.train", "--config", pipeline / "conf.yaml", "--phase", 2, "--cuts",
            pipeline / "feats/cuts.jsonl.gz", "--exp-dir", wrong, "--checkpoint", pipeline / "p1/model.pth")
    assert r.returncode == 2 and "checkpoint-2.pt: a checkpoint of phase 1, this run has phase 2" in r.stderr
