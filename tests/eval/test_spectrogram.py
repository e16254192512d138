"""shirabe.bin.plot_spectrograms: panels of log-mel spectrograms in one PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SR = 24000


def tone(path: Path, f0: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.2 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), SR)
    return path


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shirabe.bin.plot_spectrograms", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_log_mel_puts_a_tone_in_the_right_band(tmp_path):
    from shirabe.eval.spectrogram import log_mel

    low, high = log_mel(tone(tmp_path / "low.wav", 200.0)), log_mel(tone(tmp_path / "high.wav", 4000.0))
    assert low.shape == (100, 1 + SR // 256)
    # Vocos mel: 100 triangular filters evenly spaced on the HTK mel scale between 0 and 12 kHz
    def htk(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    spacing = htk(12000.0) / 101  # filter i (0-based) peaks at (i + 1) * spacing
    for mel, f in ((low, 200.0), (high, 4000.0)):
        expected = htk(f) / spacing - 1
        assert abs(int(np.argmax(mel.mean(axis=1))) - expected) <= 1.0


def test_two_panels_in_one_png(tmp_path):
    low, high = tone(tmp_path / "low.wav", 200.0), tone(tmp_path / "high.wav", 4000.0)
    out = tmp_path / "spec.png"
    r = run("--wav", low, "--label", "200 Hz", "--wav", high, "--label", "4 kHz", "--title", "録音と合成", "--output", out)
    assert r.returncode == 0, r.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1] == 900  # 9 inches wide at 100 dpi
    assert abs(image.shape[0] - 100 * (2.3 * 2 + 0.5)) <= 2
    assert "wrote" in r.stderr and "(2 panels)" in r.stderr


def test_label_count_must_match(tmp_path):
    a = tone(tmp_path / "a.wav", 300.0)
    r = run("--wav", a, "--wav", a, "--label", "only one", "--output", tmp_path / "x.png")
    assert r.returncode == 2
    assert "--label given 1 times for 2 --wav" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_missing_wav_is_a_one_line_error(tmp_path):
    r = run("--wav", tmp_path / "nope.wav", "--output", tmp_path / "x.png")
    assert r.returncode == 2
    assert f"{tmp_path / 'nope.wav'}: no such file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("n", [1, 3])
def test_any_number_of_panels(tmp_path, n):
    wavs = [tone(tmp_path / f"{i}.wav", 300.0 * (i + 1)) for i in range(n)]
    out = tmp_path / "spec.png"
    r = run(*[x for w in wavs for x in ("--wav", w)], "--output", out)
    assert r.returncode == 0, r.stderr
    h = Image.open(out).size[1]
    assert h == pytest.approx(100 * (2.3 * n + 0.5), abs=2)
