"""Upstream's F0 quantiser and the V1 F0 embedding, against upstream-made cases."""

import numpy as np
import pytest
import torch
from seedsvc_testlib import V1_F0

from seedsvc.models import PretrainedF0Encoder, f0_to_coarse, f0_to_frames, load_v1_f0_embedding
from shirabe.cli import InputError


def test_listed_frequencies(f0_cases):
    for dtype, key in ((np.float64, "coarse"), (np.float32, "coarse_from_float32")):
        got = f0_to_coarse(torch.from_numpy(f0_cases["f0_hz"].astype(dtype))).numpy()
        np.testing.assert_array_equal(got, f0_cases[key])


def test_edge_cases_in_words():
    # unvoiced and below ~51.3 Hz -> 1; overflow above ~1103.1 Hz wraps to 0
    got = f0_to_coarse(torch.tensor([0.0, -1.0, 51.0, 51.5, 1100.0, 1103.0, 1104.0, 2000.0])).tolist()
    assert got == [1, 1, 1, 2, 255, 255, 0, 0]


def test_sweep(f0_cases):
    np.testing.assert_array_equal(f0_to_coarse(f0_cases["sweep_f0_hz"]).numpy(), f0_cases["sweep_coarse"])
    got32 = f0_to_coarse(f0_cases["sweep_f0_hz"].astype(np.float32)).numpy()
    np.testing.assert_array_equal(got32, f0_cases["sweep_coarse_from_float32"])


@pytest.mark.parametrize("name", ["v1_f0_embedding.pth", "v1_f0_embedding_module_prefix.pth"])
def test_embedding_rows_both_key_spellings(f0_cases, name):
    enc = PretrainedF0Encoder(embedding_dim=768, out_dim=16)
    enc.load_v1(V1_F0 / name)
    rows = enc.embedding(enc.coarse(torch.from_numpy(f0_cases["f0_hz"])))
    assert torch.equal(rows, torch.from_numpy(f0_cases["embedding_rows"]))
    assert not enc.embedding.weight.requires_grad
    assert enc.proj.weight.requires_grad


def test_frame_track_through_nearest_resampling(f0_cases):
    weight = load_v1_f0_embedding(V1_F0 / "v1_f0_embedding.pth")
    track = torch.from_numpy(f0_cases["track_f0_hz"])
    np.testing.assert_array_equal(f0_to_coarse(track).numpy(), f0_cases["track_coarse"])
    at_mel = f0_to_frames(track, int(f0_cases["track_mel_len"]))
    assert torch.equal(weight[f0_to_coarse(at_mel)], torch.from_numpy(f0_cases["track_f0_emb"]))
    src = f0_to_frames(torch.arange(len(track), dtype=torch.float64), int(f0_cases["track_mel_len"]))
    np.testing.assert_array_equal(src.long().numpy(), f0_cases["track_src_index"])


def test_wrong_checkpoint_is_one_line_error(tmp_path):
    path = tmp_path / "v2.pth"
    torch.save({"net": {"length_regulator": {"embedding.weight": torch.zeros(4, 4)}}}, path)
    with pytest.raises(InputError, match="f0_embedding"):
        load_v1_f0_embedding(path)
    torch.save({"model": {}}, path)
    with pytest.raises(InputError, match="length_regulator"):
        load_v1_f0_embedding(path)
