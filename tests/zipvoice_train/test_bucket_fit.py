"""Small corpora: duration buckets are capped so every epoch still yields batches."""

from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from shirabe.data.sampling import make_sampler
from zipvoice.dataset.datamodule import fit_num_buckets


def corpus(n, seconds):
    """``n`` cuts whose durations spread evenly over seconds +- 50 %."""
    return CutSet.from_cuts(dummy_cut(i, duration=seconds * (0.5 + i / n)) for i in range(n))


def batches(cuts, num_buckets, max_duration):
    sampler = make_sampler(cuts, max_duration=max_duration, bucketing=num_buckets > 1, num_buckets=max(2, num_buckets),
                           drop_last=True, seed=0)
    return list(sampler)


def test_small_corpus_gets_few_buckets_and_still_yields_batches():
    cuts = corpus(216, 3.0)  # 648 s, like the default mini training set
    assert len(batches(cuts, 30, 60.0)) == 0  # 30 buckets of ~22 s never fill a 60 s batch
    n = fit_num_buckets(cuts, 30, 60.0)
    assert n == 5
    got = batches(cuts, n, 60.0)
    assert len(got) >= 5 and all(sum(c.duration for c in b) <= 60.0 for b in got)


def test_tiny_corpus_is_not_bucketed_and_large_corpus_keeps_its_buckets():
    assert fit_num_buckets(corpus(4, 2.5), 30, 5.0) == 1
    assert len(batches(corpus(4, 2.5), 1, 5.0)) >= 2
    assert fit_num_buckets(corpus(7000, 3.0), 30, 60.0) == 30
