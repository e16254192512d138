"""Sketch codebooks: k-means finds known clusters, recovery finds a known codebook and its layer."""

import pytest
import torch

from shirabe.cli import InputError
from songbloom.sketch import Codebook, Song, align, fit_codebook, recover_codebook


def clusters(k=32, d=16, per=200, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 2
    ids = torch.arange(k).repeat_interleave(per)
    return centres, centres[ids] + noise * torch.randn(len(ids), d, generator=g), ids


def matched_error(found, true):
    """Distance from each true centre to the nearest found one."""
    return torch.cdist(true, found).min(1).values


@pytest.mark.parametrize("update", ["minibatch", "ema"])
def test_kmeans_finds_every_cluster(update):
    true, x, _ = clusters()
    rows, counts, stats = fit_codebook(x, 32, steps=300, batch_size=512, update=update, restart_every=25,
                                       log_every=100, progress=False)
    assert matched_error(rows, true).max() < 0.1  # clusters are ~2.8 apart, noise 0.05 per dim
    assert counts.sum() == len(x) and (counts > 0).all()
    assert stats.usage[-1] == 1.0 and stats.perplexity[-1] > 30


def test_dead_codes_are_restarted():
    # every centre starts on the same point: all frames go to one of them and the rest stay dead
    true, x, _ = clusters(k=16, per=100)
    init = true[0].repeat(16, 1)
    stuck, _, _ = fit_codebook(x, 16, steps=200, batch_size=512, restart_every=0, init=init, progress=False)
    rows, counts, stats = fit_codebook(x, 16, steps=200, batch_size=512, restart_every=20, init=init,
                                       progress=False)
    found_stuck = int((matched_error(stuck, true) < 0.2).sum())
    found = int((matched_error(rows, true) < 0.2).sum())
    assert found_stuck <= 2 and stats.restarts >= 10
    assert found >= 14 and (counts > 0).all()  # restarts revive codes; shared clusters are k-means' own minima


def test_codebook_file_round_trip_and_errors(tmp_path):
    cb = Codebook(torch.randn(8, 4), muq_layer=7)
    path = cb.save(tmp_path / "codebook.pt")
    back = Codebook.load(path)
    assert torch.equal(back.codebook, cb.codebook) and back.muq_layer == 7 and back.source == "kmeans"
    frames = cb.codebook[[3, 1, 1, 5]] + 0.01
    assert back.quantize(frames).tolist() == [3, 1, 1, 5]
    torch.save({"weights": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="bad.pt: not a sketch codebook"):
        Codebook.load(tmp_path / "bad.pt")


def test_unknown_rows_are_never_chosen():
    cb = Codebook(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 0, "recovered",
                  known=torch.tensor([True, False, True]))
    assert cb.quantize(torch.tensor([[0.9, 0.9], [4.0, 4.0]])).tolist() == [0, 2]


def synthetic_songs(n_songs, codebook, layer_noise, seed, id_rate=25.0, feature_rate=25.0):
    """Songs whose layer-2 features sit on ``codebook`` rows; the other layers are noisier views."""
    g = torch.Generator().manual_seed(seed)
    k, d = codebook.shape
    proj = torch.randn(d, d, generator=g) / d**0.5
    songs = []
    for s in range(n_songs):
        ids = [int(torch.randint(k, (1,), generator=g))]
        for _ in range(299):  # sketches repeat: a sticky Markov chain
            ids.append(ids[-1] if torch.rand(1, generator=g) < 0.6 else int(torch.randint(k, (1,), generator=g)))
        ids = torch.tensor(ids)
        rep = int(feature_rate // id_rate)
        frame_ids = ids.repeat_interleave(rep)
        feats = {
            0: torch.randn(len(frame_ids), d, generator=g),
            1: codebook[frame_ids] @ proj + 1.0 * torch.randn(len(frame_ids), d, generator=g),
            2: codebook[frame_ids] + layer_noise * torch.randn(len(frame_ids), d, generator=g),
        }
        songs.append(Song(f"song{s}", feats, ids, id_rate, feature_rate))
    return songs


def test_recovery_finds_a_known_codebook_and_its_layer():
    true = torch.randn(24, 8, generator=torch.Generator().manual_seed(5))
    fit = synthetic_songs(12, true, 0.1, seed=1)
    held = synthetic_songs(4, true, 0.1, seed=2)
    rec = recover_codebook(fit, held, size=24)
    assert rec.codebook.muq_layer == 2 and rec.codebook.source == "recovered"
    by_layer = {r.layer: r for r in rec.layers}
    assert by_layer[2].agreement > 0.99 and by_layer[0].agreement < 0.2
    assert by_layer[2].coverage == 1.0
    err = (rec.codebook.codebook - true).norm(dim=1)
    assert err.max() < 0.05  # ~150 frames per id, noise 0.1 per dim
    assert int(rec.codebook.counts.sum()) == 12 * 300


def test_alignment_between_rates():
    ids = torch.tensor([4, 5, 6])
    feats = torch.arange(7.0)[:, None]  # 50 Hz features against 25 Hz ids: two frames per id
    f, i = align(feats, ids, id_rate=25.0, feature_rate=50.0)
    assert i.tolist() == [4, 4, 5, 5, 6, 6] and f[:, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_recovery_marks_unseen_ids_unknown():
    true = torch.randn(24, 8, generator=torch.Generator().manual_seed(5))
    fit = synthetic_songs(2, true, 0.1, seed=1)
    for s in fit:  # id 23 never sampled
        s.ids[s.ids == 23] = 0
        s.features = {2: true[s.ids] + 0.1 * torch.randn(len(s.ids), 8)}
    rec = recover_codebook(fit, [], size=24)
    assert not bool(rec.codebook.known[23]) and int(rec.codebook.counts[23]) == 0
