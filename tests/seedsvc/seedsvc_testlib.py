"""Paths of the SeedSVC test fixtures (a uniquely named module: tests/ has several conftest.py)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
V2_TINY = FIXTURES / "seedvc_v2_tiny"
V1_F0 = FIXTURES / "seedvc_v1_f0"
