"""Whisper transcription plumbing on a tiny random-weight model built offline."""

import numpy as np
import pytest
import torch

from shirabe.cli import InputError
from shirabe.eval.asr import WhisperASR


def reference_greedy(model, tokenizer, features, prompt, suppress, eot, max_new):
    """Greedy decoding recomputing the whole decoder input at every step (no cache)."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(input_features=features, decoder_input_ids=torch.tensor([ids])).logits[0, -1].clone()
            logits[suppress] = -float("inf")
            token = int(logits.argmax())
            if token == eot:
                break
            ids.append(token)
    return ids[len(prompt):]


def test_greedy_decoding_matches_an_uncached_reference(tiny_whisper_dir):
    asr = WhisperASR(tiny_whisper_dir, language="ja", max_new_tokens=12)
    tok = asr.processor.tokenizer
    assert asr.prompt == tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|ja|>", "<|transcribe|>", "<|notimestamps|>"])
    audio = 0.1 * np.random.default_rng(0).standard_normal(24000).astype(np.float32)  # 1 s at 24 kHz
    feats = asr.features(audio, 24000)
    assert feats.shape == (1, 80, 3000)
    ids = asr.decode_ids(feats)
    expected = reference_greedy(asr.model, tok, feats, asr.prompt, asr.suppress, asr.eot, 12)
    assert ids and ids == expected
    assert all(i < 256 for i in ids)  # special tokens are never emitted
    text = asr.transcribe(audio, 24000)
    assert isinstance(text, str) and text == tok.decode(ids, skip_special_tokens=True).strip()


def test_missing_or_wrong_model_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="no such ASR model directory"):
        WhisperASR(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a Whisper model directory"):
        WhisperASR(tmp_path / "empty")
