"""Speaker similarity and duration ratio."""

import numpy as np
import pytest

from shirabe.audio import load_audio
from shirabe.eval import duration_ratio, speaker_similarity
from shirabe.speaker import default_campplus_path, load_campplus


@pytest.mark.skipif(not default_campplus_path().is_file(), reason="CAM++ weights missing (tools/install.sh)")
def test_one_voice_is_more_similar_than_two(speech_by_speaker):
    encoder = load_campplus()
    speakers = sorted(speech_by_speaker)
    a1, sr = load_audio(speech_by_speaker[speakers[0]][0])
    a2, _ = load_audio(speech_by_speaker[speakers[0]][1])
    b1, _ = load_audio(speech_by_speaker[speakers[1]][0])
    same = speaker_similarity(a1, a2, sr, encoder=encoder)
    different = speaker_similarity(a1, b1, sr, encoder=encoder)
    assert same > different + 0.2
    assert speaker_similarity(a1, a1, sr, encoder=encoder) == pytest.approx(1.0, abs=1e-6)


def test_duration_ratio():
    ref = np.zeros(24000)  # 1 s at 24 kHz
    assert duration_ratio(ref, np.zeros(33075), 24000, hyp_sr=22050) == pytest.approx(1.5)
    assert duration_ratio(ref, np.zeros((12000, 2)), 24000) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        duration_ratio(np.zeros(0), ref, 24000)
