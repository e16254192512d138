"""Fixtures of the evaluation tests of zipvoice.bin: a tiny random-weight Whisper (tests/eval/whisper_testlib.py;
the mini speech corpus is in tests/conftest.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from whisper_testlib import build_tiny_whisper  # noqa: E402


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield
