"""LoRA adapters through peft for any model: targets by name, wrapping, merging.

A package names the layers it adapts by patterns: a pattern matches a module
whose full name equals it or ends with ``.<pattern>`` (``q_proj`` matches
``ar_transformer.layers.3.self_attn.q_proj``). :func:`resolve_targets` turns
patterns into the full names of ``nn.Linear`` modules (a pattern that matches
nothing, or only other kinds of module, is a one-line error), and
:func:`all_linear_targets` lists every ``nn.Linear`` for "train all" modes.
:func:`wrap_lora` freezes the base weights and adds the adapters;
:func:`merge_lora` folds them back into plain weights. Keys of a peft model's
``state_dict`` carry the ``base_model.model.`` prefix; :func:`relative_key`
drops it.
"""

from __future__ import annotations

import logging
import sys

from torch import nn

from shirabe.cli import InputError

logger = logging.getLogger(__name__)
PEFT_PREFIX = "base_model.model."


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP (if any)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_peft(model: nn.Module) -> bool:
    if "peft" not in sys.modules:
        return False
    from peft import PeftModel

    return isinstance(unwrap(model), PeftModel)


def base_model(model: nn.Module) -> nn.Module:
    """The model itself, inside DDP and/or peft."""
    model = unwrap(model)
    return model.get_base_model() if is_peft(model) else model


def relative_key(key: str) -> str:
    return key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key


def resolve_targets(model: nn.Module, patterns, option: str = "--lora-targets") -> list[str]:
    """Full names of the ``nn.Linear`` modules the patterns name (in model order)."""
    modules = dict(model.named_modules())
    chosen = set()
    for pat in patterns:
        hits = [n for n in modules if n and (n == pat or n.endswith("." + pat))]
        if not hits:
            raise InputError(f"{option}: {pat!r} names no module of the model")
        linear = [n for n in hits if isinstance(modules[n], nn.Linear)]
        if not linear:
            raise InputError(f"{option}: {pat!r} is a {type(modules[hits[0]]).__name__}; adapters go on nn.Linear")
        chosen.update(linear)
    return [n for n in modules if n in chosen]


def all_linear_targets(model: nn.Module, exclude=()) -> list[str]:
    """Every ``nn.Linear`` of the model except those whose name starts with one of ``exclude``."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.startswith(tuple(exclude))]


def wrap_lora(model: nn.Module, targets: list[str], rank: int, alpha: float, dropout: float = 0.0,
              use_dora: bool = False) -> nn.Module:
    """A peft model with LoRA (or DoRA) on ``targets``; every base weight frozen."""
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise InputError(f"--lora-rank must be at least 1, got {rank}")
    if not targets:
        raise InputError("no layers to adapt")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, use_dora=use_dora,
                        bias="none")
    wrapped = get_peft_model(unwrap(model), config)
    logger.info("%s on %d linear layers (rank %d, alpha %g, dropout %g)", "DoRA" if use_dora else "LoRA",
                len(targets), rank, alpha, dropout)
    return wrapped


def merge_lora(model: nn.Module) -> nn.Module:
    """The base model with every adapter folded into its weights (peft's merge_and_unload)."""
    model = unwrap(model)
    return model.merge_and_unload() if is_peft(model) else model
