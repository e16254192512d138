"""Shirabe: Japanese speech and song generation in the Kaldi/icefall tradition."""

__version__ = "0.1.0"
