"""Shared fixture for the ZipVoice training tests: a tiny corpus, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from zipvoice_train_testlib import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return make_corpus(tmp_path_factory.mktemp("zipvoice_train_corpus"))
