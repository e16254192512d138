"""Fixtures shared by several test directories."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SPEECH_CORPUS_ARGS = ["--parts", "speech", "--num-speakers", "4", "--sentences-per-speaker", "2", "--no-progress", "true"]


@pytest.fixture(scope="module")
def single_torch_thread():
    """One intra-op thread while a module runs: small models on a shared 2-core machine ran
    10-100x slower with two threads when other jobs held the cores (OpenMP stalls)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mini_speech(tmp_path_factory) -> Path:
    """``speech/`` of a mini corpus (4 voices x 2 sentences: TSVs and wavs), built once per session."""
    out = tmp_path_factory.getbasetemp() / "mini_speech_corpus"
    subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_corpus.py"), "--output-dir", str(out),
                    *SPEECH_CORPUS_ARGS], check=True, capture_output=True)
    return out / "speech"


@pytest.fixture(scope="session")
def speech_by_speaker(mini_speech) -> dict[str, list[Path]]:
    """The wavs of :func:`mini_speech` by voice: {voice: [wav, wav]}."""
    by_speaker: dict[str, list[Path]] = {}
    for w in sorted((mini_speech / "wavs").glob("*/*.wav")):
        by_speaker.setdefault(w.parent.name, []).append(w)
    assert len(by_speaker) == 4 and all(len(v) == 2 for v in by_speaker.values())
    return by_speaker
