"""songbloom.bin.infer on the tiny fixture model: files, records, seeds, bad lines, formats, adapters.

The fixture (``tests/fixtures/songbloom_tiny``) has patches of 4 frames, a VAE of 8 samples per
frame at 48 kHz stereo and ``top_k: 1`` in its ``inference:`` section; ``--max-duration 0.32``
is a budget of 8 frames (2 patches). Expected values are written out by hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from shirabe.audio import save_audio
from shirabe.cli import InputError
from songbloom.bin.infer import get_parser, main
from songbloom.g2p import load_vocab
from songbloom.inference import apply_adapter, is_symbol_form, lyric_symbols
from songbloom.models import load_model

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES", ROOT / "tests" / "fixtures"))
FIX = FIXTURES / "songbloom_tiny"
YAML = FIX / "songbloom_tiny.yaml"
SYMBOLS = "[verse] n i3 h ao3 . w o3"
JAPANESE = "[verse] かえるのうたが、きこえてくるよ。"
JAPANESE_SYMBOLS = "[verse] k a e r u n o o t a g a , k I k o e t e k u r u y o ."
SAMPLES_PER_FRAME = 8  # the tiny VAE: strides 2 x 4


@pytest.fixture(scope="module", autouse=True)
def one_thread(single_torch_thread):
    yield


def tone(seconds: float, sr: int = 44100, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return np.stack([amp * np.sin(2 * np.pi * 220 * t), amp * np.sin(2 * np.pi * 331 * t)], axis=1)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prompts")
    save_audio(d / "good.wav", tone(1.5), 44100)
    save_audio(d / "silent.wav", np.zeros((2 * 16000, 2)), 16000)
    save_audio(d / "short.wav", tone(0.5), 44100)
    return d


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def infer(jsonl: Path, out: Path, *extra: str) -> int:
    return main(["--config", str(YAML), "--input-jsonl", str(jsonl), "--output-dir", str(out), "--max-duration", "0.32",
                 "--progress", "false", "--num-threads", "1", *extra])


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "generated.jsonl").read_text(encoding="utf-8").splitlines()]


def failures(out: Path) -> list[list[str]]:
    rows = (out / "failures.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "line\tidx\terror"
    return [r.split("\t") for r in rows[1:]]


# -- options -----------------------------------------------------------------------------------------


def test_help_lists_every_option_with_its_default():
    text = get_parser().format_help()
    options = ["--config", "--input-jsonl", "--output-dir", "--ckpt-path", "--local-dir", "--lora-path",
               "--trust-checkpoint", "--n-samples", "--seed", "--dtype", "--device", "--num-threads", "--max-duration",
               "--output-format", "--cfg-coef", "--temp", "--top-k", "--top-p", "--penalty-repeat",
               "--penalty-window", "--steps", "--diff-temp", "--dit-cfg-type", "--allow-unknown", "--user-dict",
               "--progress", "--save-sketch", "--verbose"]
    blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    by_option = {b.split()[0].rstrip(","): " ".join(b.split()) for b in blocks if b.strip().startswith("--")}
    assert sorted(by_option) == sorted(options)
    for block in by_option.values():
        assert "default" in block or "(required)" in block, block
    assert "(default: 2)" in by_option["--n-samples"] and "(default: float32)" in by_option["--dtype"]
    assert "inference.steps; 36 in the released config" in by_option["--steps"]


def test_symbol_form_is_every_item_a_vocabulary_symbol():
    vocab = load_vocab(FIX / "vocab_g2p.yaml")
    assert is_symbol_form("[verse]  n i3\th ao3 .", vocab)
    assert not is_symbol_form("[verse] かえる", vocab)
    assert not is_symbol_form("[verse] love", vocab)
    assert lyric_symbols("[verse]  n i3 \n h ao3", vocab) == "[verse] n i3 h ao3"  # passed through, spaces normalised
    assert lyric_symbols(JAPANESE, vocab) == JAPANESE_SYMBOLS
    with pytest.raises(InputError, match=r"songs.jsonl:4: .*'\[rap\]'"):
        lyric_symbols("[rap] あ", vocab, where="songs.jsonl:4")


# -- generation ---------------------------------------------------------------------------------------


def test_generates_named_stereo_48k_files_and_records(tmp_path, prompts):
    jsonl = write_jsonl(prompts / "songs.jsonl", [
        {"idx": "kaeru", "lyrics": JAPANESE, "prompt_wav": "good.wav"},  # relative to the JSONL's folder
        {"idx": 7, "lyrics": SYMBOLS, "prompt_wav": None},
    ])
    out = tmp_path / "out"
    assert infer(jsonl, out, "--output-format", "wav") == 0
    assert sorted(p.name for p in out.iterdir()) == ["7_s0.wav", "7_s1.wav", "failures.tsv", "generated.jsonl",
                                                     "kaeru_s0.wav", "kaeru_s1.wav"]
    assert failures(out) == []
    recs = records(out)
    assert [(r["idx"], r["sample"], r["path"], r["seed"], r["line"]) for r in recs] == [
        ("kaeru", 0, "kaeru_s0.wav", 0, 1), ("kaeru", 1, "kaeru_s1.wav", 1, 1),
        ("7", 0, "7_s0.wav", 0, 2), ("7", 1, "7_s1.wav", 1, 2)]
    assert recs[0]["lyrics"] == JAPANESE_SYMBOLS and recs[2]["lyrics"] == SYMBOLS
    assert recs[0]["prompt"] == str(prompts / "good.wav") and recs[2]["prompt"] is None
    for r in recs:
        assert r["frames"] in (4, 8)  # whole patches within the 8-frame budget
        info = sf.info(str(out / r["path"]))
        assert (info.samplerate, info.channels) == (48000, 2)
        assert info.frames == r["frames"] * SAMPLES_PER_FRAME
        assert r["seconds"] == pytest.approx(info.frames / 48000, abs=1e-4)


def test_same_seed_same_song_and_sample_i_uses_seed_plus_i(tmp_path, prompts):
    jsonl = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "x", "lyrics": SYMBOLS,
                                                    "prompt_wav": str(prompts / "good.wav")}])
    assert infer(jsonl, tmp_path / "a", "--seed", "5", "--n-samples", "2", "--output-format", "wav") == 0
    assert infer(jsonl, tmp_path / "b", "--seed", "6", "--n-samples", "1", "--output-format", "wav") == 0
    a0, a1 = (sf.read(str(tmp_path / "a" / f"x_s{i}.wav"))[0] for i in (0, 1))
    b0 = sf.read(str(tmp_path / "b" / "x_s0.wav"))[0]
    assert (tmp_path / "a" / "x_s1.wav").read_bytes() == (tmp_path / "b" / "x_s0.wav").read_bytes()
    assert np.array_equal(a1, b0)
    assert not np.array_equal(a0, a1)  # seeds 5 and 6 differ


def test_bad_lines_fail_alone_and_are_listed(tmp_path, prompts):
    good = str(prompts / "good.wav")
    jsonl = write_jsonl(tmp_path / "songs.jsonl", [
        {"idx": "one", "lyrics": SYMBOLS, "prompt_wav": good},
        {"idx": "nofield", "lyrics": SYMBOLS},
        {"idx": "missing", "lyrics": SYMBOLS, "prompt_wav": "nope.wav"},
        {"idx": "silent", "lyrics": SYMBOLS, "prompt_wav": str(prompts / "silent.wav")},
        {"idx": "short", "lyrics": SYMBOLS, "prompt_wav": str(prompts / "short.wav")},
        {"idx": "rap", "lyrics": "[rap] あ", "prompt_wav": good},
        '{"idx": "broken", ',
        "",
        {"idx": "nine", "lyrics": JAPANESE, "prompt_wav": None},
        {"idx": "one", "lyrics": SYMBOLS, "prompt_wav": good},
    ])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "songbloom.bin.infer", "--config", str(YAML), "--input-jsonl",
                           str(jsonl), "--output-dir", str(out), "--max-duration", "0.32", "--n-samples", "1",
                           "--progress", "false", "--output-format", "wav"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sorted(p.name for p in out.glob("*.wav")) == ["nine_s0.wav", "one_s0.wav"]
    assert [(r["idx"], r["line"]) for r in records(out)] == [("one", 1), ("nine", 9)]
    rows = failures(out)
    assert [(int(line), idx) for line, idx, _ in rows] == [(2, "nofield"), (3, "missing"), (4, "silent"),
                                                           (5, "short"), (6, "rap"), (7, "-"), (10, "one")]
    where = f"{jsonl}:"
    expected = ["missing field 'prompt_wav'", "no such audio file", "is silent", "is 0.50 s long", "'[rap]'",
                "not valid JSON", "already used on line 1"]
    for (line, _, error), part in zip(rows, expected):
        assert error.startswith(f"{where}{line}: ") and part in error, error
    for _, _, error in rows:
        assert error in proc.stderr  # each logged too


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_flac_and_mp3_are_readable(tmp_path, fmt):
    jsonl = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "s", "lyrics": SYMBOLS, "prompt_wav": None}])
    assert infer(jsonl, tmp_path / "out", "--output-format", fmt, "--n-samples", "1", "--max-duration", "2") == 0
    frames = records(tmp_path / "out")[0]["frames"]
    wav, sr = sf.read(str(tmp_path / "out" / f"s_s0.{fmt}"))
    assert sr == 48000 and wav.ndim == 2 and wav.shape[1] == 2
    if fmt == "flac":
        assert wav.shape[0] == frames * SAMPLES_PER_FRAME
    else:
        assert wav.shape[0] >= frames * SAMPLES_PER_FRAME  # mp3 frames pad the end


def test_bfloat16_runs_on_cpu(tmp_path, prompts):
    jsonl = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "b", "lyrics": SYMBOLS,
                                                    "prompt_wav": str(prompts / "good.wav")}])
    assert infer(jsonl, tmp_path / "out", "--dtype", "bfloat16", "--n-samples", "1", "--device", "cpu") == 0
    assert records(tmp_path / "out")[0]["frames"] > 0 and (tmp_path / "out" / "b_s0.flac").is_file()


# -- adapters ------------------------------------------------------------------------------------------

Q0 = "ar_transformer.layers.0.self_attn.q_proj"
TABLE = "condition_provider.conditioners.lyrics.output_proj.weight"


def write_adapter(path: Path, scale: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """An adapter as training writes it: rank 2, alpha 4 on q_proj/v_proj/to_qkv, random A and B, and the
    lyric table with row 5 changed. Returns the tensors."""
    from shirabe.train.lora import relative_key, wrap_lora

    model = load_model(YAML)
    wrapped = wrap_lora(model.model, ["q_proj", "v_proj", "to_qkv"], 2, 4.0, 0.0)
    g = torch.Generator().manual_seed(seed)
    wrapped.get_base_model().condition_provider.lyrics.output_proj.weight.requires_grad_(True)
    state = wrapped.state_dict()
    tensors = {}
    for name, p in wrapped.named_parameters():
        if p.requires_grad:
            value = state[name].clone()
            if ".lora_" in name:
                value = torch.randn(value.shape, generator=g) * scale
            else:
                value[5] = 1.0
            tensors[relative_key(name)] = value
    torch.save({"adapter": tensors, "config": {"rank": 2, "alpha": 4.0, "dropout": 0.0,
                                               "targets": ["q_proj", "v_proj", "to_qkv"], "lyric_rows": "all"}}, path)
    return tensors


def test_apply_adapter_merges_w_plus_scaled_ba(tmp_path):
    tensors = write_adapter(tmp_path / "adapter.pt", scale=0.5)
    base = load_model(YAML)
    w0 = dict(base.model.named_parameters())[Q0 + ".weight"].detach().clone()
    model = apply_adapter(load_model(YAML), tmp_path / "adapter.pt")
    a, b = tensors[Q0 + ".lora_A.default.weight"], tensors[Q0 + ".lora_B.default.weight"]
    merged = dict(model.model.named_parameters())
    assert (a.shape, b.shape) == ((2, 128), (128, 2))
    torch.testing.assert_close(merged[Q0 + ".weight"], w0 + (4.0 / 2) * (b @ a))  # alpha / rank = 2
    assert torch.equal(merged[TABLE][5], torch.ones(128))
    assert not any(".lora_" in k for k in model.model.state_dict())
    assert sorted(model.state_dict()) == sorted(base.state_dict())


def test_apply_adapter_rejects_a_foreign_key(tmp_path):
    tensors = write_adapter(tmp_path / "adapter.pt", scale=0.5)
    tensors["ar_transformer.layers.9.self_attn.q_proj.lora_A.default.weight"] = torch.zeros(2, 128)
    torch.save({"adapter": tensors, "config": {"rank": 2, "alpha": 4.0, "targets": ["q_proj", "v_proj", "to_qkv"]}},
               tmp_path / "bad.pt")
    with pytest.raises(InputError, match=r"bad\.pt: does not fit this model; keys the adapted model lacks: "
                                         r"ar_transformer\.layers\.9\S*$"):
        apply_adapter(load_model(YAML), tmp_path / "bad.pt")


def test_lora_path_changes_the_song(tmp_path):
    write_adapter(tmp_path / "adapter.pt", scale=2.0)
    jsonl = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "l", "lyrics": SYMBOLS, "prompt_wav": None}])
    args = ("--n-samples", "1", "--output-format", "wav", "--max-duration", "2")
    assert infer(jsonl, tmp_path / "base", *args) == 0
    assert infer(jsonl, tmp_path / "lora", *args, "--lora-path", str(tmp_path / "adapter.pt")) == 0
    base = sf.read(str(tmp_path / "base" / "l_s0.wav"))[0]
    lora = sf.read(str(tmp_path / "lora" / "l_s0.wav"))[0]
    assert base.shape[1] == lora.shape[1] == 2
    assert base.shape != lora.shape or not np.array_equal(base, lora)
