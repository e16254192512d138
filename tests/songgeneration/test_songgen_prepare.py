"""Data preparation of SongGeneration: metadata, lyrics, stems, prompts, rejects and resuming."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from songgen_testlib import LELM_FIXTURE

from shirabe.cli import InputError
from songgeneration.bin import prepare_data as prepare_bin
from songgeneration.data.lyrics import LyricsError, normalize_lyrics
from songgeneration.data.prepare import prepare_data
from songgeneration.data.prompt import cut_prompt
from songgeneration.tokenizer import MiniTokenizer, read_stereo_48k
from songgeneration.train_config import load_train_config

SR = 48000
PAD = 16385


def tone(seconds: float, freq: float, level: float = 0.2, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    rng = np.random.default_rng(seed)
    x = level * np.sin(2 * math.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)  # [N, 2]


def write_song(folder: Path, name: str, seconds: float, freq: float, stems: bool = True,
               mix_name: str | None = None) -> Path:
    vocal, inst = tone(seconds, freq), tone(seconds, freq / 2, 0.1, seed=1)
    mix = folder / f"{mix_name or name}.wav"
    sf.write(mix, vocal + inst, SR)
    if stems:
        sf.write(folder / f"{name}_vocal.wav", vocal, SR)
        sf.write(folder / f"{name}_inst.wav", inst, SR)
    return mix


LYRIC_A = "[intro-short]\n[verse]\nHello world, it's me!\nSecond line.\n\n[chorus] la la; la\n[outro-short]"
LYRIC_B = "[verse]\n今日は いい天気！明日も、晴れるかな？\n{雨|あめ}が降る\n[chorus] ＡＢＣ"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, single_torch_thread):
    root = tmp_path_factory.mktemp("sg_prepare")
    raw = root / "raw"
    raw.mkdir()
    write_song(raw, "a", 2.0, 440.0, mix_name="a_mix")  # mini corpus naming: a_mix + a_vocal + a_inst
    write_song(raw, "b", 1.2, 330.0)  # b.wav + b_vocal.wav + b_inst.wav
    write_song(raw, "c", 0.5, 220.0)  # too short
    (raw / "d.wav").write_bytes(b"RIFF not really a wav file")  # corrupt
    write_song(raw, "e", 2.0, 550.0, stems=False)  # no stems, no separator
    write_song(raw, "f", 1.5, 660.0)  # lyrics with a stale tag
    tok = MiniTokenizer.train([raw / "a_mix.wav", raw / "b.wav"], [raw / "a_vocal.wav", raw / "b_vocal.wav"],
                              [raw / "a_inst.wav", raw / "b_inst.wav"], k=16, seed=0)
    tok.save(root / "mini.safetensors")
    lines = [
        json.dumps({"path": "a_mix.wav", "gt_lyric": LYRIC_A, "descriptions": "pop, female", "idx": "a"}),
        json.dumps({"path": "b.wav", "gt_lyric": LYRIC_B, "descriptions": "j-pop", "idx": "b"}),
        json.dumps({"path": "c.wav", "gt_lyric": "[verse] short", "descriptions": "x", "idx": "c"}),
        json.dumps({"path": "d.wav", "gt_lyric": "[verse] corrupt", "descriptions": "x", "idx": "d"}),
        json.dumps({"path": "e.wav", "gt_lyric": "[verse] alone", "descriptions": "x", "idx": "e"}),
        json.dumps({"path": "f.wav", "gt_lyric": "[intro]\n[verse] stale", "descriptions": "x", "idx": "f"}),
        json.dumps({"path": "b.wav", "gt_lyric": "[verse] hi", "idx": "g"}),
        "{not json",
        json.dumps({"path": "a_mix.wav", "gt_lyric": "[verse] again", "descriptions": "x", "idx": "a"}),
    ]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "train_config.yaml").write_text(
        f"paths:\n  base_model_path: {LELM_FIXTURE}\n  tokenizer: mini\n  audio_tokenizer_path: mini.safetensors\n"
        "  raw_data_dir: raw\n  metadata_path: metadata.jsonl\n  prepared_data_dir: prepared\n  output_dir: exp\n"
        "data:\n  min_duration: 1.0\n  max_duration: 4.0\n  prompt_seconds: 2.0\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        from shirabe.cli import run_main
        run_main(prepare_bin.main, ["--config", str(root / "train_config.yaml"), "--device", "cpu",
                                    "--progress", "false", "--num-workers", "1"])
    assert e.value.code == 0
    return root, tok


def manifest(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "prepared" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_good_songs_are_prepared_in_the_pinned_format(corpus):
    root, tok = corpus
    recs = manifest(root)
    assert [r["idx"] for r in recs] == ["a", "b"]
    assert all(set(r) == {"idx", "tokens", "prompt", "frames", "duration", "gt_lyric", "descriptions"}
               for r in recs)
    a, b = recs
    # 2.0 s -> 2*25 + 1 = 51 frames; 1.2 s -> 30 + 1 = 31 frames
    assert (a["frames"], a["duration"], b["frames"], b["duration"]) == (51, 2.0, 31, 1.2)
    assert (a["tokens"], a["prompt"]) == ("tokens/a.npy", "prompt/a.npy")
    ta = np.load(root / "prepared" / a["tokens"])
    tb = np.load(root / "prepared" / b["tokens"])
    assert ta.dtype == np.int64 and ta.shape == (3, 51) and tb.shape == (3, 31)
    assert ta.max() < 16 and ta.min() >= 0
    # rows 1 and 2 are the stems beside the song (mini corpus naming), row 0 the mix
    raw = root / "raw"
    stems = tok.encode_separate(read_stereo_48k(raw / "a_vocal.wav"), read_stereo_48k(raw / "a_inst.wav")).numpy()
    np.testing.assert_array_equal(ta[1:], stems)
    np.testing.assert_array_equal(ta[0], tok.encode(read_stereo_48k(raw / "a_mix.wav"))[0].numpy())
    assert a["gt_lyric"] == "[intro-short] ; [verse] Hello world, it's me.Second line. ; [chorus] la la.la. ; [outro-short]"
    assert b["gt_lyric"] == "[verse] 今日は いい天気.明日も、晴れるかな.雨が降る ; [chorus] ABC."
    assert a["descriptions"] == "pop, female"


def test_prompts_are_centred_and_short_songs_padded_with_16385(corpus):
    root, _ = corpus
    ta, tb = (np.load(root / "prepared" / "tokens" / f"{i}.npy") for i in "ab")
    pa, pb = (np.load(root / "prepared" / "prompt" / f"{i}.npy") for i in "ab")
    assert pa.shape == pb.shape == (3, 50) and pa.dtype == np.int64
    np.testing.assert_array_equal(pa, ta[:, 0:50])  # (51 - 50) // 2 = 0
    np.testing.assert_array_equal(pb[:, :31], tb)
    assert (pb[:, 31:] == PAD).all()
    long = np.arange(3 * 100).reshape(3, 100)
    np.testing.assert_array_equal(cut_prompt(long, 10), long[:, 45:55])


def test_rejects_are_listed_with_file_line_and_reason(corpus):
    root, _ = corpus
    rows = (root / "prepared" / "rejects.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "idx\treason"
    reasons = dict(r.split("\t", 1) for r in rows[1:] if not r.startswith("-"))
    assert sorted(reasons) == ["a", "c", "d", "e", "f", "g"]
    meta = str(root / "metadata.jsonl")
    assert reasons["c"].startswith(f"{meta}:3:") and "too short (0.50 s < data.min_duration 1 s)" in reasons["c"]
    assert reasons["d"].startswith(f"{meta}:4:") and "d.wav" in reasons["d"] and "cannot read audio" in reasons["d"]
    assert "data.separator_checkpoint is not set" in reasons["e"]
    assert reasons["f"].startswith(f"{meta}:6:") and "unknown structure tag '[intro]'" in reasons["f"]
    assert reasons["g"].startswith(f"{meta}:7:") and "missing field 'descriptions'" in reasons["g"]
    assert reasons["a"].startswith(f"{meta}:9:") and "repeats line 1" in reasons["a"]
    assert any(r.startswith("-\t" + f"{meta}:8: not JSON") for r in rows)


def test_lhotse_manifests_list_the_prepared_songs(corpus):
    root, _ = corpus
    with gzip.open(root / "prepared" / "recordings.jsonl.gz", "rt") as f:
        recs = [json.loads(x) for x in f]
    with gzip.open(root / "prepared" / "supervisions.jsonl.gz", "rt") as f:
        sups = [json.loads(x) for x in f]
    assert [r["id"] for r in recs] == ["a", "b"] and recs[0]["sampling_rate"] == SR
    assert sups[1]["text"].startswith("[verse] 今日は") and sups[1]["custom"]["descriptions"] == "j-pop"


def test_rerun_keeps_finished_songs_and_redoes_missing_ones(corpus):
    root, _ = corpus
    prepared = root / "prepared"
    stamp = (prepared / "tokens" / "a.npy").stat().st_mtime_ns
    before = np.load(prepared / "tokens" / "b.npy")
    (prepared / "tokens" / "b.npy").unlink()
    result = prepare_data(load_train_config(root / "train_config.yaml"), "cpu", progress=False)
    assert result.kept == ["a"] and result.prepared == ["b"]
    assert (prepared / "tokens" / "a.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(np.load(prepared / "tokens" / "b.npy"), before)
    assert [r["idx"] for r in manifest(root)] == ["a", "b"]


def test_lyrics_rules_and_errors():
    assert normalize_lyrics("[verse] Ｈｅｌｌｏ。World\n[bridge] one 3.5 two") == \
        "[verse] Hello.World. ; [bridge] one 3.5 two."
    assert normalize_lyrics("[verse] 雪花舞动.情缘如同雪花") == "[verse] 雪花舞动.情缘如同雪花"
    assert normalize_lyrics("[verse] きょうは,いい天気.", language="ja") == "[verse] きょうは、いい天気"
    for text, message in [("[Verse] x", r"did you mean '\[verse\]'"), ("[intro] ", r"did you mean '\[intro-short\]'"),
                          ("hello [verse] x", "text before the first structure tag"),
                          ("[verse]", "has no lyrics"), ("[inst-short] la", "takes no lyrics"),
                          ("[verse] a ] b", "unbalanced")]:
        with pytest.raises(LyricsError, match=message):
            normalize_lyrics(text)
    with pytest.raises(InputError, match="lyrics language"):
        normalize_lyrics("[verse] x", language="klingon")


def test_bad_config_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="config file not found"):
        prepare_bin.main(["--config", str(tmp_path / "nope.yaml")])
