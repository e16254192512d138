"""Strict loading (and saving) of an ACE-Step v1 transformer folder (``config.json`` + ``diffusion_pytorch_model.safetensors``).

Every missing, unexpected or mis-shaped tensor is a one-line :class:`~shirabe.cli.InputError`
naming the weights file; so are a missing folder or file and an unreadable safetensors file.
Tensors are cast to the requested dtype (the released file is 16-bit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from acestep.models.config import config_dict, load_config
from acestep.models.transformer import ACEStepTransformer
from shirabe.cli import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


def _some(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from None


def check_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """One-line error unless ``state`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {list(state[k].shape)} != {list(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_some(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_some(shapes)}")
    if problems:
        raise InputError(f"{source}: does not match the model config; " + "; ".join(problems))


def load_transformer(folder: str | Path, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> ACEStepTransformer:
    """Build the transformer from ``folder/config.json`` and load its weights strictly (eval mode)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: transformer folder not found")
    config = load_config(folder / CONFIG_NAME)
    weights = folder / WEIGHTS_NAME
    state = read_safetensors(weights)
    with torch.device("meta"):
        model = ACEStepTransformer(config)
    check_state(model, state, str(weights))
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return model.to(device).eval()


def save_transformer(model: ACEStepTransformer, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``config.json`` + the weights in the released layout; each file atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / WEIGHTS_NAME)
    tmp = folder / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(config_dict(model.config), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / CONFIG_NAME)
    return folder
