"""songbloom.eval.metrics on hand-made inputs: cosine of mean-pooled features, Gaussian statistics, the
Fréchet distance against closed forms, its small-sample bias, and duration against a budget."""

import math

import numpy as np
import pytest

from songbloom.eval.metrics import (
    cosine,
    duration_adherence,
    frechet_distance,
    frechet_mean_bias,
    frechet_of_frames,
    gaussian_stats,
    style_similarity,
)


def test_style_similarity_is_the_cosine_of_the_time_means():
    prompt = [[1.0, 0.0], [3.0, 4.0]]  # mean (2, 2)
    assert style_similarity(prompt, [[5.0, 5.0]]) == pytest.approx(1.0)
    assert style_similarity(prompt, [[1.0, -1.0], [3.0, -3.0]]) == pytest.approx(0.0, abs=1e-12)
    assert style_similarity(prompt, [[-2.0, -2.0], [-4.0, -4.0]]) == pytest.approx(-1.0)
    # (2, 2) against (1, 0): cos 45 degrees
    assert style_similarity(prompt, [[0.0, 0.0], [2.0, 0.0]]) == pytest.approx(math.sqrt(0.5))
    assert math.isnan(cosine([0.0, 0.0], [1.0, 0.0]))
    with pytest.raises(ValueError, match="different sizes"):
        cosine([1.0, 0.0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="at least one frame"):
        style_similarity(np.zeros((0, 2)), [[1.0, 0.0]])


def test_gaussian_stats_of_a_square():
    mean, cov = gaussian_stats([[0, 0], [2, 0], [0, 2], [2, 2]])
    assert mean.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(cov, [[4 / 3, 0.0], [0.0, 4 / 3]])  # squared deviations 4 over n - 1 = 3
    with pytest.raises(ValueError, match="two frames"):
        gaussian_stats([[1.0, 2.0]])


def test_frechet_distance_of_diagonal_gaussians():
    # FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 = 1 + 4 + (1 + 1 + 9)
    fd = frechet_distance([1.0, 2.0, 0.0], np.diag([1.0, 4.0, 9.0]), [0.0, 0.0, 0.0], np.diag([4.0, 1.0, 0.0]))
    assert fd == pytest.approx(16.0)
    assert frechet_distance([0.0, 0.0], np.diag([1.0, 0.0]), [0.0, 0.0], np.diag([0.0, 1.0])) == pytest.approx(2.0)
    same = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert frechet_distance([3.0, -1.0], same, [3.0, -1.0], same) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_rotated_and_non_commuting_covariances():
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rot = np.array([[c, -s], [s, c]])
    # the same eigenvectors: (2 - 1)^2 + (1 - 3)^2
    fd = frechet_distance([0, 0], rot @ np.diag([4.0, 1.0]) @ rot.T, [0, 0], rot @ np.diag([1.0, 9.0]) @ rot.T)
    assert fd == pytest.approx(5.0)
    # S1 S2 = [[2, 3], [1, 6]]: trace 8, determinant 9; for 2x2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) = sqrt(14)
    s1, s2 = np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])
    expected = 5.0 + 4.0 + 4.0 - 2.0 * math.sqrt(14.0)
    assert frechet_distance([1.0, 2.0], s1, [0.0, 0.0], s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance([0.0, 0.0], s2, [1.0, 2.0], s1) == pytest.approx(expected, rel=1e-9)  # symmetric
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance([0.0, 0.0], s1, [0.0, 0.0, 0.0], np.eye(3))


def test_frechet_of_many_frames_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    s1, s2 = np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 3.0]])
    a = rng.multivariate_normal([1.0, 2.0], s1, size=40000)
    b = rng.multivariate_normal([0.0, 0.0], s2, size=40000)
    out = frechet_of_frames(a, b)
    assert out["fd"] == pytest.approx(13.0 - 2.0 * math.sqrt(14.0), abs=0.08)
    assert (out["frames_1"], out["frames_2"]) == (40000, 40000)
    assert out["mean_bias"] == pytest.approx(4.0 / 40000 + 4.0 / 40000, rel=0.05)


def test_frechet_of_few_frames_is_biased_upwards():
    """Two samples of the same Gaussian N(0, I_2): the true distance is 0; with 10 frames each the squared
    mean difference alone averages tr(I)/10 + tr(I)/10 = 0.4, and the covariance term only adds."""
    rng = np.random.default_rng(1)
    fds, mean_terms = [], []
    for _ in range(400):
        a, b = rng.standard_normal((10, 2)), rng.standard_normal((10, 2))
        fds.append(frechet_of_frames(a, b)["fd"])
        mean_terms.append(float(np.sum((a.mean(0) - b.mean(0)) ** 2)))
    assert frechet_mean_bias(np.eye(2), 10, np.eye(2), 10) == pytest.approx(0.4)
    assert np.mean(mean_terms) == pytest.approx(0.4, rel=0.15)
    assert np.mean(fds) > np.mean(mean_terms) > 0.3
    assert min(fds) >= 0.0


def test_duration_against_the_budget_and_the_ground_truth():
    assert duration_adherence(120.0, 150.0, 100.0) == {"duration": 120.0, "budget_use": 0.8, "over_budget": False,
                                                      "duration_ratio_gt": 1.2}
    assert duration_adherence(150.04, 150.0)["over_budget"] is False  # within the 0.05 s tolerance
    over = duration_adherence(151.0, 150.0)
    assert over["over_budget"] is True and over["duration_ratio_gt"] is None
    assert duration_adherence(10.0, None) == {"duration": 10.0, "budget_use": None, "over_budget": None,
                                              "duration_ratio_gt": None}
    with pytest.raises(ValueError, match="budget must be positive"):
        duration_adherence(10.0, 0.0)
