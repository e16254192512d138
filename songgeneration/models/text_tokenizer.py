"""The Qwen2 text tokenizer of the lyric and description conditioners.

Only the tokenizer of Qwen2-7B is used (never its language-model weights): a byte-level BPE with
151,643 ranks plus three added specials, 151643 ``<|endoftext|>`` (also the padding id),
151644 ``<|im_start|>`` and 151645 ``<|im_end|>``: 151,646 ids. It is read from a local folder
(``vocab.json`` + ``merges.txt`` + ``tokenizer_config.json``, or ``tokenizer.json``) with
transformers' ``AutoTokenizer``; nothing is downloaded.

:func:`write_qwen2_tokenizer_dir` builds such a folder from a ``qwen.tiktoken`` rank file (the
same BPE in tiktoken's format: one ``base64(token) rank`` per line, as shipped for instance in the
``dashscope`` wheel): the vocabulary is the ranks with bytes spelled through the byte-level
alphabet, and each multi-byte token's merge is the last step of BPE restricted to lower ranks.
"""

from __future__ import annotations

import base64
import json
import os
from functools import lru_cache
from pathlib import Path

from shirabe.cli import InputError

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_PAD_ID = 151643
QWEN_IM_START = "<|im_start|>"
QWEN_BASE_VOCAB = 151646  # 151,643 BPE ranks + the three specials


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """The byte-level BPE alphabet: every byte as one printable character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def read_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such tiktoken rank file")
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise InputError(f"{path}:{n}: expected 'base64-token rank'")
        ranks[base64.b64decode(parts[0])] = int(parts[1])
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise InputError(f"{path}: ranks are not 0..{len(ranks) - 1} without gaps")
    return ranks


def _last_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """The two parts BPE joins last when it builds ``token`` from ranks below its own."""
    limit = ranks[token]
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, where = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < limit and (best is None or r < best):
                best, where = r, i
        if best is None:
            break
        parts[where:where + 2] = [parts[where] + parts[where + 1]]
    if len(parts) != 2:
        raise InputError(f"token {token!r} (rank {limit}) cannot be built from two lower-rank tokens")
    return parts[0], parts[1]


def write_qwen2_tokenizer_dir(tiktoken_path: str | Path, out_dir: str | Path) -> Path:
    """A transformers ``Qwen2Tokenizer`` folder (vocab.json, merges.txt, tokenizer_config.json)."""
    ranks = read_tiktoken_ranks(tiktoken_path)
    alpha = byte_alphabet()

    def spell(b: bytes) -> str:
        return "".join(alpha[x] for x in b)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(ranks, key=ranks.__getitem__)
    vocab = {spell(t): ranks[t] for t in ordered}
    merges = ["#version: 0.2"]
    for t in ordered:
        if len(t) > 1:
            a, b = _last_merge(ranks, t)
            merges.append(f"{spell(a)} {spell(b)}")
    n = len(ranks)
    specials = {str(n + i): {"content": s, "lstrip": False, "rstrip": False, "normalized": False,
                             "single_word": False, "special": True} for i, s in enumerate(QWEN_SPECIALS)}
    config = {"tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": specials,
              "additional_special_tokens": list(QWEN_SPECIALS[1:]), "bos_token": None,
              "eos_token": QWEN_SPECIALS[0], "pad_token": QWEN_SPECIALS[0], "unk_token": None,
              "errors": "replace", "clean_up_tokenization_spaces": False, "split_special_tokens": False,
              "model_max_length": 32768, "padding_side": "right"}
    for name, text in (("vocab.json", json.dumps(vocab, ensure_ascii=False)),
                       ("merges.txt", "\n".join(merges) + "\n"),
                       ("tokenizer_config.json", json.dumps(config, ensure_ascii=False, indent=1))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
    return out


def load_text_tokenizer(folder: str | Path):
    """The Qwen2 tokenizer from a local folder (one-line error when it is missing or unreadable)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: Qwen2 tokenizer folder not found (token_path)")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises many types for a broken folder
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{folder}: not a readable tokenizer folder ({reason})") from None
    if tok.convert_tokens_to_ids(QWEN_SPECIALS[0]) != QWEN_PAD_ID or len(tok) != QWEN_BASE_VOCAB:
        raise InputError(f"{folder}: not the Qwen2 tokenizer ({len(tok)} ids, expected {QWEN_BASE_VOCAB} with "
                         f"{QWEN_SPECIALS[0]} = {QWEN_PAD_ID})")
    return tok
