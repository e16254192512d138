"""Paths and helpers shared by the ZipVoice tests."""

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ZIPVOICE_TINY = FIXTURES / "zipvoice_tiny"
VOCOS_TINY = FIXTURES / "vocos_tiny"
TOLERANCE = 1e-4


def unpad(rows: np.ndarray) -> list[list[int]]:
    """Ragged token lists stored padded with -1."""
    return [[int(v) for v in row if v != -1] for row in rows]


def load_cases(name: str) -> dict[str, np.ndarray]:
    with np.load(ZIPVOICE_TINY / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
