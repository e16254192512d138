"""Shared fixtures for the vocoder and Vocos fbank tests."""

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VOCOS_TINY = FIXTURES / "vocos_tiny"


@pytest.fixture(scope="session")
def vocos_cases():
    with np.load(VOCOS_TINY / "cases.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def tiny_vocos():
    from shirabe.vocoder import load_vocos

    return load_vocos(VOCOS_TINY / "config.yaml", VOCOS_TINY / "pytorch_model.bin")
