"""LeLM training: the objective's layout (EOS, length mask, 250-frame prompt, dropouts, trainable
condition tables), the prepared-data checks, full and LoRA runs, and exact resumption after SIGKILL."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE  # noqa: E402
from songgen_train_testlib import (  # noqa: E402
    FRAMES,
    PROMPT_FRAMES,
    shared_qwen_dir,
    song_tokens,
    write_prepared,
    write_train_config,
)

from shirabe.cli import InputError  # noqa: E402
from songgeneration.bin import train  # noqa: E402
from songgeneration.models import build_lelm, config_from_dict, load_lelm  # noqa: E402
from songgeneration.training.data import SongSampler, collate, load_manifest, text_ids_of  # noqa: E402
from songgeneration.training.loss import DropoutRates, apply_dropout, compute_loss, dropout_rates  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")
REPO = Path(__file__).resolve().parents[2]
EOS, SPECIAL = 16384, 16385


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("songgen_train")
    qwen = shared_qwen_dir(tmp_path_factory)
    prepared = write_prepared(root / "prepared")
    lm = load_lelm(LELM_FIXTURE, tokenizer_dir=qwen)
    return root, qwen, prepared, lm


def batch_of(lm, prepared, indices):
    songs = load_manifest(prepared, 16384, PROMPT_FRAMES)
    return collate([songs[i] for i in indices], text_ids_of(lm), 16384, PROMPT_FRAMES)


def eval_loss(lm, prepared) -> float:
    """Loss over every song, no dropout."""
    lm.eval()
    with torch.no_grad():
        loss, _ = compute_loss(lm, batch_of(lm, prepared, range(len(FRAMES))), False, device="cpu")
    return float(loss)


def test_eos_at_the_true_end_and_nothing_after_counted(setup):
    _, _, prepared, lm = setup
    batch = batch_of(lm, prepared, [0, 2])
    codes = batch["codes"]
    assert codes.shape == (2, 3, 101)
    for b, n in enumerate((60, 100)):
        assert torch.equal(codes[b, :, :n], torch.from_numpy(song_tokens([0, 2][b], n)))
        assert (codes[b, :, n] == EOS).all() and (codes[b, :, n + 1:] == SPECIAL).all()
    with torch.no_grad():
        loss, metrics = compute_loss(lm.eval(), batch, False, device="cpu")
    assert metrics["frames"] == 3 * (61 + 101) and metrics["utterances"] == 2
    # the same number by hand: cross-entropy of every frame up to and including EOS, nothing after
    total = 0.0
    with torch.no_grad():
        for b, n in enumerate((60, 100)):
            cond = lm.conditions_from_ids(batch["lyric_ids"][b:b + 1], batch["desc_ids"][b:b + 1],
                                          batch["prompt"][b:b + 1])
            out = lm.compute_predictions(codes[b:b + 1, :, :n + 1], cond)
            total += float(F.cross_entropy(out.logits[0].reshape(-1, EOS + 1), codes[b, :, :n + 1].reshape(-1),
                                           reduction="sum"))
    assert abs(float(loss) - total / (3 * 162)) < 1e-4


def test_padded_batch_equals_the_per_song_losses(setup):
    _, _, prepared, lm = setup
    lm.eval()
    sums, frames = 0.0, 0.0
    with torch.no_grad():
        for i in range(4):
            loss, m = compute_loss(lm, batch_of(lm, prepared, [i]), False, device="cpu")
            sums += float(loss) * m["frames"]
            frames += m["frames"]
            assert m["frames"] == 3 * (FRAMES[i] + 1)
        loss, m = compute_loss(lm, batch_of(lm, prepared, [3, 0, 1, 2]), False, device="cpu")
    assert m["frames"] == frames
    assert abs(float(loss) - sums / frames) < 1e-5
    per_stream = m.averages()
    assert set(per_stream) >= {"loss_mixed", "loss_vocal", "loss_accompaniment", "acc1_mixed", "acc10_vocal"}
    assert abs(np.mean([per_stream[f"loss_{s}"] for s in ("mixed", "vocal", "accompaniment")]) - float(loss)) < 1e-5


def test_prompt_is_250_frames_after_eos_in_252_rows(setup, tmp_path):
    _, qwen, _, _ = setup
    data = yaml.safe_load((LELM_FIXTURE / "config.yaml").read_text())
    data["prompt_len"] = 10
    data["conditioners"]["prompt_audio"]["qt_embedding"]["max_len"] = 252
    lm = build_lelm(config_from_dict(data, "ten-second-prompt"))
    from songgeneration.models import attach_tokenizer

    attach_tokenizer(lm, qwen)
    assert lm.config.prompt_frames == 250
    prepared = write_prepared(tmp_path / "p250", frames=(300,), prompt_frames=250, without_prompt=())
    songs = load_manifest(prepared, 16384, 250)
    batch = collate(songs, text_ids_of(lm), 16384, 250)
    cond = lm.conditions_from_ids(batch["lyric_ids"], batch["desc_ids"], batch["prompt"])
    prompt = np.load(prepared / "prompt" / "song0.npy")
    assert cond.prompt_ids.shape == (1, 3, 251)
    assert (cond.prompt_ids[0, :, 0] == EOS).all()
    assert torch.equal(cond.prompt_ids[0, :, 1:], torch.from_numpy(prompt))
    main, sub, parts = lm.prefixes(cond)
    assert parts["prompt_main"].shape[1] == 252 and parts["prompt_sub"].shape[1] == 252
    # a 15 s (375-frame) prompt is refused, naming the file
    bad = write_prepared(tmp_path / "p375", frames=(300,), prompt_frames=375, without_prompt=())
    with pytest.raises(InputError, match=r"song0\.npy: the prompt has 375 frames.*takes 250"):
        load_manifest(bad, 16384, 250)


def test_manifest_checks_the_48khz_frame_rule_and_ids(tmp_path):
    prepared = write_prepared(tmp_path / "p")
    lines = (prepared / "manifest.jsonl").read_text().splitlines()
    item = json.loads(lines[1])
    item["duration"] = item["frames"] * 48000 / 44100 / 25  # frames of 44.1 kHz audio read as 48 kHz
    (prepared / "manifest.jsonl").write_text("\n".join([lines[0], json.dumps(item)] + lines[2:]) + "\n")
    with pytest.raises(InputError, match=r"manifest\.jsonl:2: field 'frames' is 84, but .* gives 92 frames"):
        load_manifest(prepared, 16384, PROMPT_FRAMES)
    prepared = write_prepared(tmp_path / "q")
    np.save(prepared / "tokens" / "song2.npy", np.full((3, 100), 16384, dtype=np.int64))
    with pytest.raises(InputError, match=r"song2\.npy: tokens ids must lie in 0\.\.16383"):
        load_manifest(prepared, 16384, PROMPT_FRAMES)


def test_dropout_rates_come_from_the_checkpoint_config(setup):
    _, _, prepared, lm = setup
    raw = yaml.safe_load((LELM_FIXTURE / "config.yaml").read_text())
    rates = dropout_rates(lm.config)
    assert rates.cfg == raw["classifier_free_guidance"]["training_dropout"] == 0.15
    assert rates.lyric == raw["attribute_dropout"]["text"]["description"]
    assert rates.description == raw["attribute_dropout"]["text"]["type_info"] == 0.2
    assert rates.prompt == raw["attribute_dropout"]["audio"]["prompt_audio"] == 0.5
    batch = batch_of(lm, prepared, [0, 1])
    null_lyric = lm.condition_provider.lyric.token_ids([None])[0]
    every = apply_dropout(batch, DropoutRates(cfg=1.0), SPECIAL)
    assert all(torch.equal(row, null_lyric) for row in every["lyric_ids"])
    assert (every["desc_ids"][:, 0] == 151644).all() and (every["desc_ids"][:, 1:] == 151643).all()
    assert (every["prompt"] == SPECIAL).all()
    only_prompt = apply_dropout(batch, DropoutRates(prompt=1.0), SPECIAL)
    assert torch.equal(only_prompt["lyric_ids"], batch["lyric_ids"]) and (only_prompt["prompt"] == SPECIAL).all()
    g = torch.Generator().manual_seed(0)
    drawn = [apply_dropout(batch, rates, SPECIAL, g)["dropped"]["prompt"] for _ in range(200)]
    share = float(torch.stack(drawn).float().mean())
    assert 0.5 < share < 0.65  # prompt 0.5 or all 0.15: 1 - 0.5 * 0.85 = 0.575


def test_condition_tables_receive_gradients(setup):
    _, _, prepared, lm = setup
    model = copy.deepcopy(lm).train()
    batch = batch_of(model, prepared, [0, 1])
    loss, _ = compute_loss(model, batch, True, device="cpu", rates=None)
    loss.backward()
    cp = model.condition_provider
    assert cp.lyric.output_proj.weight.grad[batch["lyric_ids"][0, 1]].abs().sum() > 0
    assert cp.lyric.structure_emb.weight.grad.abs().sum() > 0
    assert cp.description.output_proj.weight.grad[batch["desc_ids"][0, 1]].abs().sum() > 0
    assert cp.prompt.emb[0].weight.grad[batch["prompt"][0, 0, 0]].abs().sum() > 0
    assert cp.prompt.EOT_emb.grad.abs().sum() > 0


def test_lora_trains_only_the_adapters(setup):
    _, _, prepared, lm = setup
    from songgeneration.train_config import Lora
    from songgeneration.training.lora import wrap_lelm

    base = copy.deepcopy(lm)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    torch.manual_seed(0)
    model = wrap_lelm(base, Lora(r=4, alpha=8.0, dropout=0.0, include_mlp=True)).train()
    names = [n for n, q in model.named_parameters() if q.requires_grad]
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
    assert any("transformer2." in n for n in names) and any("mlp.gate_proj" in n for n in names)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-2)
    sampler = SongSampler(load_manifest(prepared, 16384, PROMPT_FRAMES), 2, text_ids_of(lm), 16384, PROMPT_FRAMES)
    losses = []
    for _ in range(6):
        loss, _ = compute_loss(model, sampler.batch(), True, device="cpu", rates=None)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    assert model.base_model.model.transformer.model.layers[0].self_attn.q_proj.lora_B.default.weight.abs().sum() > 0
    after = model.get_base_model().state_dict()
    plain = {k.replace(".base_layer", ""): v for k, v in after.items() if "lora_" not in k}
    assert plain.keys() == before.keys()
    assert all(torch.equal(plain[k], before[k]) for k in before)
    assert losses[-1] < losses[0] and losses[-2] < losses[1]


def test_full_training_lowers_the_loss_and_writes_upstream_folder(setup, tmp_path):
    _, qwen, prepared, lm = setup
    cfg = write_train_config(tmp_path / "train_config.yaml", LELM_FIXTURE, prepared, tmp_path / "exp", qwen,
                             max_steps=12)
    assert train.main(["--config", str(cfg), "--device", "cpu", "--tensorboard", "false",
                       "--save-dtype", "float32"]) == 0
    final = tmp_path / "exp" / "final"
    assert (final / "config.yaml").read_bytes() == (LELM_FIXTURE / "config.yaml").read_bytes()
    trained = load_lelm(final, tokenizer_dir=qwen)  # strict
    base_loss, new_loss = eval_loss(lm, prepared), eval_loss(trained, prepared)
    assert new_loss < base_loss - 0.5, (base_loss, new_loss)
    row = int(batch_of(lm, prepared, [0])["lyric_ids"][0, 1])
    a = trained.condition_provider.lyric.output_proj.weight[row]
    assert not torch.equal(a, lm.condition_provider.lyric.output_proj.weight[row])  # the lyric table trained
    assert sorted(p.name for p in (tmp_path / "exp").glob("checkpoint-*.pt")) == \
        ["checkpoint-12.pt", "checkpoint-4.pt", "checkpoint-8.pt"]


def test_from_scratch_builds_random_weights(setup, tmp_path):
    _, qwen, prepared, lm = setup
    cfg = write_train_config(tmp_path / "c.yaml", LELM_FIXTURE, prepared, tmp_path / "exp", qwen, max_steps=2,
                             warmup_steps=0, from_scratch=True)
    args = train.get_parser().parse_args(["--config", str(cfg), "--device", "cpu"])
    plan = train.plan_training(args, None)
    assert plan.num_iters == 2 and args.dtype == "float32" and args.seed == 0 and args.accum_grad == 1
    model = train.build_model(plan, 0, False)
    assert not torch.equal(model.emb[0].weight, lm.emb[0].weight)
    lora_cfg = write_train_config(tmp_path / "l.yaml", LELM_FIXTURE, prepared, tmp_path / "exp", qwen,
                                  from_scratch=True, type="lora")
    with pytest.raises(InputError, match="from_scratch takes training.type full"):
        train.plan_training(train.get_parser().parse_args(["--config", str(lora_cfg)]), None)


def run_killed(cmd, exp: Path, log: Path, checkpoint: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=out,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not (exp / checkpoint).exists():
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"no {checkpoint}"
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_lora_run_resumes_exactly_after_sigkill(setup, tmp_path):
    _, qwen, prepared, _ = setup
    common = {"type": "lora", "max_steps": 8, "save_every_n": 4}
    straight = write_train_config(tmp_path / "a.yaml", LELM_FIXTURE, prepared, tmp_path / "straight", qwen, **common)
    opts = ["--device", "cpu", "--tensorboard", "false"]
    assert train.main(["--config", str(straight), *opts]) == 0
    lora = tmp_path / "straight" / "lora"
    conf = json.loads((lora / "adapter_config.json").read_text())
    assert conf["r"] == 4 and conf["lora_alpha"] == 8
    assert any(t.startswith("transformer2.") for t in conf["target_modules"])
    assert {t.rsplit(".", 1)[1] for t in conf["target_modules"]} == {"q_proj", "k_proj", "v_proj", "o_proj"}

    killed = write_train_config(tmp_path / "b.yaml", LELM_FIXTURE, prepared, tmp_path / "killed", qwen, **common)
    run_killed([sys.executable, "-m", "songgeneration.bin.train", "--config", str(killed), *opts],
               tmp_path / "killed", tmp_path / "killed.log", "checkpoint-4.pt")
    assert not (tmp_path / "killed" / "lora").exists()
    assert train.main(["--config", str(killed), *opts]) == 0
    assert "resumed from" in (tmp_path / "killed" / "log" / "log-train.txt").read_text()
    a, b = adapter_tensors(lora), adapter_tensors(tmp_path / "killed" / "lora")
    assert a.keys() == b.keys() and len(a) > 0
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst <= 1e-6, worst
    assert max(float(v.abs().max()) for k, v in a.items() if "lora_B" in k) > 0


def test_bad_config_is_one_line_error(setup, tmp_path):
    _, qwen, prepared, _ = setup
    cfg = write_train_config(tmp_path / "c.yaml", LELM_FIXTURE, prepared, tmp_path / "exp", qwen, max_steps=3,
                             warmup_steps=5)
    proc = subprocess.run([sys.executable, "-m", "songgeneration.bin.train", "--config", str(cfg)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "training.warmup_steps (5) must be below the number of updates (3)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_docs_state_the_48khz_tokenizer_rate():
    text = (REPO / "docs" / "songgeneration_training.md").read_text(encoding="utf-8")
    section = text.split("## Training", 1)[1]
    assert "48 kHz" in section and "25 Hz" in section
