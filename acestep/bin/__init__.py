"""ACE-Step command-line tools (``python -m acestep.bin.<name>``)."""
