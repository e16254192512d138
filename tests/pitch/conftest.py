"""Pitch tests run torch on one thread (see ``one_torch_thread``)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small models on a shared 2-core machine: one intra-op thread avoids OpenMP stalls
    (two threads ran these models 10-100x slower when other jobs held the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
