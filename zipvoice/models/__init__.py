"""ZipVoice models and loading of released / trained checkpoints.

A model directory holds ``model.json`` (``{"model": {...}, "feature": {...}}``,
upstream's schema), ``tokens.txt`` (vocabulary size and pad id come from it) and
the weights (``model.pt``: ``{"model": state_dict}``, or a ``.safetensors``
file). Weights are loaded strictly; a ``module.`` (DDP) prefix is tolerated.

>>> model = load_model("download/zipvoice")           # doctest: +SKIP
>>> model = load_model("exp/zipvoice_distill", "epoch-1-avg-1.pt", "zipvoice_distill")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from shirabe.cli import InputError
from shirabe.train.checkpoint import load_state_dict_file, strip_module_prefix
from zipvoice.models.zipvoice import ZipVoice
from zipvoice.models.zipvoice_distill import ZipVoiceDistill
from zipvoice.tokenizer.token_table import vocab_info

logger = logging.getLogger(__name__)

MODEL_CLASSES: dict[str, type[ZipVoice]] = {"zipvoice": ZipVoice, "zipvoice_distill": ZipVoiceDistill}

#: sampling defaults per model (upstream's): number of Euler steps and guidance scale
SAMPLING_DEFAULTS = {
    "zipvoice": {"num_step": 16, "guidance_scale": 1.0},
    "zipvoice_distill": {"num_step": 8, "guidance_scale": 3.0},
}

MODEL_CONFIG_KEYS = (
    "fm_decoder_downsampling_factor",
    "fm_decoder_num_layers",
    "fm_decoder_cnn_module_kernel",
    "fm_decoder_feedforward_dim",
    "fm_decoder_num_heads",
    "fm_decoder_dim",
    "text_encoder_num_layers",
    "text_encoder_feedforward_dim",
    "text_encoder_cnn_module_kernel",
    "text_encoder_num_heads",
    "text_encoder_dim",
    "time_embed_dim",
    "text_embed_dim",
    "query_head_dim",
    "value_head_dim",
    "pos_head_dim",
    "pos_dim",
    "feat_dim",
)

BASE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "zipvoice_base.json"

__all__ = [
    "BASE_CONFIG",
    "MODEL_CLASSES",
    "SAMPLING_DEFAULTS",
    "ZipVoice",
    "ZipVoiceDistill",
    "build_model",
    "load_model",
    "load_weights",
    "read_config",
]


def read_config(path: str | Path) -> dict:
    """Read a ``model.json``; returns the whole dict (with ``model`` and ``feature`` blocks)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model config")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable JSON model config ({e})") from e
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise InputError(f"{path}: expected a JSON object with a 'model' block")
    model_cfg = config["model"]
    unknown = sorted(set(model_cfg) - set(MODEL_CONFIG_KEYS) - {"vocab_size", "pad_id"})
    if unknown:
        raise InputError(f"{path}: unknown model field(s): {', '.join(unknown)}")
    feature = config.get("feature", {})
    if feature and (feature.get("type", "vocos") != "vocos" or int(feature.get("sampling_rate", 24000)) != 24000):
        raise InputError(f"{path}: only 24 kHz 'vocos' features are supported, got {feature}")
    return config


def build_model(
    model_config: dict, vocab_size: int, pad_id: int, model_name: str = "zipvoice"
) -> ZipVoice:
    """Instantiate ``model_name`` from the ``model`` block of a config (random weights)."""
    if model_name not in MODEL_CLASSES:
        raise InputError(f"unknown model name {model_name!r} (choose from {', '.join(MODEL_CLASSES)})")
    cfg = {k: v for k, v in model_config.items() if k not in ("vocab_size", "pad_id")}
    try:
        return MODEL_CLASSES[model_name](**cfg, vocab_size=vocab_size, pad_id=pad_id)
    except (TypeError, ValueError, AssertionError) as e:
        raise InputError(f"cannot build {model_name} from the config: {e}") from e


def _summarise_mismatch(model: nn.Module, state_dict: dict) -> str:
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shape = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shape)):
        if items:
            parts.append(f"{len(items)} {label} (e.g. {items[0]})")
    return "; ".join(parts)


def load_weights(model: nn.Module, checkpoint: str | Path, trust: bool = False) -> nn.Module:
    """Strictly load ``checkpoint`` (``.pt`` with ``{"model": ...}`` or ``.safetensors``) into ``model``."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".safetensors":
        if not checkpoint.is_file():
            raise InputError(f"{checkpoint}: no such checkpoint file")
        try:
            from safetensors.torch import load_file

            state_dict = strip_module_prefix(load_file(str(checkpoint)))
        except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad file
            raise InputError(f"{checkpoint}: not a readable safetensors file ({e})") from e
    else:
        state_dict = load_state_dict_file(checkpoint, trust=trust, key="model")
    mismatch = _summarise_mismatch(model, state_dict)
    if mismatch:
        raise InputError(f"{checkpoint}: does not match the model config: {mismatch}")
    model.load_state_dict(state_dict, strict=True)
    return model


def load_model(
    model_dir: str | Path,
    checkpoint_name: str = "model.pt",
    model_name: str = "zipvoice",
    trust: bool = False,
    device: str | torch.device = "cpu",
    config_name: str = "model.json",
    token_file: str | Path | None = None,
) -> ZipVoice:
    """Build ``model_name`` from ``model_dir/model.json`` + ``tokens.txt`` and load its weights.

    ``checkpoint_name`` is relative to ``model_dir`` (or an absolute path);
    ``trust=True`` allows a checkpoint that needs pickle. Returns the model in
    eval mode on ``device``.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: no such model directory")
    config = read_config(model_dir / config_name)
    vocab_size, pad_id = vocab_info(Path(token_file) if token_file else model_dir / "tokens.txt")
    model = build_model(config["model"], vocab_size, pad_id, model_name)
    load_weights(model, model_dir / checkpoint_name, trust=trust)
    logger.info("loaded %s from %s (%d parameters)", model_name, model_dir / checkpoint_name,
                sum(p.numel() for p in model.parameters()))
    return model.to(device).eval()
