"""Re-pitched training copies and prompts from another cut of the same singer."""

import numpy as np
import pytest
import pyworld
import soundfile as sf
import torch
from lhotse import CutSet

from seedsvc.bin import compute_features
from seedsvc.dataset import SegmentSampler
from shirabe.audio.world import repitch

SR = 22050


def tone(seconds: float, f0_hz: float, bright: float) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic tone with a slow vibrato and its F0 at 100 frames/s (first 0.1 s silent)."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = f0_hz * (1 + 0.02 * np.sin(2 * np.pi * 1.5 * t))
    wav = sum(bright**k * np.sin(k * 2 * np.pi * np.cumsum(f0) / SR) for k in range(1, 10)) * 0.1
    wav[: SR // 10] = 0.0
    frames = np.arange(int(seconds * 100) + 1) / 100
    track = f0_hz * (1 + 0.02 * np.sin(2 * np.pi * 1.5 * frames))
    track[frames < 0.1] = 0.0
    return wav.astype(np.float32), track


def median_f0(wav: np.ndarray) -> float:
    """Median F0 of the voiced frames by DIO + StoneMask (an F0 tracker other than the one that shifts)."""
    x = wav.astype(np.float64)
    f0, t = pyworld.dio(x, SR, f0_floor=50, f0_ceil=1100, frame_period=10)
    f0 = pyworld.stonemask(x, f0, t, SR)
    return float(np.median(f0[f0 > 0]))


@pytest.mark.parametrize("semitones", [12.0, -7.0])
@pytest.mark.parametrize("known_f0", [True, False])
def test_repitch_moves_f0_and_keeps_length(semitones, known_f0):
    wav, track = tone(1.2, 220.0, 0.6)
    out = repitch(wav, SR, semitones, track if known_f0 else None)
    assert out.shape == wav.shape and np.isfinite(out).all()
    expected = median_f0(wav) * 2 ** (semitones / 12)
    assert abs(median_f0(out) / expected - 1) < 0.02


@pytest.fixture(scope="module")
def shifted_cuts(tmp_path_factory):
    d = tmp_path_factory.mktemp("aug")
    rows = ["utt_id\tspeaker\twav\tf0"]
    for i, (f0, bright) in enumerate([(220.0, 0.5), (300.0, 0.7)]):
        wav, track = tone(0.9, f0, bright)
        sf.write(d / f"u{i}.wav", wav, SR)
        np.save(d / f"u{i}.f0.npy", track)
        rows.append(f"u{i}\tsinger{i}\tu{i}.wav\tu{i}.f0.npy")
    (d / "list.tsv").write_text("\n".join(rows) + "\n")
    code = compute_features.main(["--input", str(d / "list.tsv"), "--output-dir", str(d / "feats"),
                                  "--style-encoder", "melstats", "--pitch-shifts=-12,5"])
    assert code == 0
    return CutSet.from_file(d / "feats/cuts_train.jsonl.gz")


def test_compute_features_adds_repitched_copies(shifted_cuts):
    cuts = {c.id: c for c in shifted_cuts}
    assert sorted(cuts) == ["u0", "u0_ps+5", "u0_ps-12", "u1", "u1_ps+5", "u1_ps-12"]
    for i in range(2):
        parent = cuts[f"u{i}"]
        f0 = parent.load_custom("f0")
        assert parent.custom.get("pitch_shift") is None
        for shift in (-12, 5):
            cut = cuts[f"u{i}_ps{shift:+d}"]
            assert cut.supervisions[0].speaker == f"singer{i}"
            assert cut.pitch_shift == shift
            assert abs(cut.duration - parent.duration) < 0.01
            np.testing.assert_allclose(cut.load_custom("f0"), np.where(f0 > 0, f0 * 2 ** (shift / 12), 0), rtol=1e-5)
            audio = cut.load_audio()[0]
            assert abs(median_f0(audio) / median_f0(parent.load_audio()[0]) - 2 ** (shift / 12)) < 0.03
            assert cut.load_custom("mel").shape == parent.load_custom("mel").shape


def test_bad_pitch_shifts_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        compute_features.main(["--input", "x.tsv", "--output-dir", str(tmp_path), "--pitch-shifts=3,0"])
    assert e.value.code == 2
    assert "non-zero" in capsys.readouterr().err


def find_window(segment: np.ndarray, arrays: dict[str, np.ndarray]) -> str | None:
    """Id of the cut whose mel contains ``segment`` (frames × bins) as a contiguous window."""
    for cut_id, mel in arrays.items():
        for start in range(mel.shape[0] - segment.shape[0] + 1):
            if np.array_equal(mel[start : start + segment.shape[0]], segment):
                return cut_id
    return None


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_sampler_takes_prompts_from_the_same_singer(shifted_cuts, prob):
    sampler = SegmentSampler(shifted_cuts, segment_frames=40, batch_size=6, prompt_min=0.2, prompt_max=0.5,
                             seed=1, need=("mel", "f0", "style"), cross_prompt_prob=prob)
    mels = {c.id: c.load_custom("mel") for c in shifted_cuts}
    styles = {c.id: c.load_custom("style") for c in shifted_cuts}
    speaker = {c.id: c.supervisions[0].speaker for c in shifted_cuts}
    for _ in range(3):
        batch = sampler.batch()
        for j in range(6):
            n, k = int(batch["x_lens"][j]), int(batch["prompt_lens"][j])
            assert 0 < k < n
            mel = batch["mel"][j, :, :n].t().numpy()
            head, tail = find_window(mel[:k], mels), find_window(mel[k:], mels)
            assert head is not None and tail is not None
            assert speaker[head] == speaker[tail]
            assert (head != tail) == (prob == 1.0)
            assert torch.equal(batch["style"][j], torch.from_numpy(styles[head]).float())


def test_sampler_rejects_bad_probability(shifted_cuts):
    with pytest.raises(Exception, match="cross_prompt_prob"):
        SegmentSampler(shifted_cuts, cross_prompt_prob=1.5)


def test_copies_outside_the_f0_range_are_not_made(tmp_path):
    wav, track = tone(0.9, 150.0, 0.5)
    sf.write(tmp_path / "low.wav", wav, SR)
    np.save(tmp_path / "low.f0.npy", track)
    (tmp_path / "list.tsv").write_text("utt_id\tspeaker\twav\tf0\nlow\tbass\tlow.wav\tlow.f0.npy\n")
    # 150 Hz: an octave down (75 Hz) leaves the default 100-700 Hz, an octave up (300 Hz) does not
    assert compute_features.main(["--input", str(tmp_path / "list.tsv"), "--output-dir", str(tmp_path / "f"),
                                  "--style-encoder", "melstats", "--pitch-shifts=-12,12"]) == 0
    assert sorted(c.id for c in CutSet.from_file(tmp_path / "f/cuts_train.jsonl.gz")) == ["low", "low_ps+12"]
    assert compute_features.main(["--input", str(tmp_path / "list.tsv"), "--output-dir", str(tmp_path / "g"),
                                  "--style-encoder", "melstats", "--pitch-shifts=-12,12",
                                  "--copy-f0-range", "60,250"]) == 0
    assert sorted(c.id for c in CutSet.from_file(tmp_path / "g/cuts_train.jsonl.gz")) == ["low", "low_ps-12"]
