"""Flow distillation: the teacher target on known velocity fields, the loss plumbing, and both
stages of zipvoice.bin.train_zipvoice_distill on a tiny corpus."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shirabe.train.checkpoint import safe_load
from zipvoice.distill import (
    DistillSchedule,
    DistillStudent,
    distill_loss,
    draw_intervals,
    ema_update,
    two_step_velocity,
)
from zipvoice.models import build_model
from zipvoice.tokenizer.token_table import vocab_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zipvoice_train"))
from zipvoice_train_testlib import TINY_CONFIG, TOKENS, make_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_two_step_target_on_known_fields():
    x = torch.tensor([1.0, -2.0, 0.5])
    t, d1, d2 = 0.2, 0.1, 0.25
    # v = x: two Euler steps multiply by (1 + d1)(1 + d2)
    got = two_step_velocity(lambda t_, x_: x_, x, t, d1, d2)
    torch.testing.assert_close(got, (x * (1 + d1) * (1 + d2) - x) / (d1 + d2))
    # v = t (the same everywhere): the interval's mean of the step start times
    got = two_step_velocity(lambda t_, x_: torch.full_like(x_, t_), x, t, d1, d2)
    torch.testing.assert_close(got, torch.full_like(x, (d1 * t + d2 * (t + d1)) / (d1 + d2)))
    # an empty interval: the velocity at t
    torch.testing.assert_close(two_step_velocity(lambda t_, x_: 3 * x_, x, t, 0.0, 0.0), 3 * x)


@pytest.mark.parametrize(("stage", "lo", "hi"), [("first", 0.0, 2.0), ("second", 1.0, 3.0)])
def test_drawn_intervals_stay_inside_the_flow(stage, lo, hi):
    torch.manual_seed(0)
    draws = [draw_intervals(stage) for _ in range(2000)]
    for s in draws:
        assert 0.0 <= s.t <= 1.0 and lo <= s.guidance_scale <= hi
        assert 0.0 <= s.delta1 <= 0.3 and 0.0 <= s.delta2 <= 0.3 and s.t + s.delta1 + s.delta2 <= 1.0 + 1e-12
    assert max(s.guidance_scale for s in draws) > hi - 0.05 and min(s.guidance_scale for s in draws) < lo + 0.05


def test_ema_update():
    ema, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    ema_update(ema, model, 0.9)
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * model.state_dict()[k])


def tiny_models(distill_teacher: bool):
    vocab_size, pad_id = vocab_info(TOKENS)
    torch.manual_seed(0)
    teacher = build_model(TINY_CONFIG["model"], vocab_size, pad_id, "zipvoice_distill" if distill_teacher else "zipvoice")
    student = DistillStudent(**TINY_CONFIG["model"], vocab_size=vocab_size, pad_id=pad_id)
    student.load_state_dict(teacher.state_dict(), strict=False)
    return teacher.eval(), student.eval()


def toy_batch():
    torch.manual_seed(1)
    return {"features": torch.randn(2, 40, 100), "features_lens": torch.tensor([40, 31]),
            "tokens": [[1, 2, 3, 4], [5, 6, 7]]}


def test_student_equal_to_teacher_has_zero_loss_on_an_empty_interval():
    """Both stages: a student that computes exactly the teacher's velocity has loss 0 when the
    interval is empty, and a positive loss over a real interval (two steps differ from one)."""
    teacher, student = tiny_models(distill_teacher=True)  # second stage: teacher = student's copy
    with torch.no_grad():
        loss0, _, frames = distill_loss(student, teacher, toy_batch(), "second", 1.0, torch.device("cpu"),
                                        DistillSchedule(0.3, 2.0, 0.0, 0.0))
        loss1, _, _ = distill_loss(student, teacher, toy_batch(), "second", 1.0, torch.device("cpu"),
                                   DistillSchedule(0.3, 2.0, 0.3, 0.3))
    assert frames > 0 and loss0.item() == pytest.approx(0.0, abs=1e-10) and loss1.item() > 1e-6
    # first stage: a ZipVoice teacher without guidance and a student whose guidance embedding is zero
    teacher, student = tiny_models(distill_teacher=False)
    with torch.no_grad():
        student.fm_decoder.guidance_scale_embed.weight.zero_()
        loss0, _, _ = distill_loss(student, teacher, toy_batch(), "first", 1.0, torch.device("cpu"),
                                   DistillSchedule(0.6, 0.0, 0.0, 0.0))
    assert loss0.item() == pytest.approx(0.0, abs=1e-10)


def run(*args, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_both_stages_train_only_the_decoder_and_keep_the_ema(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", num_train=8, num_dev=2)
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    vocab_size, pad_id = vocab_info(TOKENS)
    torch.manual_seed(0)
    teacher = build_model(TINY_CONFIG["model"], vocab_size, pad_id)
    torch.save({"model": teacher.state_dict()}, teacher_dir / "model.pt")
    (teacher_dir / "model.json").write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    (teacher_dir / "tokens.txt").write_bytes(Path(TOKENS).read_bytes())
    common = ["--train-manifest", corpus["train"], "--dev-manifest", corpus["dev"], "--max-duration", 3,
              "--min-len", 0, "--num-workers", 0, "--use-fp16", 0, "--tensorboard", 0, "--log-interval", 1,
              "--num-iters", 4, "--save-every-n", 2, "--average-period", 1, "--base-lr", 0.01]
    first = tmp_path / "first"
    r = run("-m", "zipvoice.bin.train_zipvoice_distill", "--teacher-model", teacher_dir / "model.pt",
            "--distill-stage", "first", "--exp-dir", first, *common)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "validation" in r.stderr and "ref_loss" in r.stderr
    ckpt = safe_load(first / "checkpoint-4.pt")
    sd, t_sd = ckpt["model"], teacher.state_dict()
    assert "fm_decoder.guidance_scale_embed.weight" in sd and "model_avg" in ckpt
    assert all(torch.equal(sd[k], v) for k, v in t_sd.items() if not k.startswith("fm_decoder."))
    assert not torch.equal(sd["fm_decoder.in_proj.weight"], t_sd["fm_decoder.in_proj.weight"])
    r = run("-m", "zipvoice.bin.generate_averaged_model", "--exp-dir", first, "--iter", 4, "--avg", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    averaged = first / "iter-4-avg-1.pt"

    second = tmp_path / "second"
    r = run("-m", "zipvoice.bin.train_zipvoice_distill", "--teacher-model", averaged, "--distill-stage", "second",
            "--exp-dir", second, "--ema-decay", 0.5, *common)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt2 = safe_load(second / "checkpoint-4.pt")
    start = safe_load(averaged)["model"]
    ema, student = ckpt2["model_ema"], ckpt2["model"]
    key = "fm_decoder.in_proj.weight"
    # the EMA lies strictly between where the student started and where it is now
    assert not torch.equal(ema[key], start[key]) and not torch.equal(ema[key], student[key])
    assert (ema[key] - student[key]).abs().max() < (start[key] - student[key]).abs().max()
    assert ckpt2["distill_stage"] == "second"

    # a ZipVoice teacher is refused for the second stage, with one line
    r = run("-m", "zipvoice.bin.train_zipvoice_distill", "--teacher-model", teacher_dir / "model.pt",
            "--distill-stage", "second", "--exp-dir", tmp_path / "bad", *common)
    assert r.returncode == 2 and "not a zipvoice_distill checkpoint" in r.stderr.strip().splitlines()[-1]

    # the distilled model loads for inference and its dev losses are finite
    r = run("-m", "zipvoice.bin.compute_dev_loss", "--model-dir", second, "--checkpoint-name", "checkpoint-4.pt",
            "--model-name", "zipvoice_distill", "--dev-manifest", corpus["dev"], "--num-step", 4,
            "--output", tmp_path / "dev.json")
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "dev.json").read_text())
    assert result["loss"] > 0 and result["utterances"] == 2 and result["guidance_scale"] == 3.0
