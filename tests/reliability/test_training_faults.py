"""Training binaries under faults: SIGKILL at a random moment and during a checkpoint write, then
resume (the result equals an uninterrupted run's), and a checkpoint write that fails (file size
limit: what a full disk looks like to the writer)."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from faulty_inputs import run as run_module
from faulty_inputs import voiced
from kill_resume import (
    CHECKPOINT,
    REPO,
    TrainingBinary,
    check_kill_and_resume,
    newest_checkpoint,
    run_and_kill,
    temp_files,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zipvoice_train"))
from zipvoice_train_testlib import TINY_CONFIG, TOKENS, make_corpus, train_args  # noqa: E402

STEPS = 8
RUN = ("--save-every-n", 2, "--average-period", 2, "--seed", 3, "--base-lr", 0.02)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), num_train=8, num_dev=2)


def checkpoint_weights(exp: Path, steps: int) -> dict[str, torch.Tensor]:
    """The model and the averaged model of ``checkpoint-<steps>.pt``."""
    ckpt = torch.load(exp / f"checkpoint-{steps}.pt", map_location="cpu", weights_only=True)
    return {f"{part}.{k}": v for part in ("model", "model_avg") for k, v in ckpt[part].items()}


def start_batch(exp: Path) -> list[str]:
    b = newest_checkpoint(exp)
    return [] if b is None else ["--start-batch", str(b)]


@pytest.fixture(scope="module")
def zipvoice(corpus) -> TrainingBinary:
    return TrainingBinary(
        command=lambda exp, steps: [*train_args(corpus, exp, *RUN, "--num-iters", steps)[1:]],
        resume_args=start_batch, final_weights=checkpoint_weights)


@pytest.fixture(scope="module")
def zipvoice_distill(corpus, tmp_path_factory) -> TrainingBinary:
    from zipvoice.models import build_model
    from zipvoice.tokenizer.token_table import vocab_info

    teacher_dir = tmp_path_factory.mktemp("teacher")
    vocab_size, pad_id = vocab_info(TOKENS)
    torch.manual_seed(0)
    torch.save({"model": build_model(TINY_CONFIG["model"], vocab_size, pad_id).state_dict()}, teacher_dir / "model.pt")
    (teacher_dir / "model.json").write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    (teacher_dir / "tokens.txt").write_bytes(Path(TOKENS).read_bytes())

    def command(exp: Path, steps: int) -> list[str]:
        return ["-m", "zipvoice.bin.train_zipvoice_distill", "--teacher-model", str(teacher_dir / "model.pt"),
                "--distill-stage", "first", "--exp-dir", str(exp), "--train-manifest", str(corpus["train"]),
                "--dev-manifest", str(corpus["dev"]), "--max-duration", "3", "--min-len", "0", "--num-workers", "0",
                "--use-fp16", "0", "--tensorboard", "0", "--log-interval", "1", "--num-iters", str(steps),
                *map(str, RUN)]

    return TrainingBinary(command=command, resume_args=start_batch, final_weights=checkpoint_weights)


@pytest.mark.slow
def test_zipvoice_killed_twice_then_resumed_equals_the_uninterrupted_run(zipvoice, tmp_path):
    what = check_kill_and_resume(zipvoice, tmp_path, STEPS, seed=11)
    assert what["killed_during"] and None not in what["resumed_from"], what


@pytest.mark.slow
def test_zipvoice_distill_killed_twice_then_resumed_equals_the_uninterrupted_run(zipvoice_distill, tmp_path):
    what = check_kill_and_resume(zipvoice_distill, tmp_path, STEPS, seed=12)
    assert what["killed_during"] and None not in what["resumed_from"], what


def file_size_limit(max_bytes: int):
    """preexec_fn: writes past ``max_bytes`` fail with EFBIG (SIGXFSZ ignored), as on a full disk."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return limit


def check_failed_checkpoint_write(binary: TrainingBinary, tmp_path: Path, steps: int, limit: int) -> str:
    """Start a run of ``steps`` steps and kill it once its first checkpoint is written; resume it with
    files limited to ``limit`` bytes: the run must stop with one error line naming the checkpoint it
    was writing, leave the earlier checkpoint as it was (and loadable) and no temporary file.
    Returns the error line."""
    exp = tmp_path / "exp"
    run_and_kill(binary, binary.command(exp, steps), exp, lambda names: any(CHECKPOINT.match(n) for n in names),
                 save_seconds=0.5, log=tmp_path / "first.log")
    previous = exp / f"checkpoint-{newest_checkpoint(exp)}.pt"
    assert previous.stat().st_size > limit
    before = previous.read_bytes()
    r = subprocess.run([sys.executable, *binary.command(exp, steps), *binary.resume_args(exp)], cwd=REPO,
                       env=binary.environment(), capture_output=True, text=True, timeout=binary.timeout,
                       preexec_fn=file_size_limit(limit))
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == r.stderr.strip().splitlines()[-1], r.stderr[-3000:]
    pattern = rf": error: {re.escape(str(exp))}/[\w.-]+\.pt: cannot write the checkpoint \(File too large\)$"
    assert re.search(pattern, errors[0]), errors[0]
    assert previous.read_bytes() == before
    assert "model" in torch.load(previous, map_location="cpu", weights_only=True)
    assert temp_files(exp) == []
    return errors[0]


def test_zipvoice_checkpoint_write_failure_is_one_line_and_keeps_the_last_checkpoint(zipvoice, tmp_path):
    line = check_failed_checkpoint_write(zipvoice, tmp_path, STEPS, limit=1 << 20)
    assert re.search(r"/(checkpoint-\d+|epoch-\d+)\.pt: ", line), line


SEEDSVC_CONFIG = """
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
  keep_checkpoints: 2
  log_every: 1
  phase0: {lr: 1.0e-3, num_steps: 8, warmup: 1}
"""


@pytest.fixture(scope="module")
def seedsvc(tmp_path_factory) -> TrainingBinary:
    """Cuts of three sung tones with mel, F0, style and (random phone-classifier) content."""
    from seedsvc.content.phone_classifier import PhoneClassifier, save_phone_classifier

    d = tmp_path_factory.mktemp("seedsvc")
    rows = ["utt_id\tspeaker\twav"]
    for i, f0 in enumerate((220.0, 330.0, 150.0)):
        sf.write(d / f"s{i}.wav", voiced(1.6, 22050, f0), 22050)
        rows.append(f"s{i}\tspk{i}\ts{i}.wav")
    (d / "list.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    save_phone_classifier(d / "phone.pt", PhoneClassifier(3, channels=8, num_layers=1), ["sil", "a", "i"])
    for module, *args in (
        ("seedsvc.bin.compute_features", "--input", d / "list.tsv", "--output-dir", d / "feats",
         "--style-encoder", "melstats", "--device", "cpu"),
        ("seedsvc.bin.compute_content", "--cuts", d / "feats" / "cuts_train.jsonl.gz", "--output",
         d / "cuts.jsonl.gz", "--content-checkpoint", d / "phone.pt", "--device", "cpu"),
    ):
        r = run_module(module, *args)
        assert r.returncode == 0, r.stderr[-3000:]
    (d / "conf.yaml").write_text(SEEDSVC_CONFIG, encoding="utf-8")

    def command(exp: Path, steps: int) -> list[str]:
        return ["-m", "seedsvc.bin.train", "--config", str(d / "conf.yaml"), "--phase", "0", "--cuts",
                str(d / "cuts.jsonl.gz"), "--exp-dir", str(exp), "--num-iters", str(steps), "--device", "cpu",
                "--num-threads", "1", "--tensorboard", "false"]

    def final_weights(exp: Path, steps: int) -> dict[str, torch.Tensor]:
        net = torch.load(exp / "model.pth", map_location="cpu", weights_only=True)["net"]
        return {f"{part}.{k}": v for part, state in net.items() for k, v in state.items()}

    return TrainingBinary(command=command, resume_args=lambda exp: [], final_weights=final_weights)


@pytest.mark.slow
def test_seedsvc_killed_twice_then_resumed_equals_the_uninterrupted_run(seedsvc, tmp_path):
    what = check_kill_and_resume(seedsvc, tmp_path, STEPS, seed=13)
    assert what["killed_during"] and None not in what["resumed_from"], what


def test_seedsvc_checkpoint_write_failure_is_one_line_and_keeps_the_last_checkpoint(seedsvc, tmp_path):
    line = check_failed_checkpoint_write(seedsvc, tmp_path, STEPS, limit=64 << 10)
    assert re.search(r"/checkpoint-\d+\.pt: ", line), line


@pytest.fixture(scope="module")
def songbloom(tmp_path_factory) -> TrainingBinary:
    """A tiny SongBloom on feature cuts of synthetic songs; it resumes from its newest checkpoint by itself."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "songbloom"))
    from songbloom_train_testlib import write_config, write_cuts

    d = tmp_path_factory.mktemp("songbloom")
    config, cuts = write_config(d / "tiny.yaml"), write_cuts(d)

    def command(exp: Path, steps: int) -> list[str]:
        return ["-m", "songbloom.bin.train", "--config", str(config), "--cuts", str(cuts), "--exp-dir", str(exp),
                "--num-iters", str(steps), "--warmup", "1", "--save-every-n", "2", "--lr", "3e-3",
                "--max-tokens", "300", "--device", "cpu", "--num-threads", "1", "--tensorboard", "false"]

    def final_weights(exp: Path, steps: int) -> dict[str, torch.Tensor]:
        return torch.load(exp / "model.pt", map_location="cpu", weights_only=True)  # the released model.*

    return TrainingBinary(command=command, resume_args=lambda exp: [], final_weights=final_weights)


@pytest.mark.slow
def test_songbloom_killed_twice_then_resumed_equals_the_uninterrupted_run(songbloom, tmp_path):
    what = check_kill_and_resume(songbloom, tmp_path, STEPS, seed=14)
    assert what["killed_during"] and None not in what["resumed_from"], what
