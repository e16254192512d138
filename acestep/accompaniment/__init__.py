"""Vocal → accompaniment on ACE-Step: evaluation and comparison tools.

- :mod:`acestep.accompaniment.metrics`: objective measures (beat alignment, key agreement, energy
  correlation, mel distance, vocal leakage).
- :mod:`acestep.accompaniment.compare`: the blind listening page and its rating axes.
- :mod:`acestep.accompaniment.ratings`: exported rating sheets: un-blinding and Wilcoxon tests.

The configuration schemas are in :mod:`acestep.config`.
"""
