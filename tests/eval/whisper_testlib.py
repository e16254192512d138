"""A tiny random-weight Whisper written offline, for the ASR and evaluation tests."""

import json
from pathlib import Path

import torch

WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|ja|>", "<|transcribe|>", "<|translate|>",
                    "<|notimestamps|>"]


def byte_level_alphabet() -> list[str]:
    """The 256 printable characters a byte-level BPE uses for the bytes 0..255 (GPT-2's scheme:
    printable Latin-1 bytes stand for themselves, the others are moved to U+0100 onwards)."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, shifted = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(256 + shifted))
            shifted += 1
    return out


def build_tiny_whisper(out_dir: Path, seed: int = 0) -> Path:
    """A random-weight Whisper (about 40k parameters) with a byte-level tokenizer, written offline.

    No pretrained tokenizer files are available here, so the tokenizer is built from scratch:
    a vocabulary of the 256 byte symbols (any UTF-8 text, Japanese included, encodes byte by
    byte), no merges, and Whisper's special tokens (end-of-text, start-of-transcript, <|ja|>,
    task and no-timestamps) appended after them.
    """
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = {ch: i for i, ch in enumerate(byte_level_alphabet())}
    for s in WHISPER_SPECIALS:
        vocab[s] = len(vocab)
    src = out_dir / "src"
    src.mkdir(exist_ok=True)
    (src / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (src / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    eot = "<|endoftext|>"
    tokenizer = WhisperTokenizer(str(src / "vocab.json"), str(src / "merges.txt"), unk_token=eot, bos_token=eot,
                                 eos_token=eot, pad_token=eot)
    tokenizer.add_special_tokens({"additional_special_tokens": WHISPER_SPECIALS[1:]})
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(out_dir)
    config = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=64, decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=vocab[eot], pad_token_id=vocab[eot], bos_token_id=vocab[eot],
    )
    torch.manual_seed(seed)
    WhisperForConditionalGeneration(config).save_pretrained(out_dir)
    return out_dir
