"""ACE-Step v1 (text-to-music) on PyTorch: models, loaders and recipes."""
