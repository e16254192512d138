"""Text chunking, batching and the audio helpers of the inference pipeline."""

import logging

import numpy as np
import pytest

from shirabe.audio.crossfade import cross_fade_concat
from shirabe.audio.loudness import raise_to_rms, restore_rms, rms
from shirabe.audio.silence import remove_silence
from zipvoice.utils.chunking import SENTENCE_END, add_punctuation, chunk_text, split_after
from zipvoice.utils.infer import batchify

JA = "今日はいい天気ですね。明日は雨が降るかもしれませんが、傘を持っていけば大丈夫でしょう！本当に？「はい。」"


def test_split_after_sentence_marks():
    assert split_after(JA, SENTENCE_END) == [
        "今日はいい天気ですね。", "明日は雨が降るかもしれませんが、傘を持っていけば大丈夫でしょう！", "本当に？", "「はい。」",
    ]
    assert split_after("It is 3.14, or 1,000. Yes!", SENTENCE_END) == ["It is 3.14, or 1,000. ", "Yes!"]


def test_chunk_text_sentence_then_clause():
    chunks = chunk_text(JA, len, 30)
    assert all(len(c) <= 30 for c in chunks) and "".join(chunks) == JA
    # the long sentence is cut after 、 and no chunk ends mid-clause
    assert chunks[0].endswith("、") and all(c[-1] in "。！？、」" for c in chunks)
    assert chunk_text(JA, len, 1000) == [JA]
    # no punctuation at all: cut in the middle, preferring spaces
    assert chunk_text("aaaa bbbb cccc dddd", len, 10) == ["aaaa bbbb", "cccc dddd"]


def test_add_punctuation():
    assert add_punctuation(" こんにちは ") == "こんにちは。"
    assert add_punctuation("hello") == "hello."
    assert add_punctuation("本当？") == "本当？" and add_punctuation("「はい。」") == "「はい。」"


def test_batchify_budget():
    chunks = [[0] * n for n in (30, 5, 20, 10)]
    batches = batchify(chunks, max_duration=10.0, prompt_seconds=2.0, token_seconds=0.1)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    for b in batches:
        assert len(b) == 1 or sum(len(chunks[i]) * 0.1 + 2.0 for i in b) <= 10.0
    assert batches[0][0] == 1  # shortest first


def test_remove_silence():
    sr = 24000
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr).astype(np.float32)
    gap = np.zeros(3 * sr, dtype=np.float32)
    wav = np.concatenate([gap[:sr], tone, gap, tone, gap[: sr // 2]])
    out = remove_silence(wav, sr)
    # edges keep 0.1 s, the 3 s gap becomes 1 s
    assert abs(len(out) / sr - (0.1 + 1 + 1 + 1 + 0.1)) < 0.03
    edges_only = remove_silence(wav, sr, only_edge=True, trail_silence=0.2)
    assert abs(len(edges_only) / sr - (0.1 + 1 + 3 + 1 + 0.1 + 0.2)) < 0.03
    assert remove_silence(np.zeros(sr, dtype=np.float32), sr).size == 0


def test_loudness_round_trip():
    wav = np.full(100, 0.01, dtype=np.float32)
    louder, level = raise_to_rms(wav, 0.1)
    assert abs(rms(louder) - 0.1) < 1e-6 and abs(level - 0.01) < 1e-7
    assert np.allclose(restore_rms(louder, level, 0.1), wav)
    loud = np.full(100, 0.5, dtype=np.float32)
    assert np.array_equal(raise_to_rms(loud, 0.1)[0], loud)


def test_cross_fade():
    a, b = np.ones(1000, dtype=np.float32), np.zeros(1000, dtype=np.float32)
    out = cross_fade_concat([a, b], sr=1000, fade_seconds=0.1)
    assert len(out) == 1900 and out[0] == 1 and out[-1] == 0
    assert np.all(np.diff(out[900:1000]) <= 0)


def test_long_prompt_is_trimmed(tmp_path, caplog):
    import soundfile as sf
    from zipvoice_testlib import ZIPVOICE_TINY

    from shirabe.audio.fbank import VocosFbank
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.infer import SamplingOptions, prepare_prompt

    sr = 24000
    rng = np.random.default_rng(0)
    path = tmp_path / "long.wav"
    sf.write(path, (0.1 * rng.standard_normal(22 * sr)).astype(np.float32), sr)
    tok = get_tokenizer("simple", ZIPVOICE_TINY / "tokens.txt")
    with caplog.at_level(logging.WARNING):
        prompt = prepare_prompt(path, "aiueo" * 8, tok, VocosFbank(), SamplingOptions())
    assert prompt.seconds == pytest.approx(20.0)
    assert prompt.features.shape[1] == (20 * sr + 128) // 256
    assert len(prompt.tokens) == 37  # ceil(41 * 20 / 22.2)
    assert any("prompt is 22.2 s" in r.message for r in caplog.records)
