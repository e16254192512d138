"""VocosFbank: parity with the fixture mel, lhotse frame counts and storage."""

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, LilcomChunkyWriter, Recording, RecordingSet
from lhotse.features.base import FEATURE_EXTRACTORS, create_default_feature_extractor
from lhotse.utils import compute_num_frames

from shirabe.audio.fbank import VocosFbank, VocosFbankConfig, vocos_mel
from shirabe.cli import InputError

TOL = 1e-4


def test_fbank_matches_fixture_mel(vocos_cases):
    wav = vocos_cases["wav"]
    feats = VocosFbank().extract(wav, 24000)
    assert isinstance(feats, np.ndarray) and feats.dtype == np.float32
    assert feats.shape == (94, 100)
    assert np.abs(feats - vocos_cases["mel"][0].T).max() <= TOL
    assert np.abs(VocosFbank().extract(wav[None], 24000) - feats).max() == 0
    mel = vocos_mel(torch.from_numpy(wav)[None])
    assert mel.shape == (1, 100, 94)
    assert np.abs(mel.numpy() - vocos_cases["mel"]).max() <= TOL


def test_fbank_matches_the_vocoder_front_end(tiny_vocos, vocos_cases):
    wav = torch.from_numpy(vocos_cases["wav"])[None]
    assert (vocos_mel(wav) - tiny_vocos.encode(wav)).abs().max() <= TOL


@pytest.mark.parametrize("num_samples", [255, 256, 383, 384, 1000, 24000, 24127, 24128])
def test_frame_count_follows_lhotse(num_samples):
    wav = np.random.default_rng(num_samples).normal(0, 0.1, num_samples).astype(np.float32)
    ext = VocosFbank()
    feats = ext.extract(wav, 24000)
    assert feats.shape == (compute_num_frames(num_samples / 24000, ext.frame_shift, 24000), 100)
    assert feats.shape[0] == (num_samples + 128) // 256


def test_extractor_interface():
    ext = VocosFbank()
    assert ext.frame_shift == 256 / 24000
    assert ext.feature_dim(24000) == 100
    assert FEATURE_EXTRACTORS["VocosFbank"] is VocosFbank
    assert isinstance(create_default_feature_extractor("VocosFbank"), VocosFbank)
    assert ext.to_dict() == {"feature_type": "VocosFbank", **VocosFbankConfig().__dict__}
    with pytest.raises(InputError, match="24000 Hz"):
        ext.extract(np.zeros(16000, dtype=np.float32), 16000)


def test_channels():
    rng = np.random.default_rng(0)
    stereo = rng.normal(0, 0.1, (2, 4800)).astype(np.float32)
    mono = VocosFbank().extract(stereo, 24000)
    assert np.abs(mono - VocosFbank().extract(stereo.mean(0), 24000)).max() == 0
    both = VocosFbank(num_channels=2).extract(stereo, 24000)
    assert both.shape == (19, 200) and VocosFbank(num_channels=2).feature_dim(24000) == 200
    assert np.abs(both[:, 100:] - VocosFbank().extract(stereo[1], 24000)).max() == 0
    feats_t = VocosFbank().extract(torch.from_numpy(stereo[0]), 24000)
    assert isinstance(feats_t, torch.Tensor) and feats_t.shape == (19, 100)


def test_lhotse_compute_and_store_features(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(int(0.73 * 24000)) / 24000
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.normal(size=t.size)).astype(np.float32)
    sf.write(tmp_path / "a.wav", wav, 24000, subtype="FLOAT")
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings([Recording.from_file(tmp_path / "a.wav")]))
    cuts = cuts.compute_and_store_features(
        extractor=VocosFbank(), storage_path=tmp_path / "feats", storage_type=LilcomChunkyWriter, num_jobs=1
    )
    cut = cuts[0]
    assert cut.num_frames == compute_num_frames(cut.duration, 256 / 24000, 24000)
    feats = cut.load_features()
    assert feats.shape == (cut.num_frames, 100)
    assert cut.features.type == "VocosFbank"
    # lilcom is lossy; log-mel values survive to a few hundredths
    assert np.abs(feats - VocosFbank().extract(wav, 24000)).max() < 0.05
