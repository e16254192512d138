"""Synthetic prepared data and train configs for the SongGeneration training tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

FRAMES = (60, 84, 100, 120)
PROMPT_FRAMES = 25  # the tiny fixture's prompt_len is 1 s
LYRICS = ("[verse] hello world. ; [chorus] la la la.", "[intro-short] ; [verse] one two three.",
          "[chorus] sing along.", "[verse] night sky. ; [bridge] slow down.")
DESCRIPTIONS = ("female, pop, happy", "male, rock", "piano, calm", "electronic, drums")


def song_tokens(i: int, frames: int) -> np.ndarray:
    """A structured [3, frames] song: cycles over 16 ids per stream, one phase per song."""
    t = np.arange(frames)
    mixed = (3 * t + i) % 16
    return np.stack([mixed, mixed + 16, (mixed * 5) % 16 + 32]).astype(np.int64)


def write_prepared(folder: Path, frames=FRAMES, prompt_frames: int = PROMPT_FRAMES, without_prompt=(3,)) -> Path:
    """``manifest.jsonl`` + ``tokens/`` + ``prompt/`` in the pinned prepared-data format."""
    (folder / "tokens").mkdir(parents=True, exist_ok=True)
    (folder / "prompt").mkdir(exist_ok=True)
    lines = []
    for i, n in enumerate(frames):
        idx = f"song{i}"
        tokens = song_tokens(i, n)
        np.save(folder / "tokens" / f"{idx}.npy", tokens)
        prompt = None
        if i not in without_prompt:
            prompt = f"prompt/{idx}.npy"
            np.save(folder / prompt, np.tile(tokens, (1, prompt_frames // n + 1))[:, :prompt_frames])
        lines.append(json.dumps({"idx": idx, "tokens": f"tokens/{idx}.npy", "prompt": prompt, "frames": n,
                                 "duration": (n - 1) / 25, "gt_lyric": LYRICS[i % 4],
                                 "descriptions": DESCRIPTIONS[i % 4]}))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_train_config(path: Path, base: Path, prepared: Path, output: Path, tokenizer: Path, **training) -> Path:
    t = {"type": "full", "max_steps": 12, "batch_size": 2, "learning_rate": 1e-2, "weight_decay": 0.0,
         "warmup_steps": 2, "precision": "float32", "gradient_checkpointing": False, "save_every_n": 4, "seed": 0}
    t.update(training)
    config = {"paths": {"base_model_path": str(base), "tokenizer": "mini", "audio_tokenizer_path": "unused.pt",
                        "metadata_path": "metadata.jsonl", "prepared_data_dir": str(prepared),
                        "output_dir": str(output), "text_tokenizer_path": str(tokenizer)},
              "data": {"prompt_seconds": 1.0},
              "training": t, "lora": {"r": 4, "alpha": 8.0, "dropout": 0.0}}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def shared_qwen_dir(tmp_path_factory) -> Path:
    """One Qwen2 tokenizer folder per test session (built on first use; skipped without qwen.tiktoken)."""
    from songgen_testlib import qwen_tiktoken

    from songgeneration.models.text_tokenizer import write_qwen2_tokenizer_dir

    folder = tmp_path_factory.getbasetemp() / "songgen_train_qwen2"
    if not (folder / "tokenizer_config.json").is_file():
        src = qwen_tiktoken()
        if src is None:
            import pytest

            pytest.skip("no qwen.tiktoken (pip install --no-deps dashscope, or set SHIRABE_QWEN_TIKTOKEN)")
        write_qwen2_tokenizer_dir(src, folder)
    return folder
