"""Network building blocks shared by the model packages (``llama``: the LLaMA decoder stack with a KV cache)."""
