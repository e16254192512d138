"""Song generation: the tiny LeLM fixture + a mini tokenizer → tokens, audio and the record of each song."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from songgen_testlib import LELM_FIXTURE, make_qwen_tokenizer_dir
from test_songgen_prepare import tone

from shirabe.cli import InputError
from songgeneration.bin import generate as generate_bin
from songgeneration.tokenizer import MiniTokenizer, read_stereo_48k

SR = 48000
MAX_FRAMES = 8  # the fixture's max_dur 0.32 s x 25
PROMPT_FRAMES = 25  # its prompt_len 1 s


@pytest.fixture(scope="module")
def setup(tmp_path_factory, single_torch_thread):
    root = tmp_path_factory.mktemp("sg_generate")
    qwen = make_qwen_tokenizer_dir(tmp_path_factory)
    for name, freq in (("ref", 300.0), ("other", 520.0)):
        vocal, inst = tone(2.0, freq), tone(2.0, freq * 0.75, 0.1, seed=2)
        sf.write(root / f"{name}.wav", vocal + inst, SR)
        sf.write(root / f"{name}_vocal.wav", vocal, SR)
        sf.write(root / f"{name}_inst.wav", inst, SR)
    files = [root / f"{n}{s}.wav" for n in ("ref", "other") for s in ("", "_vocal", "_inst")]
    tok = MiniTokenizer.train(files[0::3], files[1::3], files[2::3], k=32, seed=0)
    tok.save(root / "mini.safetensors")
    lines = [{"idx": "plain", "gt_lyric": "[verse] hello world", "descriptions": "pop, female"},
             {"idx": "prompted", "gt_lyric": "[verse] sing along", "prompt_audio_path": "ref.wav"}]
    (root / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return root, qwen, tok


def run(root: Path, qwen: Path, out: str, *extra: str, jsonl: str = "in.jsonl") -> Path:
    generate_bin.main(["--ckpt-dir", str(LELM_FIXTURE), "--input-jsonl", str(root / jsonl),
                       "--save-dir", str(root / out), "--tokenizer", "mini",
                       "--tokenizer-path", str(root / "mini.safetensors"), "--text-tokenizer-dir", str(qwen),
                       "--device", "cpu", "--progress", "false", *extra])
    return root / out


def records(out: Path) -> dict[str, dict]:
    return {r["idx"]: r for r in map(json.loads, (out / "generated.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def separate(setup):
    root, qwen, _ = setup
    return run(root, qwen, "sep", "--generate-type", "separate", "--seed", "3")


def test_separate_writes_48k_audio_of_the_generated_length_and_a_record(separate):
    recs = records(separate)
    assert sorted(recs) == ["plain", "prompted"]
    for idx, rec in recs.items():
        tokens = np.load(separate / rec["tokens"])
        assert tokens.dtype == np.int64 and tokens.shape == (3, rec["frames"])
        assert 1 <= rec["frames"] <= MAX_FRAMES and rec["seconds"] == rec["frames"] / 25
        if not rec["eos"]:
            assert rec["frames"] == MAX_FRAMES
        assert tokens.max() < 32  # only ids the mini tokenizer can decode
        assert rec["audio"] == [f"audios/{idx}.flac", f"audios/{idx}_vocal.flac", f"audios/{idx}_bgm.flac"]
        for name in rec["audio"]:
            info = sf.info(separate / name)
            assert (info.samplerate, info.channels, info.frames) == (SR, 2, 1920 * rec["frames"])
    assert recs["prompted"]["prompt"].endswith("ref.wav") and recs["plain"]["prompt"] is None
    assert recs["plain"]["gt_lyric"] == "[verse] hello world."


def test_a_seed_reproduces_the_tokens_and_another_changes_them(setup, separate):
    root, qwen, _ = setup
    again = run(root, qwen, "again", "--seed", "3", "--generate-type", "mixed", "--format", "wav")
    other = run(root, qwen, "other", "--seed", "4", "--generate-type", "mixed", "--format", "wav")
    for idx in ("plain", "prompted"):
        np.testing.assert_array_equal(np.load(again / "tokens" / f"{idx}.npy"),
                                      np.load(separate / "tokens" / f"{idx}.npy"))
    assert records(again)["plain"]["audio"] == ["audios/plain.wav"]
    assert any(not np.array_equal(np.load(other / "tokens" / f"{i}.npy"), np.load(again / "tokens" / f"{i}.npy"))
               for i in ("plain", "prompted"))


def test_prompt_tokens_are_never_copied_into_the_mixed_stream(setup, separate):
    root, qwen, tok = setup
    prompt_ids = set(tok.encode(read_stereo_48k(root / "ref.wav")[:, :1920 * PROMPT_FRAMES])[0, :PROMPT_FRAMES]
                     .tolist())
    generated = np.load(separate / "tokens" / "prompted.npy")[0]
    assert not prompt_ids & set(generated.tolist())
    unbanned = run(root, qwen, "unbanned", "--seed", "3", "--ban-prompt-tokens", "false", "--low-mem", "true")
    assert prompt_ids & set(np.load(unbanned / "tokens" / "prompted.npy")[0].tolist())


def test_input_mistakes_are_one_line_errors(setup):
    root, qwen, _ = setup
    bad = {"auto": {"idx": "x", "gt_lyric": "[verse] a", "auto_prompt_audio_type": "Pop"},
           "tag": {"idx": "x", "gt_lyric": "[intro] a"},
           "both": {"idx": "x", "gt_lyric": "[verse] a", "prompt_audio_path": "ref.wav",
                    "auto_prompt_audio_type": "Pop"}}
    messages = {"auto": "auto-prompt library is not available", "tag": r"in_tag.jsonl:1: gt_lyric: unknown structure "
                "tag '\\[intro\\]'", "both": "not both"}
    for name, item in bad.items():
        (root / f"in_{name}.jsonl").write_text(json.dumps(item) + "\n", encoding="utf-8")
        with pytest.raises(InputError, match=messages[name]):
            run(root, qwen, "bad", jsonl=f"in_{name}.jsonl")


def test_help_lists_the_sampling_defaults():
    out = subprocess.run([sys.executable, "-m", "songgeneration.bin.generate", "--help"], capture_output=True,
                         text=True, check=True).stdout
    out = " ".join(out.split())
    for text in ("--generate-type", "(default: 1.5)", "(default: 5000)", "--low-mem BOOL", "sampling temperature of the mixed stream (default: 0.8)"):
        assert text in out
