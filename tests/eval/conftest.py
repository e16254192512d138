"""Torch runs on one thread in this directory (see tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield
