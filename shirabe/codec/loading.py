"""Building an :class:`~shirabe.codec.oobleck.OobleckVAE` from a config and loading its weights.

- :func:`build_vae`: random weights from a :class:`~shirabe.codec.config.VAEConfig` or a json dict;
- :func:`build_stable_audio_1920_vae`: SongBloom's released 1920 VAE layout (on the meta device by
  default, to list names and shapes without allocating its 168.7M parameters);
- :func:`load_vae`: json + checkpoint. The checkpoint is read with ``weights_only=True``; it may be
  ``{'state_dict': ...}`` (the released VAE ``.ckpt``) or a bare state dict, and ``prefix`` selects
  and strips a key prefix (``vae.vae.`` takes the VAE out of a SongBloom ``.pt``; other keys are
  then ignored). The load is strict: a missing, unexpected or mis-shaped key is a one-line
  :class:`~shirabe.cli.InputError`. The model is returned in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from shirabe.cli import InputError
from shirabe.codec.config import (
    STABLE_AUDIO_1920_VAE_CONFIG,
    VAEConfig,
    parse_vae_config,
    read_vae_config,
)
from shirabe.codec.oobleck import OobleckVAE
from shirabe.train.checkpoint import load_state_dict_file

SONGBLOOM_VAE_PREFIX = "vae.vae."


def build_vae(config: VAEConfig | dict[str, Any], device: str | torch.device | None = None,
              source: str = "config") -> OobleckVAE:
    """Random-weight :class:`OobleckVAE` in eval mode; ``device="meta"`` allocates nothing."""
    if not isinstance(config, VAEConfig):
        config = parse_vae_config(config, source=source)
    with torch.device(device or "cpu"):
        model = OobleckVAE(config)
    return model.eval()


def build_stable_audio_1920_vae(device: str | torch.device | None = "meta") -> OobleckVAE:
    """SongBloom's ``stable_audio_1920_vae.json`` model (random weights; meta device by default)."""
    return build_vae(STABLE_AUDIO_1920_VAE_CONFIG, device=device, source="stable_audio_1920_vae.json")


def vae_state_dict(state: dict[str, torch.Tensor], prefix: str, source: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    if not prefix:
        return dict(state)
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not picked:
        raise InputError(f"{source}: no keys start with '{prefix}' (first keys: {', '.join(list(state)[:3])})")
    return picked


def _some(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """One-line :class:`InputError` unless ``state`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys: {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_some(unexpected)}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        problems.append(f"shape mismatch: {_some(wrong, 2)}")
    if missing and unexpected:
        hint = next((k[: -len(missing[0])] for k in unexpected if k.endswith("." + missing[0])), None)
        if hint:
            problems.append(f"the keys carry a prefix: pass prefix='{hint}'")
    if problems:
        raise InputError(f"{source}: does not match the VAE config; " + "; ".join(problems))


def load_vae(config_path: str | Path, ckpt_path: str | Path, device: str | torch.device | None = None,
             prefix: str = "", trust: bool = False) -> OobleckVAE:
    """An :class:`OobleckVAE` from a stable-audio json and a checkpoint, loaded strictly, in eval mode.

    ``prefix``: keep only the keys that start with it and strip it (``"vae.vae."`` for a SongBloom
    ``.pt``). ``trust`` allows checkpoints that need pickle.
    """
    config = read_vae_config(config_path)
    state = load_state_dict_file(ckpt_path, trust=trust, map_location="cpu", key="state_dict")
    state = vae_state_dict(state, prefix, str(ckpt_path))
    model = build_vae(config, device="meta")  # no random init: the weights are assigned below
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    check_state_dict(model, state, str(ckpt_path))
    model.load_state_dict(state, strict=True, assign=True)
    if device is not None:
        model = model.to(device)
    return model.eval()
