"""Phone timings → frame labels, and the phone classifier's checkpoint round trip."""

import numpy as np
import pytest
import torch

from seedsvc.content import load_content_extractor
from seedsvc.content.labels import build_table, frame_labels, read_timings, write_timings
from seedsvc.content.phone_classifier import PhoneClassifier, save_phone_classifier
from shirabe.cli import InputError


def test_frame_labels_use_frame_centres(tmp_path):
    # hop 100 at sr 1000: frame j is centred at (j + 0.5) * 0.1 s
    path = tmp_path / "t.tsv"
    write_timings(path, [(0.1, 0.3, "k"), (0.3, 0.62, "a")])
    table = build_table(["a", "k"])
    assert table == {"sil": 0, "a": 1, "k": 2}
    ids = frame_labels(read_timings(path), 8, table, sr=1000, hop=100)
    # centres 0.05 .15 .25 .35 .45 .55 .65 .75
    assert ids.tolist() == [0, 2, 2, 1, 1, 1, 0, 0]


def test_bad_timing_lines_name_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("0.0\t0.2\ta\n0.3\t0.1\ti\n")
    with pytest.raises(InputError, match=r"bad.tsv:2: end 0.1 is before start 0.3"):
        read_timings(path)
    with pytest.raises(InputError, match="not in the phone table"):
        frame_labels([(0.0, 1.0, "zz")], 3, build_table(["a"]), 1000, 100)


def test_phone_extractor_round_trip(tmp_path):
    torch.manual_seed(0)
    model = PhoneClassifier(5, channels=8, num_layers=1).eval()
    save_phone_classifier(tmp_path / "c.pt", model, ["sil", "a", "i", "u", "e"])
    ext = load_content_extractor("phone", tmp_path / "c.pt")
    mel = torch.randn(80, 30)
    post = ext.from_mel(mel)
    assert post.shape == (30, 5) and ext.dim == 5
    torch.testing.assert_close(post.sum(-1), torch.ones(30))
    expected = torch.softmax(model(mel[None])[0], dim=0).t()
    torch.testing.assert_close(post, expected)
    # a shifted copy of the input (same mel up to a constant per band) gives the same posteriors
    torch.testing.assert_close(ext.from_mel(mel + 3.0), post, atol=1e-5, rtol=0)
    wav = (0.1 * np.sin(np.arange(22050) * 0.05)).astype(np.float32)
    assert ext.extract(wav, 22050).shape == (22050 // 256, 5)
    with pytest.raises(InputError, match="unknown content extractor"):
        load_content_extractor("whisper", tmp_path / "c.pt")
