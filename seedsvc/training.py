"""What each SeedSVC training phase trains, and the model state a phase starts from.

* phase 0 — plain V2: the whole CFM (DiT) and the length regulator, no F0. This is
  upstream's ``train_v2.py --train-cfm`` and, on the mini corpus, stands in for the
  released V2 checkpoint.
* phase 1 — F0 adapters only: the F0 projection (768 → hidden) and the per-layer F0
  cross-attention. V2 and the V1 F0 embedding stay frozen and are not given to the
  optimizer.
* phase 2 — the DiT is unfrozen as well, at ``lr · dit_lr_scale``; the F0 modules keep
  ``lr``. The F0 embedding and the length regulator stay frozen.

``no_f0`` builds the model without F0 modules; any phase then fine-tunes the DiT (the
baseline the F0 model is compared with).
"""

from __future__ import annotations

import logging

from torch import nn

logger = logging.getLogger(__name__)

ALWAYS_FROZEN = ("estimator.x_embedder.", "estimator.f0_encoder.embedding.")
F0_TRAINABLE = ("estimator.f0_encoder.proj.", "estimator.f0_cross_attention.")


def is_f0_param(name: str) -> bool:
    return name.startswith(F0_TRAINABLE)


def select_trainable(cfm: nn.Module, length_regulator: nn.Module, phase: int, lr: float,
                     dit_lr_scale: float = 0.1) -> list[dict]:
    """Set ``requires_grad`` for the phase and return the optimizer's parameter groups."""
    has_f0 = getattr(cfm.estimator, "has_f0", False)
    if phase not in (0, 1, 2):
        raise ValueError(f"phase must be 0, 1 or 2, got {phase}")
    if phase in (1, 2) and not has_f0:
        logger.info("model has no F0 modules: phase %d fine-tunes the DiT instead", phase)
    groups: dict[str, list] = {"f0": [], "dit": [], "lr": []}
    for name, p in cfm.named_parameters():
        train = False
        if name.startswith(ALWAYS_FROZEN):
            train = False
        elif is_f0_param(name):
            train = phase in (1, 2)
            if train:
                groups["f0"].append(p)
        else:
            train = phase in (0, 2) or not has_f0
            if train:
                groups["dit"].append(p)
        p.requires_grad_(train)
    for p in length_regulator.parameters():
        train = phase == 0
        p.requires_grad_(train)
        if train:
            groups["lr"].append(p)
    dit_lr = lr * dit_lr_scale if phase == 2 or (phase == 1 and not has_f0) else lr
    out = []
    if groups["f0"]:
        out.append({"params": groups["f0"], "lr": lr, "name": "f0"})
    if groups["dit"]:
        out.append({"params": groups["dit"], "lr": dit_lr if phase != 0 else lr, "name": "dit"})
    if groups["lr"]:
        out.append({"params": groups["lr"], "lr": lr, "name": "length_regulator"})
    return out


def count_params(modules) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = frozen = 0
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
    return trainable, frozen
