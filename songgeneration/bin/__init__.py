"""Command-line binaries of songgeneration (run with ``python -m songgeneration.bin.<name>``)."""
