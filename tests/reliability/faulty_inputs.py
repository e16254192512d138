"""Audio files for the fault tests of the data-preparation binaries: two good ones, and one of each
fault: random bytes named .wav, an empty (0 byte) file, a valid but all-zero (silent) wav, and a
good recording at 8 kHz where 24 kHz (or 22.05 kHz) is expected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
RATE = 24000
LOW_RATE = 8000
GOOD = ("good_a", "good_b")
BAD = ("corrupt", "empty", "silent")
WRONG_RATE = "lowrate"
SECONDS = {"good_a": 1.0, "good_b": 1.2, "silent": 1.0, WRONG_RATE: 1.1}


def voiced(seconds: float, sr: int, f0: float) -> np.ndarray:
    """A harmonic tone (a sung vowel, for F0 trackers) with a short fade in and out."""
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(0.25 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (wave * fade).astype(np.float32)


def make_audio(d: Path, seed: int = 0) -> dict[str, Path]:
    """Write the six files under ``d``; returns {name: path}."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {name: d / f"{name}.wav" for name in (*GOOD, *BAD, WRONG_RATE)}
    sf.write(paths["good_a"], voiced(SECONDS["good_a"], RATE, 180.0), RATE)
    sf.write(paths["good_b"], voiced(SECONDS["good_b"], RATE, 240.0), RATE)
    paths["corrupt"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    paths["empty"].write_bytes(b"")
    sf.write(paths["silent"], np.zeros(int(SECONDS["silent"] * RATE), np.float32), RATE)
    sf.write(paths[WRONG_RATE], voiced(SECONDS[WRONG_RATE], LOW_RATE, 200.0), LOW_RATE)
    return paths


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a rejects file; every line must have as many fields as the header."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path}: no final newline"
    header, *rows = (line.split("\t") for line in lines[:-1])
    assert all(len(r) == len(header) for r in rows), rows
    return header, rows


def run(module: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "TQDM_DISABLE": "1"})


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The error line of a run that failed the way bad input should: exit 2, one ``error:`` line, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == r.stderr.strip().splitlines()[-1], r.stderr[-2000:]
    return errors[0]
