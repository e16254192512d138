"""ACE-Step v1 fine-tuning: the latent cache, batches, the loss, LoRA (``docs/acestep_training.md``).

- :mod:`acestep.training.cache`: seed-file songs → DCAE latents, UMT5 prompt states and lyric ids,
  stored as a lhotse CutSet (``acestep.bin.cache_latents``).
- :mod:`acestep.training.data`: cached cuts → padded batches under a latent-frame budget.
- :mod:`acestep.training.loss`: the training objective with the condition dropouts.
- :mod:`acestep.training.lora`: peft LoRA from the released trainer's config JSON.
- :mod:`acestep.training.lr`: warm-up then linear decay of the learning rate.
"""
