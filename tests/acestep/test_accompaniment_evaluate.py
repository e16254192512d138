"""acestep.bin.evaluate_accompaniment: per-system metric table in RESULTS.md, the reference row, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from acestep.bin import evaluate_accompaniment
from shirabe.cli import InputError

SR = 22050


def clicks(seconds, period, sr=SR, freq=1000.0):
    y = np.zeros(int(seconds * sr))
    t = np.arange(int(0.03 * sr)) / sr
    burst = np.sin(2 * np.pi * freq * t) * np.exp(-t * 80)
    for start in np.arange(0.25, seconds - 0.1, period):
        i = int(start * sr)
        y[i:i + len(burst)] += burst
    return 0.5 * y


def test_table_rows_per_system_and_reference(tmp_path):
    vocals, refs, good, bad = (tmp_path / d for d in ("vocals", "refs", "good", "bad"))
    for d in (vocals, refs, good, bad):
        d.mkdir()
    rng = np.random.default_rng(0)
    for key in ("s1", "s2"):
        vocal = clicks(6.0, 0.5, freq=600.0)
        sf.write(vocals / f"{key}.flac", vocal, SR)
        sf.write(refs / f"{key}.flac", clicks(6.0, 0.5), SR)
        sf.write(good / f"{key}_accompaniment.flac", clicks(6.0, 0.5) + 0.001 * rng.standard_normal(6 * SR), SR)
        sf.write(bad / f"{key}_accompaniment.flac", 0.2 * rng.standard_normal(6 * SR) + 0.8 * vocal, SR)
    results = tmp_path / "RESULTS.md"
    assert evaluate_accompaniment.main(["--systems", f"good={good}", f"bad={bad}", "--vocals", str(vocals),
                                        "--references", str(refs), "--results", str(results),
                                        "--note", "toy signals", "--progress", "false"]) == 0
    text = results.read_text()
    rows = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert set(rows) == {"system", "good", "bad", "reference"}
    assert "toy signals" in text
    values = json.loads((tmp_path / "RESULTS_accompaniment_metrics.json").read_text())
    good_s, bad_s = values["good"]["summary"], values["bad"]["summary"]
    # the clean click track sits on the vocal's beat and near the reference; the noisy one leaks the vocal
    assert good_s["mel_distance_db"]["mean"] < bad_s["mel_distance_db"]["mean"]
    assert good_s["vocal_leakage_db"]["mean"] < bad_s["vocal_leakage_db"]["mean"]
    assert values["reference"]["summary"]["mel_distance_db"]["mean"] == pytest.approx(0.0, abs=1e-6)
    # running again replaces the section instead of adding one
    evaluate_accompaniment.main(["--systems", f"good={good}", "--vocals", str(vocals), "--results", str(results),
                                 "--progress", "false"])
    assert results.read_text().count("<!-- begin: accompaniment metrics -->") == 1


def test_bad_systems_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="NAME=DIR"):
        evaluate_accompaniment.main(["--systems", "nodir", "--vocals", str(tmp_path), "--results",
                                     str(tmp_path / "R.md")])
    with pytest.raises(InputError, match="not found"):
        evaluate_accompaniment.main(["--systems", f"x={tmp_path / 'none'}", "--vocals", str(tmp_path),
                                     "--results", str(tmp_path / "R.md")])
