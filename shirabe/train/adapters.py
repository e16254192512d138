"""Adapter-only checkpoints: store and restore just the tensors a run trains.

When a model is wrapped by peft (LoRA and friends), its base weights are frozen
and only the adapters (``...lora_A...``, ``...lora_B...``, any ``modules_to_save``)
train. :class:`shirabe.train.loop.Trainer` then stores, under ``model`` and
``model_avg``, only the parameters with ``requires_grad`` — megabytes instead
of the whole model — with the keys of the wrapped model's ``state_dict``
(``base_model.model.<...>.lora_A.default.weight``). Resuming builds the same
wrapped model (base weights from wherever the run took them) and loads these
tensors into it; every trainable tensor must be in the file and nothing else.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from shirabe.cli import InputError


def is_peft_model(model: nn.Module) -> bool:
    """True for a ``peft.PeftModel`` (without importing peft when nothing did)."""
    if "peft" not in sys.modules:
        return False
    from peft import PeftModel

    return isinstance(model, PeftModel)


def trainable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The ``state_dict`` entries of the parameters that require gradients."""
    state = model.state_dict()
    return {name: state[name] for name in trainable_names(model)}


def load_trainable_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load what :func:`trainable_state_dict` stored; :class:`InputError` naming ``source``
    when a trainable tensor is missing, a stored one is not trainable here, or a shape differs."""
    wanted = set(trainable_names(model))
    missing = sorted(wanted - set(state))
    extra = sorted(set(state) - wanted)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} trainable tensor(s) missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} not trainable in this model (e.g. {extra[0]})")
        raise InputError(f"{source}: its adapter/trainable tensors do not fit the model: {'; '.join(parts)}")
    own = model.state_dict()
    for name, value in state.items():
        if tuple(own[name].shape) != tuple(value.shape):
            raise InputError(f"{source}: {name} has shape {tuple(value.shape)}, the model's is "
                             f"{tuple(own[name].shape)}")
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
