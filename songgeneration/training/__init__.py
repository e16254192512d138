"""LeLM training: the prepared songs in batches (``data``), the objective (``loss``), LoRA (``lora``)."""
