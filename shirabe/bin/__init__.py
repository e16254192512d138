"""Shared Shirabe binaries (run as ``python -m shirabe.bin.<name>``)."""
