"""acestep.bin.prepare_accompaniment: pairs checked, 48 kHz stereo, −14 LUFS, common length, split, rejects."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from acestep.bin import prepare_accompaniment
from shirabe.cli import InputError


def tone(seconds, freq, sr, amp, channels=2):
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    sf.write(d / "a_vocal.wav", tone(2.0, 440, 48000, 0.05), 48000)
    sf.write(d / "a_inst.flac", tone(2.5, 110, 44100, 0.3, channels=1), 44100)  # mono, 44.1 kHz, longer
    (d / "a_prompt.txt").write_text("pop, piano")
    (d / "a_lyrics.txt").write_text("[verse]\nさくら")
    sf.write(d / "b_vocal.wav", tone(1.5, 330, 48000, 0.2), 48000)
    sf.write(d / "b_inst.wav", tone(1.5, 220, 48000, 0.2), 48000)
    (d / "b_prompt.txt").write_text("jazz")  # no lyrics file
    sf.write(d / "c_vocal.wav", tone(1.0, 330, 48000, 0.2), 48000)  # no inst
    (d / "c_prompt.txt").write_text("rock")
    (d / "d_vocal.wav").write_bytes(b"not audio at all")
    sf.write(d / "d_inst.wav", tone(1.0, 330, 48000, 0.2), 48000)
    (d / "d_prompt.txt").write_text("rock")
    sf.write(d / "e_vocal.wav", tone(1.0, 330, 48000, 0.2), 48000)
    sf.write(d / "e_inst.wav", tone(1.0, 330, 48000, 0.2), 48000)  # no prompt
    return d


def loudness(path):
    wav, sr = sf.read(path)
    return pyloudnorm.Meter(sr).integrated_loudness(wav)


def test_pairs_are_normalised_trimmed_split_and_bad_keys_listed(data, tmp_path):
    out = tmp_path / "out"
    assert prepare_accompaniment.main(["--data-dir", str(data), "--output-dir", str(out), "--num-test", "1",
                                       "--progress", "false"]) == 0
    # keys a, b, c, d, e: c (no inst) and e (no prompt) are incomplete; of a, b, d the last, d, is the test
    # key, and its vocal does not decode
    vocal, sr = sf.read(out / "train" / "vocal" / "a.flac")
    target, sr2 = sf.read(out / "train" / "target" / "a.flac")
    assert sr == sr2 == 48000 and vocal.shape == target.shape == (96000, 2)
    assert np.allclose(target[:, 0], target[:, 1])  # mono repeated
    assert loudness(out / "train" / "vocal" / "a.flac") == pytest.approx(-14.0, abs=0.3)
    assert loudness(out / "train" / "target" / "a.flac") == pytest.approx(-14.0, abs=0.3)
    assert (out / "train" / "target" / "a_lyrics.txt").read_text() == "[verse]\nさくら"
    assert (out / "train" / "vocal" / "b_lyrics.txt").read_text() == "[instrumental]"
    assert (out / "train" / "target" / "b_prompt.txt").read_text() == "jazz"
    rejects = (out / "rejects.txt").read_text().splitlines()
    assert sorted(r.split("\t")[0] for r in rejects) == ["c", "d", "e"]
    reasons = dict(r.split("\t") for r in rejects)
    assert "no file" in reasons["c"] and "d_vocal.wav" in reasons["d"] and "no prompt" in reasons["e"]
    assert not (out / "test").exists()
    # a second run keeps finished pairs untouched
    mtime = (out / "train" / "target" / "a.flac").stat().st_mtime_ns
    prepare_accompaniment.main(["--data-dir", str(data), "--output-dir", str(out), "--progress", "false",
                                "--num-test", "1"])
    assert (out / "train" / "target" / "a.flac").stat().st_mtime_ns == mtime


def test_levels_kept_with_loudness_none_and_mix_targets(data, tmp_path):
    import shutil

    shutil.copy(data / "b_inst.wav", data / "b_mix.wav")
    out = tmp_path / "out"
    prepare_accompaniment.main(["--data-dir", str(data), "--output-dir", str(out), "--loudness", "none",
                                "--output-type", "mix", "--num-test", "1", "--progress", "false"])
    # b is the only key with a mix, so it is the test key
    vocal, _ = sf.read(out / "test" / "vocal" / "b.flac")
    assert np.abs(vocal).max() == pytest.approx(0.2, abs=1e-3)
    assert (out / "test" / "target" / "b.flac").is_file()
    assert not (out / "train" / "target" / "a.flac").exists()  # a has no mix


def test_bad_options_are_one_line_errors(data, tmp_path):
    with pytest.raises(InputError, match="--loudness"):
        prepare_accompaniment.main(["--data-dir", str(data), "--output-dir", str(tmp_path), "--loudness", "loud"])
    with pytest.raises(InputError, match="no such data folder"):
        prepare_accompaniment.main(["--data-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path)])
