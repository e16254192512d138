"""acestep.bin.train: LoRA and full fine-tuning from the latent cache lower the loss, leave adapters in the
released layout, and resume exactly after SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from acestep_testlib import make_tiny_checkpoint  # noqa: E402

from acestep.bin import cache_latents, train  # noqa: E402
from acestep.models import load_transformer  # noqa: E402
from acestep.models.lora import LORA_FILE, load_lora, read_lora_config, read_lora_file  # noqa: E402
from acestep.training.data import FrameBudgetSampler, collate, load_example, load_songs  # noqa: E402
from acestep.training.lora import read_lora_spec, warn_no_op_targets  # noqa: E402
from acestep.training.loss import apply_dropouts, compute_loss  # noqa: E402
from acestep.training.lr import warmup_linear_factor  # noqa: E402
from shirabe.cli import InputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")
REPO = Path(__file__).resolve().parents[2]
LORA = {"r": 8, "lora_alpha": 16, "use_rslora": True,
        "target_modules": ["to_q", "to_k", "to_v", "to_out.0", "linear_q", "linear_k", "linear_v"]}


def write_songs(data: Path, n: int = 4) -> None:
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(int((2.0 + i) * 48000)) / 48000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t) + 0.02 * rng.standard_normal(t.shape)
        sf.write(data / f"song{i}.wav", wav.astype(np.float32), 48000)
        (data / f"song{i}_prompt.txt").write_text(["pop, piano", "rock, guitar", "jazz, bass", "lofi, drums"][i % 4])
        if i % 2 == 0:
            (data / f"song{i}_lyrics.txt").write_text("[verse]\nhello world\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("acestep_train")
    ckpt = make_tiny_checkpoint(root / "ckpt")
    write_songs(root / "data")
    cache = root / "cache"
    assert cache_latents.main(["--checkpoint-dir", str(ckpt), "--data-dir", str(root / "data"), "--output-dir",
                               str(cache), "--num-tag-orders", "2", "--device", "cpu", "--progress", "false"]) == 0
    lora = root / "lora.json"
    lora.write_text(json.dumps(LORA))
    return ckpt, cache, lora


def train_args(ckpt, cache, exp, *extra):
    return ["--checkpoint-dir", str(ckpt), "--cache-dir", str(cache), "--exp-dir", str(exp), "--device", "cpu",
            "--tensorboard", "false", "--log-interval", "10", *extra]


def eval_loss(model, cache) -> float:
    """Deterministic loss (no dropouts, noise and t seeded by the song ids) over every cached song."""
    model.eval()
    total = 0.0
    for song in load_songs(cache):
        batch = collate([load_example(song, 0, 0, song.frames)])
        loss, _ = compute_loss(model, batch, False, device=torch.device("cpu"))
        total += float(loss)
    return total


def test_lora_training_lowers_the_loss_and_leaves_released_adapters(setup, tmp_path):
    ckpt, cache, lora = setup
    exp = tmp_path / "exp"
    assert train.main(train_args(ckpt, cache, exp, "--lora-config", str(lora), "--num-iters", "40",
                                 "--save-every-n", "20", "--lr", "3e-3", "--warmup-steps", "2")) == 0
    for step in (20, 40):
        assert (exp / "checkpoints" / f"step={step}_lora" / LORA_FILE).is_file()
    assert (exp / "checkpoint-40.pt").is_file()
    final = exp / "lora"
    assert json.loads((final / "lora_config.json").read_text()) == LORA
    adapter = read_lora_file(final)
    assert "transformer_blocks.0.attn.to_q" in adapter and "transformer_blocks.1.cross_attn.to_out.0" in adapter
    assert "lyric_encoder.encoders.0.self_attn.linear_q" in adapter or any(k.endswith("linear_q") for k in adapter)
    a, b = adapter["transformer_blocks.0.attn.to_q"]
    assert a.shape[0] == 8 and b.shape[1] == 8 and float(b.abs().max()) > 0  # B starts at zero and trained
    # the last step's adapter folder holds the same tensors as the final one
    last = read_lora_file(exp / "checkpoints" / "step=40_lora")
    assert all(torch.equal(last[k][1], adapter[k][1]) for k in adapter)

    base = load_transformer(ckpt / "ace_step_transformer")
    before = eval_loss(base, cache)
    tuned = load_transformer(ckpt / "ace_step_transformer")
    load_lora(tuned, final, settings=read_lora_config(final / "lora_config.json"))  # the trainer's scale
    after = eval_loss(tuned, cache)
    assert after < 0.8 * before, (before, after)

    # the generation binary takes the adapter folder as it is
    from acestep.bin import generate

    plain, tuned_wav = tmp_path / "plain.wav", tmp_path / "tuned.wav"
    for out, extra in ((plain, []), (tuned_wav, ["--lora-path", str(final), "--lora-weight", "4"])):
        assert generate.main(["--checkpoint-dir", str(ckpt), "--prompt", "pop, piano", "--lyrics", "hello",
                              "--duration", "1", "--output", str(out), "--seed", "3", "--infer-step", "2",
                              "--device", "cpu", *extra]) == 0
    a, b = sf.read(plain)[0], sf.read(tuned_wav)[0]
    assert a.shape == b.shape and not np.allclose(a, b)


def test_full_fine_tune_lowers_the_loss(setup, tmp_path):
    ckpt, cache, _ = setup
    exp = tmp_path / "exp"
    assert train.main(train_args(ckpt, cache, exp, "--num-iters", "30", "--save-every-n", "30", "--lr", "1e-3",
                                 "--warmup-steps", "2", "--batch-frames", "120")) == 0
    assert not (exp / "checkpoints").exists() and not (exp / "lora").exists()
    before = eval_loss(load_transformer(ckpt / "ace_step_transformer"), cache)
    after = eval_loss(load_transformer(exp / "ace_step_transformer"), cache)
    assert after < 0.8 * before, (before, after)
    # a finished run does nothing when started again
    stamp = (exp / "ace_step_transformer" / "config.json").stat().st_mtime_ns
    assert train.main(train_args(ckpt, cache, exp, "--num-iters", "30")) == 0
    assert (exp / "ace_step_transformer" / "config.json").stat().st_mtime_ns == stamp


def test_bf16_base_weights_with_gradient_checkpointing(setup, tmp_path):
    ckpt, cache, lora = setup
    exp = tmp_path / "exp"
    assert train.main(train_args(ckpt, cache, exp, "--lora-config", str(lora), "--num-iters", "3", "--warmup-steps",
                                 "1", "--dtype", "bf16", "--base-dtype", "bf16", "--gradient-checkpointing", "true",
                                 "--batch-frames", "100")) == 0
    adapter = read_lora_file(exp / "lora")
    a, b = adapter["transformer_blocks.1.attn.to_v"]
    assert a.dtype == torch.float32 and torch.isfinite(b).all() and float(b.abs().max()) > 0


def final_adapter(exp: Path) -> dict:
    return read_lora_file(exp / "lora")


def test_lora_run_resumes_exactly_after_sigkill(setup, tmp_path):
    ckpt, cache, lora = setup
    common = ["--lora-config", str(lora), "--num-iters", "60", "--save-every-n", "5", "--lr", "1e-3"]
    straight = tmp_path / "straight"
    assert train.main(train_args(ckpt, cache, straight, *common)) == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "acestep.bin.train", *train_args(ckpt, cache, killed, *common)]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not (killed / "checkpoint-5.pt").exists():
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint-5.pt"
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    assert not (killed / "lora").exists() and not (killed / "checkpoint-60.pt").exists()
    assert train.main(train_args(ckpt, cache, killed, *common)) == 0
    assert "resumed from" in (killed / "log" / "log-train.txt").read_text()
    a, b = final_adapter(straight), final_adapter(killed)
    assert a.keys() == b.keys()
    worst = max(float((a[k][i].double() - b[k][i].double()).abs().max()) for k in a for i in (0, 1))
    assert worst <= 1e-6, worst
    assert float(a["transformer_blocks.0.attn.to_q"][1].abs().max()) > 0


def test_sampler_batches_budget_crop_and_resume(setup):
    _, cache, _ = setup
    songs = load_songs(cache)
    frames = sorted(s.frames for s in songs)
    assert frames == [33, 33, 44, 54]  # 2 s (padded to 3 s), 3 s, 4 s, 5 s of audio
    one = FrameBudgetSampler(songs, seed=3)
    assert len(one) == 4
    seen = [one.batch()["ids"] for _ in range(4)]
    assert sorted(i for ids in seen for i in ids) == sorted(s.id for s in songs)
    budget = FrameBudgetSampler(songs, batch_frames=100, seed=3)
    batches = [budget.batch() for _ in range(len(budget))]
    for batch in batches:
        b, t = batch["attention_mask"].shape
        assert b * t <= 100 or b == 1
        assert batch["latents"].shape == (b, 8, 16, t)
        for row, sid in zip(batch["attention_mask"], batch["ids"], strict=True):
            assert int(row.sum()) == next(s.frames for s in songs if s.id == sid)
    assert max(b["latents"].shape[0] for b in batches) >= 2
    cropped = FrameBudgetSampler(songs, crop_frames=20, seed=3)
    assert all(cropped.batch()["latents"].shape[-1] == 20 for _ in range(4))
    # resuming from a state gives the same next batches
    sampler = FrameBudgetSampler(songs, batch_frames=100, crop_frames=40, seed=5)
    for _ in range(3):
        sampler.batch()
    state = sampler.state_dict()
    expected = [sampler.batch() for _ in range(5)]
    again = FrameBudgetSampler(songs, batch_frames=100, crop_frames=40, seed=5)
    again.load_state_dict(state)
    for want in expected:
        got = again.batch()
        assert got["ids"] == want["ids"] and torch.equal(got["latents"], want["latents"])
        assert torch.equal(got["text_hidden"], want["text_hidden"])


def test_instrumental_and_lyric_masks_and_dropouts(setup):
    _, cache, _ = setup
    songs = {s.id: s for s in load_songs(cache)}
    batch = collate([load_example(songs["song0"], 0, 0, 33), load_example(songs["song1"], 1, 0, 33)])
    assert batch["lyric_mask"][0].sum() > 1 and batch["lyric_mask"][1].sum() == 0  # song1 has no lyrics
    assert batch["lyric_ids"][1, 0] == 0
    assert batch["speaker"].shape == (2, 512) and not batch["speaker"].any()
    torch.manual_seed(0)
    n = 4000
    big = {"latents": torch.zeros(n, 1, 1, 1), "text_hidden": torch.ones(n, 3, 2), "speaker": torch.ones(n, 4),
           "lyric_ids": torch.full((n, 5), 7), "lyric_mask": torch.ones(n, 5, dtype=torch.long)}
    out = apply_dropouts(big, 0.15, 0.5, 0.15)
    text_dropped = float((out["text_hidden"].sum(dim=(1, 2)) == 0).float().mean())
    speaker_dropped = float((out["speaker"].sum(dim=1) == 0).float().mean())
    lyrics_dropped = (out["lyric_ids"].sum(dim=1) == 0)
    assert abs(text_dropped - 0.15) < 0.03 and abs(speaker_dropped - 0.5) < 0.04
    assert abs(float(lyrics_dropped.float().mean()) - 0.15) < 0.03
    assert torch.equal(lyrics_dropped, out["lyric_mask"].sum(dim=1) == 0)  # ids and mask drop together


def test_learning_rate_schedule_and_lora_config_checks(tmp_path, caplog):
    assert [warmup_linear_factor(b, 10, 110) for b in (1, 5, 10, 60, 110, 120)] == [0.1, 0.5, 1.0, 0.5, 0.0, 0.0]
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**LORA, "target_modules": ["speaker_embedder", "to_q"], "lora_dropout": 0.1}))
    spec = read_lora_spec(path)
    assert spec.dropout == 0.1 and spec.rank == 8
    with caplog.at_level("WARNING"):
        assert warn_no_op_targets(spec) == ["speaker_embedder"]
    assert "no-op" in caplog.text
    path.write_text(json.dumps({**LORA, "lora_dropout": 1.5}))
    with pytest.raises(InputError, match="lora_dropout"):
        read_lora_spec(path)
    path.write_text(json.dumps({**LORA, "target_modules": []}))
    with pytest.raises(InputError, match="target_modules"):
        read_lora_spec(path)


def test_bad_options_are_one_line_errors(setup, tmp_path):
    ckpt, cache, lora = setup
    with pytest.raises(InputError, match="--ssl-coeff"):
        train.main(train_args(ckpt, cache, tmp_path / "e", "--ssl-coeff", "1"))
    with pytest.raises(InputError, match="no cache manifest"):
        train.main(train_args(ckpt, tmp_path, tmp_path / "e"))
    with pytest.raises(InputError, match="needs --dtype bf16"):
        train.main(train_args(ckpt, cache, tmp_path / "e", "--lora-config", str(lora), "--base-dtype", "bf16"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**LORA, "target_modules": ["no_such_layer"]}))
    with pytest.raises(InputError, match="no_such_layer"):
        train.main(train_args(ckpt, cache, tmp_path / "e2", "--lora-config", str(bad), "--num-iters", "2",
                               "--warmup-steps", "1"))


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="the accompaniment part needs fluidsynth")
def test_mini_corpus_accompaniment_caches_and_trains(setup, tmp_path):
    from shirabe.minicorpus.accompaniment import build_accompaniment
    from shirabe.minicorpus.config import CorpusConfig

    ckpt, _, lora = setup
    part = tmp_path / "accompaniment"
    build_accompaniment(part, CorpusConfig(num_songs=1), progress=False)
    cache = tmp_path / "cache"
    assert cache_latents.main(["--checkpoint-dir", str(ckpt), "--data-dir", str(part), "--output-dir", str(cache),
                               "--target", "mix", "--device", "cpu", "--progress", "false"]) == 0
    songs = load_songs(cache)
    assert [s.id for s in songs] == ["mini_0001"]
    cut = songs[0].cut
    assert cut.custom["has_lyrics"] and "japanese" in cut.custom["tags"]
    assert 5412 in cut.load_custom("lyric_ids").tolist()  # [ja]
    assert cut.custom["source"].endswith("mini_0001_mix.wav")
    exp = tmp_path / "exp"
    assert train.main(train_args(ckpt, cache, exp, "--lora-config", str(lora), "--num-iters", "3",
                                 "--save-every-n", "3", "--crop-frames", "64", "--warmup-steps", "1")) == 0
    model = load_transformer(ckpt / "ace_step_transformer")
    assert len(load_lora(model, exp / "lora")) == len(read_lora_file(exp / "lora"))
