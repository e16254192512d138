"""F0-track helpers: frame-rate conversion, semitone shifts, Seed-VC's auto F0 adjustment."""

import numpy as np
import pytest
import torch

from shirabe.pitch import (
    SEEDVC_MEL_FPS,
    auto_f0_adjust,
    auto_shift_semitones,
    resample_f0,
    shift_semitones,
)


def test_resample_keeps_constant_pitch_and_gap_length():
    f0 = np.full(300, 220.0)  # 3 s at 100 fps
    f0[100:150] = 0.0  # 0.5 s unvoiced, from 1.0 s to 1.5 s
    out = resample_f0(f0, 100.0, SEEDVC_MEL_FPS)
    assert len(out) == round(300 * SEEDVC_MEL_FPS / 100)
    t = np.arange(len(out)) / SEEDVC_MEL_FPS
    # unvoiced exactly where the nearest source frame (time rounded to 10 ms) is unvoiced
    nearest = np.clip(np.floor(t * 100 + 0.5).astype(int), 0, 299)
    np.testing.assert_array_equal(out == 0, f0[nearest] == 0)
    assert (out == 0).sum() / SEEDVC_MEL_FPS == pytest.approx(0.5, abs=1.0 / SEEDVC_MEL_FPS)
    np.testing.assert_allclose(out[out > 0], 220.0)


def test_resample_interpolates_in_log_f0():
    f0 = np.array([100.0, 400.0, 0.0, 300.0])
    out = resample_f0(f0, 1.0, n_frames=7)  # dst 1.75 fps: source positions 0, 4/7, 8/7, ...
    pos = np.minimum(np.arange(7) * 4 / 7, 3)
    assert out[0] == 100.0
    assert out[1] == pytest.approx(100.0 * 4.0 ** (4 / 7))  # geometric, not arithmetic, in between
    assert out[2] == 400.0  # between voiced 400 and unvoiced: nearest is voiced, keeps its value
    assert out[4] == 0.0 and pos[4] == pytest.approx(16 / 7)  # nearest source frame 2 is unvoiced
    assert out[6] == 300.0  # clamped to the last frame


def test_resample_n_frames_and_torch():
    f0 = torch.tensor([200.0, 0.0, 200.0, 200.0])
    out = resample_f0(f0, 100.0, 100.0, n_frames=6)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.tolist() == [200.0, 0.0, 200.0, 200.0, 200.0, 200.0]


def test_shift_semitones():
    f0 = np.array([0.0, 110.0, 440.0])
    np.testing.assert_allclose(shift_semitones(f0, 12), [0.0, 220.0, 880.0])
    np.testing.assert_allclose(shift_semitones(f0, -24), [0.0, 27.5, 110.0])
    np.testing.assert_allclose(shift_semitones(f0, 7), [0.0, 110.0 * 2 ** (7 / 12), 440.0 * 2 ** (7 / 12)])


def test_auto_f0_adjust_moves_median_onto_reference():
    src = np.array([0.0, 180.0, 200.0, 220.0, 0.0, 200.0])
    ref = np.array([300.0, 0.0, 290.0, 310.0, 300.0])
    shift = auto_shift_semitones(src, ref)
    assert shift == pytest.approx(12 * np.log2(300.0 / 200.0))  # 7.02 semitones
    assert auto_shift_semitones(src, ref, round_to_semitone=True) == 7.0
    out = auto_f0_adjust(src, ref)
    np.testing.assert_allclose(out, np.where(src > 0, src * 1.5, 0.0))
    rounded = auto_f0_adjust(src, ref, round_to_semitone=True)
    np.testing.assert_allclose(rounded, np.where(src > 0, src * 2 ** (7 / 12), 0.0))
    assert auto_shift_semitones(src, np.zeros(4)) == 0.0
