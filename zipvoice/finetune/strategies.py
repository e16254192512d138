"""Set a ZipVoice model up for fine-tuning: initial weights, vocabulary, frozen parts."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import load_state_dict_file, strip_module_prefix
from zipvoice.finetune.adapters import apply_adapters, unwrap
from zipvoice.finetune.options import FinetuneOptions
from zipvoice.finetune.vocab import describe, extend_embedding
from zipvoice.tokenizer.token_table import read_token_table

logger = logging.getLogger(__name__)

EMBED_KEY = "embed.weight"


def format_count(n: int) -> str:
    """``123456789`` → ``123.5M``; ``12345`` → ``12.3K``."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def log_trainable(model: nn.Module, mode: str) -> str:
    trainable, total = count_parameters(model)
    line = (f"{mode}: trainable {format_count(trainable)} / {format_count(total)} "
            f"({100.0 * trainable / max(total, 1):.2f} %)")
    logger.info(line)
    return line


def _mismatch(model: nn.Module, state: dict) -> str:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = [f"{len(items)} {label} (e.g. {items[0]})"
             for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape))
             if items]
    return "; ".join(parts)


def read_weights(path: Path, trust: bool = False) -> dict:
    """State dict of a ``.pt`` (``{"model": ...}`` or bare, weights only) or ``.safetensors`` file."""
    if path.suffix != ".safetensors":
        return load_state_dict_file(path, trust=trust, key="model")
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        from safetensors.torch import load_file

        return strip_module_prefix(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise InputError(f"{path}: not a readable safetensors file ({e})") from e


def load_init_checkpoint(
    model: nn.Module,
    init_checkpoint: str | Path,
    base_token_file: str | Path | None = None,
    token_file: str | Path | None = None,
    trust: bool = False,
) -> bool:
    """Strictly load ``init_checkpoint`` (``{"model": ...}``, weights only) into ``model``.

    When ``token_file`` (the model's table) differs from the checkpoint's table
    (``base_token_file``, or ``tokens.txt`` beside the checkpoint), embedding
    rows are carried over by token string and new rows initialised as
    :mod:`zipvoice.finetune.vocab` describes. Returns True when the table was
    changed (the embedding then has rows that were never trained).
    """
    init_checkpoint = Path(init_checkpoint)
    state = read_weights(init_checkpoint, trust=trust)
    model = unwrap(model)
    if any("lora_" in k for k in state):
        raise InputError(f"{init_checkpoint}: holds LoRA/DoRA adapters, not a whole model; merge them into "
                         "a model directory with zipvoice.bin.merge_lora first")
    if EMBED_KEY not in state:
        raise InputError(f"{init_checkpoint}: has no {EMBED_KEY} (not a ZipVoice checkpoint)")
    ckpt_rows, model_rows = state[EMBED_KEY].shape[0], model.embed.weight.shape[0]
    extended = False
    if token_file is not None:
        new = read_token_table(token_file)
        if len(new) != model_rows:
            raise InputError(f"{token_file}: has {len(new)} tokens but the model's embedding {model_rows} rows")
        base_file = Path(base_token_file) if base_token_file else init_checkpoint.parent / "tokens.txt"
        if base_file.is_file():
            base = read_token_table(base_file)
            if len(base) != ckpt_rows:
                raise InputError(f"{base_file}: has {len(base)} tokens but {init_checkpoint} has "
                                 f"{ckpt_rows} embedding rows (wrong base token file)")
            if base != new:
                weight, plan = extend_embedding(state[EMBED_KEY], base, new)
                state = dict(state)
                state[EMBED_KEY] = weight
                extended = True
                logger.info("token table %s (%d) → %s (%d): %s", base_file, len(base), token_file, len(new),
                            plan.summary())
                for line in describe(plan):
                    logger.info(line)
        elif base_token_file is not None:
            raise InputError(f"{base_token_file}: no such token file")
        elif ckpt_rows != model_rows:
            raise InputError(f"{init_checkpoint}: has {ckpt_rows} embedding rows, {token_file} {model_rows} "
                             f"tokens, and there is no {base_file} to map them (pass the base token file)")
    elif ckpt_rows != model_rows:
        raise InputError(f"{init_checkpoint}: has {ckpt_rows} embedding rows but the model {model_rows}; "
                         "pass the token files to extend the vocabulary")
    mismatch = _mismatch(model, state)
    if mismatch:
        raise InputError(f"{init_checkpoint}: does not match the model: {mismatch}")
    model.load_state_dict(state, strict=True)
    logger.info("initialised from %s", init_checkpoint)
    return extended


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def prepare_model_for_finetuning(
    model: nn.Module,
    opts: FinetuneOptions,
    init_checkpoint: str | Path | None = None,
    base_token_file: str | Path | None = None,
    token_file: str | Path | None = None,
    trust: bool = False,
) -> nn.Module:
    """Load initial weights (extending the vocabulary if needed) and apply the strategy.

    Returns ``model`` itself in the full/freeze modes, or a peft model wrapping it
    in the LoRA/DoRA modes (the embedding stays trainable there when the token
    table was extended). Only parameters with ``requires_grad`` should be given
    to the optimizer. To resume an adapter run, prepare the model the same way
    (same initial checkpoint and token files), then restore the stored adapters
    with :func:`zipvoice.finetune.load_trainable_state_dict`.
    """
    model = unwrap(model)
    n_stacks = len(model.fm_decoder.encoders)
    bad = [i for i in opts.freeze_fm_decoder_stacks if i >= n_stacks]
    if bad:
        raise InputError(f"--freeze-fm-decoder-stacks: stack {bad[0]} is out of range; the FM decoder has "
                         f"{n_stacks} stacks (0-based: 0-{n_stacks - 1})")
    extended = False
    if init_checkpoint is not None:
        extended = load_init_checkpoint(model, init_checkpoint, base_token_file, token_file, trust=trust)
    for p in model.parameters():
        p.requires_grad_(True)
    mode = opts.mode
    if mode == "freeze_decoder":
        freeze(model.fm_decoder)
    elif mode == "freeze_stacks":
        for i in opts.freeze_fm_decoder_stacks:
            freeze(model.fm_decoder.encoders[i])
        logger.info("frozen FM-decoder stacks (0-based): %s",
                    ", ".join(str(i) for i in sorted(opts.freeze_fm_decoder_stacks)))
    elif opts.uses_adapters:
        model = apply_adapters(model, opts, train_embed=extended)
        if extended:
            logger.info("the token embedding stays trainable (the token table was extended)")
    log_trainable(model, mode)
    return model
