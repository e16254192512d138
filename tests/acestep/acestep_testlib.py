"""Small stand-ins shared by the ACE-Step tests (built by :mod:`acestep.standins`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from acestep.standins import TINY_TRANSFORMER, UMT5_DIM, write_transformer, write_umt5

TINY_UMT5_DIM = UMT5_DIM
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
__all__ = ["TINY_TRANSFORMER", "TINY_UMT5_DIM", "make_tiny_checkpoint", "make_tiny_transformer", "make_tiny_umt5"]


def make_tiny_umt5(folder: Path, seed: int = 0, num_layers: int = 2) -> Path:
    """A random-weight UMT5 encoder (d_model 768, few small layers) + a word-level fast tokenizer."""
    return write_umt5(Path(folder), seed, num_layers)


def make_tiny_transformer(folder: Path, seed: int = 0, **overrides) -> Path:
    """A random-weight transformer folder (released layout) that takes the real lyric vocabulary's ids."""
    return write_transformer(Path(folder), seed, **overrides)


def make_tiny_checkpoint(root: Path, seed: int = 0) -> Path:
    """A checkpoint folder in the released layout: ``ace_step_transformer/``, ``music_dcae_f8c8/``,
    ``music_vocoder/`` (the tiny DCAE fixture) and ``umt5-base/`` (tiny)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    make_tiny_transformer(root / "ace_step_transformer", seed)
    for name in ("music_dcae_f8c8", "music_vocoder"):
        shutil.copytree(FIXTURES / "acestep_dcae_tiny" / name, root / name, dirs_exist_ok=True)
        for p in (root / name).iterdir():
            p.chmod(0o644)
    make_tiny_umt5(root / "umt5-base", seed)
    return root
