"""extract_f0 with WORLD Harvest: true-rate resampling, frame counts, the CLI."""

import numpy as np
import pytest
import soundfile as sf

from shirabe.bin.extract_f0 import main
from shirabe.cli import InputError
from shirabe.pitch import SEEDVC_MEL_FPS, extract_f0, num_frames


def glide(sr: int, seconds: float = 1.0, f_start: float = 200.0, octaves_per_s: float = 0.5):
    """A harmonic tone gliding up ``octaves_per_s``; returns (audio, f0 function of time)."""
    t = np.arange(int(seconds * sr)) / sr
    f = f_start * 2.0 ** (octaves_per_s * t)
    phase = 2 * np.pi * np.cumsum(f) / sr
    audio = sum(0.3 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)
    return audio, lambda tt: f_start * 2.0 ** (octaves_per_s * tt)


def cents(a, b):
    return 1200.0 * np.log2(a / b)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_harvest_follows_a_glide_at_any_input_rate(sr):
    audio, truth = glide(sr)
    f0 = extract_f0(audio, sr, "harvest")
    assert len(f0) == 101  # 1 s at 100 frames/s, frame t at t/100 s
    inner = np.arange(5, 96)
    assert (f0[inner] > 0).all()
    err = np.abs(cents(f0[inner], truth(inner / 100.0)))
    assert np.median(err) < 5.0 and err.max() < 50.0


def test_declared_rate_matters():
    # Declaring 44.1 kHz audio as 22.05 kHz halves every frequency (an octave down).
    audio, _ = glide(44100, f_start=300.0, octaves_per_s=0.0)
    right = extract_f0(audio, 44100, "harvest")
    wrong = extract_f0(audio, 22050, "harvest")
    voiced = (right > 0)[:40] & (wrong > 0)[:40]
    assert np.median(cents(wrong[:40][voiced], right[:40][voiced])) == pytest.approx(-1200.0, abs=10.0)


def test_other_frame_rates():
    audio, truth = glide(24000)
    f0 = extract_f0(audio, 24000, "harvest", frame_rate=SEEDVC_MEL_FPS)
    assert len(f0) == num_frames(16000, SEEDVC_MEL_FPS) == 87
    inner = np.arange(5, 80)
    assert np.median(np.abs(cents(f0[inner], truth(inner / SEEDVC_MEL_FPS)))) < 5.0
    f0_200 = extract_f0(audio, 24000, "harvest", frame_rate=200.0)
    assert len(f0_200) == 201


def test_unvoiced_stays_zero():
    sr = 16000
    audio, _ = glide(sr)
    audio[int(0.4 * sr) : int(0.6 * sr)] = 0.0
    f0 = extract_f0(audio, sr, "harvest")
    assert (f0[43:57] == 0).all() and (f0[20:35] > 0).all() and (f0[65:90] > 0).all()


def test_cli_writes_npy(tmp_path):
    audio, _ = glide(22050, seconds=0.5)
    wav = tmp_path / "a.wav"
    sf.write(wav, audio, 22050, subtype="FLOAT")
    out = tmp_path / "sub" / "a.f0.npy"
    assert main(["--input", str(wav), "--output", str(out), "--f0-method", "harvest"]) == 0
    f0 = np.load(out)
    np.testing.assert_array_equal(f0, extract_f0(audio, 22050, "harvest"))
    assert not list(out.parent.glob("*.tmp*"))


def test_cli_bad_input(tmp_path):
    with pytest.raises(InputError, match="missing.wav"):
        main(["--input", str(tmp_path / "missing.wav"), "--output", str(tmp_path / "x.npy")])
    wav = tmp_path / "b.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    with pytest.raises(InputError, match="--rmvpe-model"):
        main(["--input", str(wav), "--output", str(tmp_path / "x.npy"), "--f0-method", "rmvpe"])
    with pytest.raises(SystemExit):
        main(["--input", str(wav), "--output", str(tmp_path / "x.npy"), "--f0-method", "yin"])
