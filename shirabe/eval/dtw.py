"""Dynamic time warping between two feature sequences (numpy only).

Steps (i-1, j), (i, j-1), (i-1, j-1), each adding the local distance of the
cell it enters; the path runs from (0, 0) to (N-1, M-1). The cumulative costs
are computed one anti-diagonal at a time (vectorised), so the cost is
O(N·M) time and memory.
"""

from __future__ import annotations

import numpy as np


def euclidean_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of ``x`` (N, D) and ``y`` (M, D)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sq = np.sum(x**2, axis=1)[:, None] + np.sum(y**2, axis=1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(sq, 0.0))


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimum-cost path through a local-cost matrix (N, M).

    Returns ``(i, j, total)``: the path's row and column indices (equal length,
    from (0, 0) to (N-1, M-1)) and its summed local cost.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        raise ValueError("DTW needs two non-empty sequences")
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(n + m - 1):  # anti-diagonal i + j = k (0-based cells)
        i = np.arange(max(0, k - m + 1), min(n - 1, k) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[i, j + 1], acc[i + 1, j]), acc[i, j])
        acc[i + 1, j + 1] = cost[i, j] + best
    # Backtrack (ties prefer the diagonal step).
    path_i, path_j = [n - 1], [m - 1]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(steps, key=lambda s: acc[s])
        path_i.append(i - 1)
        path_j.append(j - 1)
    return np.array(path_i[::-1]), np.array(path_j[::-1]), float(acc[n, m])
