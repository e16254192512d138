"""Training infrastructure shared by the model packages (see docs/training.md).

``loop`` (the Trainer), ``sampler`` (what it needs from the training data),
``precision``, ``lr_scheduler``, ``optim``, ``checkpoint``, ``adapters``
(adapter-only checkpoints), ``dist`` (DDP, torchrun), ``process`` (one training
process's set-up and the experiment record), ``options`` (the options every
training binary shares), ``metrics``, ``rng``, ``hooks``, ``oom``.
"""
