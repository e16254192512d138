"""A small speech corpus from the mini-corpus builder, built once per test session."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
# The same arguments in tests/eval/conftest.py: the builder skips a finished part, so
# whichever directory runs first builds it and the other reuses it.
CORPUS_ARGS = ["--parts", "speech", "--num-speakers", "4", "--sentences-per-speaker", "2", "--no-progress"]


@pytest.fixture(scope="session")
def speech_by_speaker(tmp_path_factory) -> dict[str, list[Path]]:
    out = tmp_path_factory.getbasetemp() / "mini_speech_corpus"
    subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_corpus.py"), "--output-dir", str(out), *CORPUS_ARGS],
                   check=True, capture_output=True)
    wavs = sorted((out / "speech" / "wavs").glob("*/*.wav"))
    by_speaker: dict[str, list[Path]] = {}
    for w in wavs:
        by_speaker.setdefault(w.parent.name, []).append(w)
    assert len(by_speaker) == 4 and all(len(v) == 2 for v in by_speaker.values())
    return by_speaker


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small models on a shared 2-core machine: one intra-op thread avoids OpenMP stalls
    (two threads ran these models 10-100x slower when other jobs held the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
