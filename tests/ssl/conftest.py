"""Shared fixtures of the MuQ tests: the tiny random-weight checkpoint and its reference cases."""

import numpy as np
import pytest
from muq_testlib import MUQ_FIXTURE

from shirabe.ssl import load_muq


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield


@pytest.fixture(scope="module")
def muq():
    return load_muq(MUQ_FIXTURE)


@pytest.fixture(scope="module")
def cases():
    with np.load(MUQ_FIXTURE / "cases.npz") as data:
        return {k: data[k] for k in data.files}
