"""Command-line binaries: python -m zipvoice.bin.<name>."""
