"""Evaluation of a SongGeneration system on synthetic inputs: numbers derived by hand, the results section."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from songgen_testlib import LELM_FIXTURE
from songgen_train_testlib import shared_qwen_dir, write_prepared
from test_songgen_prepare import tone

from shirabe.cli import InputError
from shirabe.eval.results_md import read_section
from songgeneration.bin import evaluate as evaluate_bin
from songgeneration.evaluate import log_mel_distance
from songgeneration.models import load_lelm
from songgeneration.tokenizer import MiniTokenizer, read_stereo_48k
from songgeneration.training.data import collate, load_manifest, text_ids_of
from songgeneration.training.loss import compute_loss

SR = 48000
HOP = 1920
PROMPT_FRAMES = 25  # the fixture's prompt_len: 1 s


@pytest.fixture(scope="module")
def setup(tmp_path_factory, single_torch_thread):
    root = tmp_path_factory.mktemp("sg_evaluate")
    qwen = shared_qwen_dir(tmp_path_factory)
    vocal, inst = tone(2.0, 300.0), tone(2.0, 225.0, 0.1, seed=2)
    sf.write(root / "ref.wav", vocal + inst, SR)
    sf.write(root / "ref_vocal.wav", vocal, SR)
    sf.write(root / "ref_inst.wav", inst, SR)
    other = tone(2.0, 700.0, 0.3, seed=5)
    sf.write(root / "other.wav", other, SR)
    tok = MiniTokenizer.train([root / "ref.wav", root / "other.wav"], [root / "ref_vocal.wav"],
                              [root / "ref_inst.wav"], k=16, seed=0)
    tok.save(root / "mini.safetensors")

    prepared = write_prepared(root / "prepared", frames=(30, 41, 26), without_prompt=(2,))
    shutil.move(prepared / "manifest.jsonl", prepared / "manifest_test.jsonl")

    prompt_ids = sorted(set(tok.encode(read_stereo_48k(root / "ref.wav")[:, :HOP * PROMPT_FRAMES])[0, :PROMPT_FRAMES]
                            .tolist()))
    free = [i for i in range(16) if i not in prompt_ids]
    assert prompt_ids and len(free) >= 2
    copied, fresh = prompt_ids[0], free[0]
    gen = root / "generated"
    (gen / "tokens").mkdir(parents=True)
    (gen / "audios").mkdir()
    ref = sf.read(root / "ref.wav", dtype="float32")[0]
    songs = {  # idx: (mixed row, eos)
        "p": ([copied, fresh, fresh, fresh], True),  # one of 4 mixed tokens copies the prompt
        "q": ([fresh] * 6, False),
        "n": ([copied] * 8, False),  # no prompt: not counted by the ban share
    }
    records, inputs = [], []
    for idx, (mixed, eos) in songs.items():
        tokens = np.stack([mixed, mixed, mixed]).astype(np.int64)
        np.save(gen / "tokens" / f"{idx}.npy", tokens)
        n = len(mixed)
        audio = ref[: n * HOP] if idx == "p" else 0.5 * ref[: n * HOP]
        sf.write(gen / "audios" / f"{idx}.wav", audio, SR, subtype="FLOAT")
        records.append({"idx": idx, "frames": n, "seconds": n / 25, "eos": eos, "tokens": f"tokens/{idx}.npy",
                        "audio": [f"audios/{idx}.wav"]})
        inputs.append({"idx": idx, "gt_lyric": "[verse] la", **({} if idx == "n" else
                                                                {"prompt_audio_path": "ref.wav"})})
    (gen / "generated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (root / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in inputs), encoding="utf-8")
    return root, qwen


def run(root: Path, qwen: Path, *extra: str, gen: str = "generated") -> dict:
    evaluate_bin.main(["--ckpt-dir", str(LELM_FIXTURE), "--prepared-dir", str(root / "prepared"),
                       "--generated-dir", str(root / gen), "--input-jsonl", str(root / "in.jsonl"),
                       "--tokenizer", "mini", "--tokenizer-path", str(root / "mini.safetensors"),
                       "--text-tokenizer-dir", str(qwen), "--results", str(root / "RESULTS.md"),
                       "--device", "cpu", "--progress", "false", *extra])
    system = dict(zip(extra[::2], extra[1::2])).get("--system", gen)
    return json.loads((root / f"RESULTS.songgeneration.{system}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def result(setup):
    root, qwen = setup
    return run(root, qwen, "--system", "tiny")


def test_generation_numbers_match_the_hand_counts(result):
    gen = result["gen"]
    assert gen["songs"] == 3
    assert gen["eos_share"] == pytest.approx(1 / 3)
    assert gen["frames_total"] == 18 and gen["frames_mean"] == pytest.approx(6.0)
    assert gen["seconds_mean"] == pytest.approx(0.24)
    assert gen["prompted_songs"] == 2 and gen["prompt_tokens_generated"] == 10
    assert gen["prompt_tokens_copied"] == 1 and gen["prompt_ban_share"] == pytest.approx(0.1)
    assert result["songs"]["p"]["prompt_tokens_copied"] == 1 and "prompt_tokens_copied" not in result["songs"]["n"]


def test_audio_distances(result):
    audio, songs = result["audio"], result["songs"]
    assert audio["songs"] == 2 and "log_mel_generated" not in songs["n"]
    assert songs["p"]["log_mel_generated"] == pytest.approx(0.0, abs=1e-5)  # the reference itself
    assert songs["q"]["log_mel_generated"] == pytest.approx(math.log(2), abs=0.02)  # half the gain
    assert 0.05 < songs["p"]["log_mel_round_trip"] < 10


def test_log_mel_distance_of_a_gain_is_its_log():
    noise = np.random.default_rng(0).standard_normal((2, SR // 2)).astype(np.float32) * 0.1
    assert log_mel_distance(noise, noise) == 0.0
    assert log_mel_distance(noise, 0.25 * noise) == pytest.approx(math.log(4), abs=1e-3)
    assert log_mel_distance(noise, np.concatenate([noise, noise], 1), num_samples=SR // 4) == 0.0


def test_teacher_forced_ce_is_the_training_loss(setup, result):
    root, qwen = setup
    lm = load_lelm(LELM_FIXTURE, "cpu", torch.float32, qwen)
    cfg = lm.config
    folder = root / "manifest_copy"
    shutil.copytree(root / "prepared", folder)
    shutil.copy(folder / "manifest_test.jsonl", folder / "manifest.jsonl")
    songs = load_manifest(folder, cfg.code_size, cfg.prompt_frames)
    with torch.no_grad():
        loss, metrics = compute_loss(lm, collate(songs, text_ids_of(lm), cfg.code_size, cfg.prompt_frames), False,
                                     device="cpu")
    tf = result["tf"]
    assert tf["ce"] == pytest.approx(float(loss), rel=1e-5)
    averages = metrics.averages()
    for s in ("mixed", "vocal", "accompaniment"):
        assert tf[f"acc1_{s}"] == pytest.approx(averages[f"acc1_{s}"], abs=1e-6)
        assert tf[f"acc10_{s}"] == pytest.approx(averages[f"acc10_{s}"], abs=1e-6)
        assert tf[f"ce_{s}"] == pytest.approx(averages[f"loss_{s}"], rel=1e-5)
    assert tf["frames"] == 3 * (30 + 41 + 26 + 3)  # every frame plus EOS, three streams
    assert tf["songs"] == 3
    assert 0 < tf["ce"] < 20 and all(0 <= tf[f"acc10_{s}"] <= 1 for s in ("mixed", "vocal", "accompaniment"))


def test_the_section_is_written_and_replaced_on_rerun(setup, result):
    root, qwen = setup
    body = read_section(root / "RESULTS.md", "songgeneration:tiny")
    assert "| share of songs ending by EOS | 0.333 |" in body
    gen = root / "generated"
    lines = (gen / "generated.jsonl").read_text().splitlines()
    first = json.loads(lines[1])
    first["eos"] = True
    (gen / "generated.jsonl").write_text("\n".join([lines[0], json.dumps(first), lines[2]]) + "\n")
    try:
        again = run(root, qwen, "--system", "tiny")
    finally:
        (gen / "generated.jsonl").write_text("\n".join(lines) + "\n")
    text = (root / "RESULTS.md").read_text()
    assert text.count("<!-- begin: songgeneration:tiny -->") == 1
    assert "| share of songs ending by EOS | 0.667 |" in text and "0.333 |" not in text
    assert again["gen"]["eos_share"] == pytest.approx(2 / 3)


def test_a_missing_generated_file_is_a_one_line_error(setup):
    root, qwen = setup
    broken = root / "broken"
    shutil.copytree(root / "generated", broken)
    (broken / "tokens" / "q.npy").unlink()
    with pytest.raises(InputError, match=r"generated.jsonl:2: tokens file .*q\.npy not found") as e:
        run(root, qwen, gen="broken")
    assert "\n" not in str(e.value)
    (broken / "generated.jsonl").unlink()
    with pytest.raises(InputError, match=r"broken/generated.jsonl: generated.jsonl not found"):
        run(root, qwen, gen="broken")
