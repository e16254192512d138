"""Audio load/save in wav, flac and mp3; resampling."""

import numpy as np
import pytest
import soundfile as sf

from shirabe.audio import load_audio, resample, save_audio
from shirabe.cli import InputError


def tone(freq=440.0, sr=24000, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


@pytest.mark.parametrize("ext,tol", [("wav", 1e-4), ("flac", 1e-4)])
def test_lossless_roundtrip(tmp_path, ext, tol):
    x = tone()
    path = save_audio(tmp_path / f"a.{ext}", x, 24000)
    info = sf.info(str(path))
    assert info.format == ext.upper() and info.subtype == "PCM_16" and info.samplerate == 24000
    y, sr = load_audio(path)
    assert sr == 24000 and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < tol


def test_mp3_is_real_mp3_and_keeps_the_tone(tmp_path):
    x = tone(sr=48000, seconds=1.0)
    path = save_audio(tmp_path / "a.mp3", x, 48000)
    head = path.read_bytes()[:3]
    assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MPEG frame sync
    assert sf.info(str(path)).format == "MP3"
    y, sr = load_audio(path)
    assert sr == 48000 and abs(len(y) - len(x)) < 2400
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 48000 / len(y)
    assert abs(peak_hz - 440.0) < 3


def test_stereo_kept_or_downmixed(tmp_path):
    x = tone(channels=2)
    x[:, 1] *= 0.5
    path = save_audio(tmp_path / "s.wav", x, 24000)
    st, _ = load_audio(path, mono=False)
    mono, _ = load_audio(path)
    assert st.shape == x.shape
    np.testing.assert_allclose(mono, x.mean(axis=1), atol=1e-4)


def test_load_resamples(tmp_path):
    path = save_audio(tmp_path / "a.wav", tone(freq=1000, sr=48000), 48000)
    y, sr = load_audio(path, sr=16000)
    assert sr == 16000 and abs(len(y) - 8000) <= 1
    peak_hz = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak_hz - 1000) < 5


def test_resample_same_rate_is_identity_and_2d():
    x = tone(channels=2)
    np.testing.assert_array_equal(resample(x, 24000, 24000), x)
    assert resample(x, 24000, 12000).shape == (6000, 2)


def test_save_is_atomic_and_clips(tmp_path):
    x = np.array([2.0, -2.0, 0.5], dtype=np.float32)
    path = save_audio(tmp_path / "sub" / "c.wav", x, 8000)
    y, _ = load_audio(path)
    assert y.max() <= 1.0 and y.min() >= -1.0 and abs(y[2] - 0.5) < 1e-3
    assert [p.name for p in path.parent.iterdir()] == ["c.wav"]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(InputError, match="bad.wav"):
        load_audio(bad)
    with pytest.raises(InputError, match=r"\.ogg"):
        save_audio(tmp_path / "x.ogg", tone(), 24000)


def test_saved_audio_gets_the_usual_file_mode(tmp_path):
    import os
    import stat

    import numpy as np

    from shirabe.audio import save_audio

    mask = os.umask(0o022)
    try:
        path = save_audio(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
