"""Torch runs on one thread in this directory (see tests/conftest.py); a tiny random-weight
Whisper for the ASR tests (whisper_testlib.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whisper_testlib import build_tiny_whisper  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))
