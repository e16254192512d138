"""Building and strictly loading ACE-Step's Music-DCAE (diffusers ``AutoencoderDC``) and music vocoder.

Each lives in a folder with ``config.json`` (a diffusers ConfigMixin file) and
``diffusion_pytorch_model.safetensors`` (the released ``music_dcae_f8c8/`` and ``music_vocoder/``
layout). Models are built on the meta device and the weights assigned, so nothing is initialised
twice; the load is strict: a missing folder or file, unreadable JSON/safetensors, or a missing,
unexpected or mis-shaped tensor is a one-line :class:`~shirabe.cli.InputError` naming the file.
Floating-point tensors are loaded as float32; the models are returned in eval mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from acestep.dcae.vocoder import (
    MusicVocoder,
    VocoderConfig,
    parse_vocoder_config,
    read_vocoder_config,
)
from shirabe.cli import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"

# The released ``music_dcae_f8c8/config.json`` values (f8c8: 8 latent channels, 8× down-sampling).
RELEASED_DCAE_CONFIG: dict[str, Any] = {
    "attention_head_dim": 32,
    "decoder_act_fns": "silu",
    "decoder_block_out_channels": [128, 256, 512, 1024],
    "decoder_block_types": ["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"],
    "decoder_layers_per_block": [3, 3, 3, 3],
    "decoder_norm_types": "rms_norm",
    "decoder_qkv_multiscales": [[], [], [5], [5]],
    "downsample_block_type": "Conv",
    "encoder_block_out_channels": [128, 256, 512, 1024],
    "encoder_block_types": ["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"],
    "encoder_layers_per_block": [2, 2, 3, 3],
    "encoder_qkv_multiscales": [[], [], [5], [5]],
    "in_channels": 2,
    "latent_channels": 8,
    "scaling_factor": 0.41407,
    "upsample_block_type": "interpolate",
}


def _some(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_exact_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, what: str) -> None:
    """One-line :class:`InputError` unless ``state`` holds exactly the model's tensor names and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_some(unexpected)}")
    if wrong:
        problems.append(f"shape mismatch: {_some(wrong, 2)}")
    if problems:
        raise InputError(f"{source}: does not match the {what} config; " + "; ".join(problems))


def _folder_files(folder: str | Path, what: str) -> tuple[Path, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {what} folder not found")
    config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config, weights):
        if not path.is_file():
            raise InputError(f"{path}: {what} file not found")
    return config, weights


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises several types for a damaged file
        raise InputError(f"{path}: cannot read safetensors: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}


def _assign(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path, what: str,
            device: str | torch.device | None) -> torch.nn.Module:
    check_exact_state_dict(model, state, str(source), what)
    model.load_state_dict(state, strict=True, assign=True)
    if device is not None:
        model = model.to(device)
    return model.eval()


# ---- DCAE ------------------------------------------------------------------------------------

def build_dcae(config: dict[str, Any] | None = None, device: str | torch.device | None = None,
               source: str = "config") -> torch.nn.Module:
    """A random-weight diffusers ``AutoencoderDC`` (released layout by default; ``device="meta"`` allocates nothing)."""
    from diffusers import AutoencoderDC

    config = dict(RELEASED_DCAE_CONFIG if config is None else config)
    try:
        with torch.device(device or "cpu"):
            model = AutoencoderDC.from_config(config)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as e:
        raise InputError(f"{source}: cannot build AutoencoderDC: {str(e).splitlines()[0]}") from None
    return model.eval()


def check_dcae_config(raw: dict[str, Any], source: str) -> None:
    """One-line :class:`InputError` for channel widths that diffusers would accept but that break the shapes.

    Neighbouring stage widths must satisfy ``4 · c[i] % c[i+1] == 0`` (the down block's shortcut
    averages groups of ``4 · in / out`` channels, the up block's repeats ``4 · out / in``), the last
    width must be a multiple of ``latent_channels`` and every EfficientViT stage width a multiple
    of ``attention_head_dim``.
    """
    problems = []
    latent = raw.get("latent_channels", 32)
    head_dim = raw.get("attention_head_dim", 32)
    for side in ("encoder", "decoder"):
        widths = raw.get(f"{side}_block_out_channels")
        types = raw.get(f"{side}_block_types")
        if not isinstance(widths, list) or not widths or not all(isinstance(w, int) and w > 0 for w in widths):
            problems.append(f"{side}_block_out_channels must be a non-empty list of positive integers")
            continue
        for a, b in zip(widths, widths[1:]):
            if (4 * a) % b:
                problems.append(f"{side}_block_out_channels {a} -> {b}: 4·{a} is not a multiple of {b}")
        if isinstance(latent, int) and latent > 0 and widths[-1] % latent:
            problems.append(f"{side}_block_out_channels[-1] {widths[-1]} is not a multiple of latent_channels {latent}")
        if isinstance(types, list) and isinstance(head_dim, int) and head_dim > 0:
            for w, t in zip(widths, types):
                if t == "EfficientViTBlock" and w % head_dim:
                    problems.append(f"{side} EfficientViT width {w} is not a multiple of attention_head_dim {head_dim}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))


def read_dcae_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: DCAE config not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the DCAE config: {e}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object")
    name = raw.get("_class_name", "AutoencoderDC")
    if name != "AutoencoderDC":
        raise InputError(f"{path}: _class_name is {name!r}, expected 'AutoencoderDC'")
    check_dcae_config(raw, str(path))
    return raw


def load_dcae(folder: str | Path, device: str | torch.device | None = None) -> torch.nn.Module:
    """``AutoencoderDC`` from a ``music_dcae_f8c8``-style folder, loaded strictly, in eval mode."""
    config_path, weights_path = _folder_files(folder, "DCAE")
    model = build_dcae(read_dcae_config(config_path), device="meta", source=str(config_path))
    return _assign(model, _read_weights(weights_path), weights_path, "DCAE", device)


# ---- vocoder ---------------------------------------------------------------------------------

def build_vocoder(config: VocoderConfig | dict[str, Any] | None = None, device: str | torch.device | None = None,
                  source: str = "config") -> MusicVocoder:
    """A random-weight :class:`MusicVocoder` (released layout by default; ``device="meta"`` allocates nothing)."""
    if config is None:
        config = VocoderConfig()
    elif not isinstance(config, VocoderConfig):
        config = parse_vocoder_config(config, source=source)
    with torch.device(device or "cpu"):
        model = MusicVocoder(config)
    return model.eval()


def load_vocoder(folder: str | Path, device: str | torch.device | None = None) -> MusicVocoder:
    """:class:`MusicVocoder` from a ``music_vocoder``-style folder (incl. the mel buffers), strictly, in eval mode."""
    config_path, weights_path = _folder_files(folder, "vocoder")
    model = build_vocoder(read_vocoder_config(config_path), device="meta")
    return _assign(model, _read_weights(weights_path), weights_path, "vocoder", device)
