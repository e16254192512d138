"""Shared fixtures for the ZipVoice tests: the tiny upstream-format models and their cases."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from zipvoice_testlib import ZIPVOICE_TINY, load_cases


@pytest.fixture(scope="session")
def tiny_model():
    from zipvoice.models import load_model

    return load_model(ZIPVOICE_TINY, "model.pt", "zipvoice")


@pytest.fixture(scope="session")
def tiny_distill():
    from zipvoice.models import load_model

    return load_model(ZIPVOICE_TINY, "model_distill.pt", "zipvoice_distill", config_name="model_distill.json")


@pytest.fixture(scope="session")
def cases():
    return load_cases("cases.npz")


@pytest.fixture(scope="session")
def cases_distill():
    return load_cases("cases_distill.npz")


@pytest.fixture(scope="session")
def prompt_wav(tmp_path_factory) -> Path:
    """1.2 s of a voiced-like tone with a little silence at both ends, 16 kHz (resampled by the CLI)."""
    sr = 16000
    t = np.arange(int(1.2 * sr)) / sr
    tone = 0.05 * np.sin(2 * np.pi * (140 + 40 * t) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    wav = np.concatenate([np.zeros(sr // 10), tone, np.zeros(sr // 5)]).astype(np.float32)
    path = tmp_path_factory.mktemp("prompt") / "prompt.wav"
    sf.write(path, wav, sr)
    return path


@pytest.fixture(autouse=True)
def _restore_threads():
    """The CLI sets the thread count; keep the test process as it was."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
