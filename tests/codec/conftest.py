"""Fixtures for the codec tests: the tiny Oobleck VAE and the SongBloom bundle.

The fixture folders are read from ``$SHIRABE_FIXTURES`` (default ``tests/fixtures``);
file names are found in the folders, not assumed.
"""

import os
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES") or Path(__file__).resolve().parent.parent / "fixtures")


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {[p.name for p in found]}"
    return found[0]


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def tiny_files() -> tuple[Path, Path]:
    """(vae json, vae checkpoint) of ``oobleck_vae_tiny``."""
    folder = FIXTURES / "oobleck_vae_tiny"
    return _only(folder, "*.json"), _only(folder, "*.ckpt")


@pytest.fixture(scope="session")
def tiny_cases() -> dict[str, np.ndarray]:
    return _npz(_only(FIXTURES / "oobleck_vae_tiny", "*.npz"))


@pytest.fixture(scope="session")
def tiny_vae(tiny_files):
    from shirabe.codec import load_vae

    return load_vae(*tiny_files)


@pytest.fixture(scope="session")
def songbloom_files() -> dict[str, Path]:
    """``songbloom_tiny``: the bundled VAE json/ckpt, the model ``.pt`` and the cases."""
    folder = FIXTURES / "songbloom_tiny"
    return {"json": _only(folder, "*.json"), "ckpt": _only(folder, "*.ckpt"), "pt": _only(folder, "*.pt"),
            "cases": _only(folder, "*.npz")}


@pytest.fixture(scope="session")
def songbloom_cases(songbloom_files) -> dict[str, np.ndarray]:
    return _npz(songbloom_files["cases"])


@pytest.fixture(scope="session")
def full_keys_tsv() -> Path:
    return FIXTURES / "songbloom_full_keys.tsv"
