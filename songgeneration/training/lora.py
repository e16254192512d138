"""LoRA on LeLM's two decoders through peft, and the adapter folder in peft's own layout.

Adapters go on the ``nn.Linear`` layers of ``transformer`` (main decoder) and ``transformer2``
(sub decoder) whose names end with one of ``lora.target_modules`` (default the attention
projections ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``), plus the SwiGLU ``gate_proj``,
``up_proj``, ``down_proj`` with ``lora.include_mlp``. Everything else (heads, embeddings, the
condition tables, the bridging ``mlp``) stays frozen.

The adapter folder is what ``PeftModel.save_pretrained`` writes: ``adapter_model.safetensors`` +
``adapter_config.json``; :func:`load_adapted` reads it back onto a base LeLM and
:func:`merge_adapter` folds it into plain weights (saved with
:func:`songgeneration.models.save_lelm` they load like any checkpoint).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from torch import nn

from shirabe.cli import InputError
from shirabe.train.lora import merge_lora, resolve_targets, unwrap, wrap_lora

DECODERS = ("transformer.", "transformer2.")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def lora_targets(model: nn.Module, target_modules: list[str], include_mlp: bool, source: str = "config") -> list[str]:
    """Full names of the decoder layers that get adapters."""
    patterns = list(target_modules) + [m for m in MLP_MODULES if include_mlp and m not in target_modules]
    names = resolve_targets(model, patterns, option=f"{source}: lora.target_modules")
    names = [n for n in names if n.startswith(DECODERS)]
    if not names:
        raise InputError(f"{source}: lora.target_modules {patterns} name no layer of the two decoders")
    return names


def wrap_lelm(model: nn.Module, lora, source: str = "config") -> nn.Module:
    """A peft model with adapters on the decoders (``lora``: the ``lora`` section of the train config)."""
    targets = lora_targets(model, lora.target_modules, lora.include_mlp, source)
    return wrap_lora(model, targets, lora.r, lora.alpha, lora.dropout)


def save_adapter(model: nn.Module, folder: str | Path) -> Path:
    """``adapter_model.safetensors`` + ``adapter_config.json`` in ``folder`` (replaced atomically)."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp.{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    unwrap(model).save_pretrained(str(tmp), safe_serialization=True)
    if folder.exists():
        old = folder.with_name(f".old.{folder.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    return folder


def load_adapted(base: nn.Module, folder: str | Path) -> nn.Module:
    """The base LeLM with the adapter folder on it (a peft model, eval mode)."""
    folder = Path(folder)
    for name in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        if not (folder / name).is_file():
            raise InputError(f"{folder}: no {name} (not a LoRA adapter folder)")
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(base, str(folder), is_trainable=False).eval()
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{folder}: the adapter does not fit the model ({str(exc).splitlines()[0]})") from None


def merge_adapter(model: nn.Module) -> nn.Module:
    """The plain LeLM with the adapters folded into its weights."""
    return merge_lora(model)
