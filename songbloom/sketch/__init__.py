"""Sketch ids: MuQ frames quantised by one codebook (trained by k-means, or recovered from a released model)."""

from songbloom.sketch.codebook import Codebook, nearest
from songbloom.sketch.kmeans import UPDATES, fit_codebook, kmeans_plus_plus
from songbloom.sketch.recover import Recovery, Song, align, recover_codebook

__all__ = ["UPDATES", "Codebook", "Recovery", "Song", "align", "fit_codebook", "kmeans_plus_plus", "nearest",
           "recover_codebook"]
