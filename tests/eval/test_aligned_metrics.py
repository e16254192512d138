"""DTW-aligned MCD and log-F0 metrics on synthetic voices with known pitch and timing."""

import numpy as np
import pytest

from shirabe.eval.aligned import compare_to_reference
from shirabe.eval.mcd import mcd_dtw

SR = 24000
SEMITONE_CENTS = 100.0


def voice(seconds, f0_lo, f0_hi, formant_lo, formant_hi):
    """A harmonic voice whose F0 glides (geometrically) and whose formant sweeps over its length."""
    n = int(seconds * SR)
    u = np.linspace(0, 1, n)
    f0 = f0_lo * (f0_hi / f0_lo) ** u
    phase = 2 * np.pi * np.cumsum(f0) / SR
    formant = formant_lo + (formant_hi - formant_lo) * u
    x = np.zeros(n)
    for k in range(1, 40):
        amp = np.exp(-(((k * f0 - formant) / 300.0) ** 2)) + 0.3 * np.exp(-(((k * f0 - 2500) / 400.0) ** 2))
        x += np.where(k * f0 < SR / 2 - 500, amp, 0.0) * np.sin(k * phase) / np.sqrt(k)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def ref():
    return voice(1.0, 150, 250, 400, 1600)


def test_identical_recordings(ref):
    m = compare_to_reference(ref, ref, SR)
    assert m["mcd"] == 0.0 and m["f0_rmse_cents"] == 0.0 and m["vuv_error"] == 0.0
    assert m["log_f0_corr"] == pytest.approx(1.0)


def test_slower_and_a_semitone_higher(ref):
    """The same utterance 1.6x longer and one semitone up: DTW undoes the timing, so the
    log-F0 error is the semitone and the contours correlate."""
    hyp = voice(1.6, 150 * 2 ** (1 / 12), 250 * 2 ** (1 / 12), 400, 1600)
    m = compare_to_reference(ref, hyp, SR)
    assert m["f0_rmse_cents"] == pytest.approx(SEMITONE_CENTS, abs=15.0)
    assert m["log_f0_corr"] > 0.98
    assert m["vuv_error"] < 0.1
    assert m["aligned_frames"] >= 1.6 / 0.005  # a DTW path is at least as long as the longer track
    assert m["mcd"] == pytest.approx(mcd_dtw(ref, hyp, SR), rel=1e-12)
    # a reversed formant sweep is a different "text": much larger distortion
    assert compare_to_reference(ref, voice(1.0, 150, 250, 1600, 400), SR)["mcd"] > 3 * m["mcd"]


def test_sample_rates_are_reconciled(ref):
    from shirabe.audio.resample import resample

    m = compare_to_reference(ref, resample(ref, SR, 16000), SR, hyp_sr=16000)
    assert m["f0_rmse_cents"] < 10.0 and m["mcd"] < 1.0
