"""Duration filters and cost-budgeted batching."""

import copy

from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from shirabe.data.sampling import filter_by_duration, make_sampler


def cuts_of(durations):
    return CutSet.from_cuts(dummy_cut(i, duration=d) for i, d in enumerate(durations))


def test_filter_counts_what_it_drops():
    cuts, dropped = filter_by_duration(cuts_of([0.5, 1.0, 5.0, 30.0, 31.0]), min_len=1.0, max_len=30.0)
    assert [c.duration for c in cuts] == [1.0, 5.0, 30.0]
    assert dropped == {"short": 1, "long": 1}


def test_quadratic_duration_shrinks_batches_of_long_cuts():
    cuts = cuts_of([20.0] * 12)
    plain = list(make_sampler(cuts, max_duration=60, num_buckets=2, shuffle=False, drop_last=False))
    # each 20 s cut costs 20 + 20²/20 = 40 s of the 60 s budget: one per batch
    quad = list(make_sampler(cuts, max_duration=60, quadratic_duration=20, num_buckets=2, shuffle=False, drop_last=False))
    assert [len(b) for b in plain] == [3, 3, 3, 3]
    assert [len(b) for b in quad] == [1] * 12
    # short cuts are barely affected: 2 s costs 2.2 s, so 27 fit in 60 s instead of 30
    short = list(make_sampler(cuts_of([2.0] * 30), max_duration=60, quadratic_duration=20, num_buckets=2, shuffle=False, drop_last=False))
    assert [len(b) for b in short] == [27, 3]


def test_sampler_resumes_mid_epoch():
    cuts = cuts_of([1.0 + (i % 7) * 0.5 for i in range(200)])
    sampler = make_sampler(cuts, max_duration=12, num_buckets=4, seed=3)
    sampler.set_epoch(2)
    it = iter(sampler)
    for _ in range(5):
        next(it)
    state = copy.deepcopy(sampler.state_dict())  # as written to a checkpoint
    rest = []  # next() rather than a for loop: iter() on a sampler starts a new epoch
    while (batch := next(it, None)) is not None:
        rest.append([c.id for c in batch])

    resumed = make_sampler(cuts, max_duration=12, num_buckets=4, seed=3)
    resumed.load_state_dict(state)
    assert len(rest) > 10
    assert [[c.id for c in b] for b in resumed] == rest
