"""LoRA / DoRA adapters on ZipVoice through peft, adapter-only checkpoints, merging.

Adapters go on ``nn.Linear`` and ``ActivationDropoutAndLinear`` modules (see
:mod:`zipvoice.finetune.lora_layers`) of the flow-matching decoder whose name
(inside ``fm_decoder``) equals or ends with one of
``FinetuneOptions.lora_target_modules``. Adapter checkpoints hold only the
adapter tensors (``...lora_A.default.weight``, ``...lora_B.default.weight``, for
DoRA also ``...lora_magnitude_vector.default.weight``) and, when the token
table was extended, ``embed.weight``; keys are named relative to the ZipVoice
model (without peft's ``base_model.model.`` prefix).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load, strip_module_prefix
from zipvoice.finetune.options import ADAPTER_MODES, FinetuneOptions
from zipvoice.models.scaling import ActivationDropoutAndLinear

logger = logging.getLogger(__name__)

PEFT_PREFIX = "base_model.model."
ADAPTER_KEY_MARK = "lora_"
EMBED_KEY = "embed.weight"
DEFAULT_EXAMPLES = ("self_attn1.in_proj", "feed_forward2.in_proj", "nonlin_attention.out_proj")
ADAPTABLE = (nn.Linear, ActivationDropoutAndLinear)  # the latter through zipvoice.finetune.lora_layers


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP (if any)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_peft_model(model: nn.Module) -> bool:
    if "peft" not in sys.modules:  # nothing can be wrapped before peft was imported
        return False
    from peft import PeftModel

    return isinstance(unwrap(model), PeftModel)


def base_zipvoice(model: nn.Module) -> nn.Module:
    """The ZipVoice module itself (inside DDP and/or peft)."""
    model = unwrap(model)
    return model.get_base_model() if is_peft_model(model) else model


def resolve_lora_targets(model: nn.Module, patterns) -> list[str]:
    """Full module names (``fm_decoder....``) of the adaptable layers the patterns name.

    Adaptable: ``nn.Linear`` and ``ActivationDropoutAndLinear``. Raises
    :class:`InputError` for a pattern that names no module, or only modules of
    other kinds.
    """
    decoder = model.fm_decoder
    modules = dict(decoder.named_modules())
    targets: list[str] = []
    for pat in patterns:
        pat = pat.removeprefix("fm_decoder.")
        hits = [n for n in modules if n and (n == pat or n.endswith("." + pat))]
        if not hits:
            raise InputError(f"--lora-target-modules: {pat!r} names no module of the FM decoder "
                             f"(e.g. {', '.join(DEFAULT_EXAMPLES)})")
        linear = [n for n in hits if isinstance(modules[n], ADAPTABLE)]
        if not linear:
            kind = type(modules[hits[0]]).__name__
            raise InputError(f"--lora-target-modules: {pat!r} is a {kind}; adapters go on nn.Linear and "
                             "ActivationDropoutAndLinear modules")
        targets += [f"fm_decoder.{n}" for n in linear if f"fm_decoder.{n}" not in targets]
    return targets


def apply_adapters(model: nn.Module, opts: FinetuneOptions, train_embed: bool = False) -> nn.Module:
    """Wrap ``model`` (a ZipVoice) in a peft model with LoRA/DoRA adapters per ``opts``.

    Every base weight is frozen; with ``train_embed`` the token embedding stays
    trainable. The model is changed in place (its linears are replaced) and the
    returned ``PeftModel`` forwards ``model(...)`` and attribute access
    (``forward_fm_decoder``, ``sample``, ...) to it.
    """
    from peft import LoraConfig, get_peft_model

    from zipvoice.finetune.lora_layers import CUSTOM_LORA_LAYERS

    if opts.mode not in ADAPTER_MODES:
        raise ValueError(f"mode {opts.mode!r} has no adapters")
    model = unwrap(model)
    targets = resolve_lora_targets(model, opts.lora_target_modules)
    config = LoraConfig(
        r=opts.lora_rank,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules=targets,
        use_dora=opts.use_dora,
        bias="none",
    )
    config._register_custom_module(CUSTOM_LORA_LAYERS)
    with warnings.catch_warnings():  # peft warns about every custom layer type it wraps
        warnings.filterwarnings("ignore", message="Unsupported layer type")
        peft_model = get_peft_model(model, config)
    if train_embed:
        peft_model.get_base_model().embed.weight.requires_grad_(True)
    logger.info("%s adapters (rank %d, alpha %g, dropout %g) on %d projections of the FM decoder",
                "DoRA" if opts.use_dora else "LoRA", opts.lora_rank, opts.lora_alpha, opts.lora_dropout, len(targets))
    return peft_model


def _relative(key: str) -> str:
    return key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key


def trainable_state_dict(model: nn.Module, opts: FinetuneOptions) -> dict[str, torch.Tensor]:
    """What a checkpoint stores under ``"model"``.

    The full ZipVoice state_dict in the full/freeze modes; in the LoRA/DoRA
    modes only the adapter tensors and any trained base tensor (the embedding
    when the token table was extended), with keys relative to the ZipVoice
    model.
    """
    model = unwrap(model)
    if opts.mode not in ADAPTER_MODES:
        return base_zipvoice(model).state_dict() if is_peft_model(model) else model.state_dict()
    trained = {_relative(n) for n, p in model.named_parameters() if p.requires_grad}
    out = {}
    for key, value in model.state_dict().items():
        rel = _relative(key)
        if ADAPTER_KEY_MARK in rel or rel in trained:
            out[rel] = value
    return out


def split_adapter_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Adapter tensors (keys relative to ZipVoice) and the embedding, from a stored state.

    Accepts adapter-only states and full peft state_dicts (base weights ignored),
    with or without the ``module.`` / ``base_model.model.`` prefixes.
    """
    state = strip_module_prefix(state)
    adapters = {}
    embed = None
    for key, value in state.items():
        rel = _relative(key)
        if ADAPTER_KEY_MARK in rel:
            adapters[rel] = value
        elif rel == EMBED_KEY:
            embed = value
    return adapters, embed


def load_trainable_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load adapter tensors (and the embedding, if stored) into a peft-wrapped model.

    Every adapter tensor of ``model`` must be present and nothing else may be
    left over; raises :class:`InputError` naming ``source`` otherwise.
    """
    model = unwrap(model)
    adapters, embed = split_adapter_state(state)
    own = {_relative(k): k for k in model.state_dict() if ADAPTER_KEY_MARK in _relative(k)}
    missing = sorted(set(own) - set(adapters))
    unexpected = sorted(set(adapters) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} adapter tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise InputError(f"{source}: adapters do not match the fine-tuning settings: {'; '.join(parts)}")
    to_load = {own[k]: v for k, v in adapters.items()}
    if embed is not None:
        current = base_zipvoice(model).embed.weight
        if tuple(embed.shape) != tuple(current.shape):
            raise InputError(f"{source}: stored embedding has {embed.shape[0]} rows but the model "
                             f"{current.shape[0]} (give the token file the adapters were trained with)")
        to_load[PEFT_PREFIX + EMBED_KEY] = embed
    shapes = model.state_dict()
    bad = [k for k, v in to_load.items() if tuple(shapes[k].shape) != tuple(v.shape)]
    if bad:
        raise InputError(f"{source}: adapter tensor {_relative(bad[0])} has shape {tuple(to_load[bad[0]].shape)}, "
                         f"expected {tuple(shapes[bad[0]].shape)}")
    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys


def read_adapter_checkpoint(checkpoint_path: str | Path, key: str = "model", trust: bool = False):
    """``(FinetuneOptions, state)`` of an adapter checkpoint; InputError if it has none."""
    path = Path(checkpoint_path)
    ckpt = safe_load(path, trust=trust)
    if not isinstance(ckpt, dict):
        raise InputError(f"{path}: expected a checkpoint dict, found {type(ckpt).__name__}")
    meta = ckpt.get("finetune")
    if not isinstance(meta, dict) or meta.get("mode") not in ADAPTER_MODES:
        mode = meta.get("mode") if isinstance(meta, dict) else None
        raise InputError(f"{path}: holds no LoRA/DoRA adapters (fine-tuning mode: {mode or 'none recorded'})")
    state = ckpt.get(key)
    if not isinstance(state, dict):
        raise InputError(f"{path}: has no '{key}' entry (present: {', '.join(sorted(map(str, ckpt))[:8])})")
    adapters, _ = split_adapter_state(state)
    if not adapters:
        raise InputError(f"{path}: '{key}' holds no adapter tensors")
    return FinetuneOptions.from_metadata(meta), state


def load_adapter_checkpoint(
    base_model: nn.Module, checkpoint_path: str | Path, key: str = "model", trust: bool = False
) -> nn.Module:
    """Rebuild the adapted model from a base ZipVoice and an adapter-only checkpoint.

    The adapter settings come from ``checkpoint["finetune"]``; ``key`` picks the
    stored weights (``"model"`` or the running average ``"model_avg"``). A stored
    embedding replaces the base model's (its row count must match). Returns the
    peft model in eval mode.
    """
    opts, state = read_adapter_checkpoint(checkpoint_path, key=key, trust=trust)
    _, embed = split_adapter_state(state)
    model = apply_adapters(base_model, opts, train_embed=embed is not None)
    load_trainable_state_dict(model, state, source=str(checkpoint_path))
    return model.eval()


def merge_adapters(peft_model: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights; returns the plain ZipVoice model.

    Its state_dict has exactly the keys and shapes of the base model.
    """
    peft_model = unwrap(peft_model)
    if not is_peft_model(peft_model):
        raise ValueError("the model has no adapters to merge")
    merged = peft_model.merge_and_unload()
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged
