"""ACE-Step v1 LoRA adapters in the released file layout (``pytorch_lora_weights.safetensors``).

The file holds, for every adapted ``nn.Linear``, ``<module path>.lora_A.weight`` [r, in] and
``<module path>.lora_B.weight`` [out, r] (float32, metadata ``{"format": "pt"}``): no adapter
name, no prefix, and no alpha / rank / rslora information.

Two scalings of the same tensors are in use:

- the pipeline view: the released inference pipeline loads the file with ``lora_alpha = r``, so
  the update is ``lora_weight * B @ A`` (``lora_weight`` 1.0 by default);
- the trainer view: while training, peft scales by ``lora_alpha / sqrt(r)`` (rslora) or
  ``lora_alpha / r``; :func:`read_lora_config` reads those arguments from a ``LoraConfig``-style
  JSON (``r``, ``lora_alpha``, ``use_rslora``, ``target_modules``) and :func:`lora_scaling`
  turns them into the factor.

:func:`load_lora` merges an adapter into the model's weights (``W += scale * B @ A``);
:func:`save_lora` writes one atomically; :func:`adapter_from_peft` collects the tensors of a
peft-wrapped model in this layout.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from shirabe.cli import InputError

LORA_FILE = "pytorch_lora_weights.safetensors"
Adapter = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LoraSettings:
    """The peft ``LoraConfig`` arguments that fix an adapter's trained scaling."""

    rank: int
    alpha: float
    use_rslora: bool = False
    target_modules: tuple[str, ...] = ()

    @property
    def scaling(self) -> float:
        return lora_scaling(self.alpha, self.rank, self.use_rslora)


def lora_scaling(alpha: float, rank: int, use_rslora: bool) -> float:
    """peft's factor: ``alpha / sqrt(rank)`` with rslora, else ``alpha / rank``."""
    return alpha / math.sqrt(rank) if use_rslora else alpha / rank


def read_lora_config(path: str | Path) -> LoraSettings:
    """``r``, ``lora_alpha``, ``use_rslora`` (default false), ``target_modules`` from a JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: LoRA config not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    rank, alpha = data.get("r"), data.get("lora_alpha")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise InputError(f"{path}: field 'r' must be a positive integer, got {rank!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise InputError(f"{path}: field 'lora_alpha' must be a number, got {alpha!r}")
    rslora = data.get("use_rslora", False)
    if not isinstance(rslora, bool):
        raise InputError(f"{path}: field 'use_rslora' must be true or false, got {rslora!r}")
    targets = data.get("target_modules", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InputError(f"{path}: field 'target_modules' must be a list of module names")
    return LoraSettings(rank=rank, alpha=float(alpha), use_rslora=rslora, target_modules=tuple(targets))


def _lora_path(path: str | Path) -> Path:
    path = Path(path)
    return path / LORA_FILE if path.is_dir() else path


def read_lora_file(path: str | Path) -> Adapter:
    """``{module path: (A [r, in], B [out, r])}`` from an adapter file (or a folder holding one)."""
    from safetensors.torch import load_file

    path = _lora_path(path)
    if not path.is_file():
        raise InputError(f"{path}: LoRA file not found")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from None
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        for part in ("lora_A", "lora_B"):
            suffix = f".{part}.weight"
            if key.endswith(suffix):
                halves.setdefault(key[: -len(suffix)], {})[part] = tensor
                break
        else:
            raise InputError(f"{path}: unexpected key {key!r} (expected <module>.lora_A.weight / .lora_B.weight)")
    adapter: Adapter = {}
    for module, parts in halves.items():
        if set(parts) != {"lora_A", "lora_B"}:
            missing = "lora_B" if "lora_A" in parts else "lora_A"
            raise InputError(f"{path}: {module} has no {missing}.weight")
        a, b = parts["lora_A"], parts["lora_B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise InputError(f"{path}: {module} has inconsistent shapes A {list(a.shape)}, B {list(b.shape)}")
        adapter[module] = (a, b)
    if not adapter:
        raise InputError(f"{path}: holds no LoRA tensors")
    return adapter


def merge_adapter(model: nn.Module, adapter: Adapter, scale: float, source: str = "<adapter>") -> list[str]:
    """Fold ``scale * B @ A`` into each named ``nn.Linear``; returns the module names."""
    modules = dict(model.named_modules())
    for name, (a, b) in adapter.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            what = "no module" if layer is None else f"a {type(layer).__name__}, not an nn.Linear"
            raise InputError(f"{source}: {name} is {what} of the model")
        if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
            raise InputError(f"{source}: {name} expects A [r, {layer.in_features}] and B [{layer.out_features}, r], "
                             f"got {list(a.shape)} and {list(b.shape)}")
    with torch.no_grad():
        for name, (a, b) in adapter.items():
            weight = modules[name].weight
            delta = (b.to(torch.float32) @ a.to(torch.float32)) * scale
            weight.copy_((weight.to(torch.float32) + delta.to(weight.device)).to(weight.dtype))
    return list(adapter)


def load_lora(model: nn.Module, path: str | Path, lora_weight: float = 1.0,
              settings: LoraSettings | None = None) -> list[str]:
    """Merge the adapter at ``path`` into ``model``.

    Without ``settings`` the scale is ``lora_weight`` (the released pipeline's view); with them it
    is ``lora_weight * settings.scaling`` (the trainer's view, e.g. ``alpha / sqrt(r)``).
    """
    path = _lora_path(path)
    adapter = read_lora_file(path)
    if settings is not None:
        ranks = {a.shape[0] for a, _ in adapter.values()}
        if ranks != {settings.rank}:
            raise InputError(f"{path}: tensors have rank {sorted(ranks)} but the LoRA config says r={settings.rank}")
    scale = lora_weight * (settings.scaling if settings is not None else 1.0)
    return merge_adapter(model, adapter, scale, str(path))


def trained_settings_beside(path: str | Path, name: str = "lora_config.json") -> LoraSettings | None:
    """The training scaling of the adapter at ``path`` when its LoRA config JSON lies beside it.

    The file layout holds no alpha, so the released pipeline plays an adapter at ``lora_weight`` x B@A;
    an adapter trained with alpha/r != 1 (or rslora) only sounds as trained with that factor. The
    trainer and the accompaniment bundles write the config beside the weights; adapters without it
    (e.g. the released ones) keep the pipeline's convention.
    """
    config = _lora_path(path).parent / name
    return read_lora_config(config) if config.is_file() else None


def save_lora(path: str | Path, adapter: Adapter) -> Path:
    """Write ``adapter`` in the released layout (float32), atomically; a folder gets ``LORA_FILE``."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / LORA_FILE
    tensors = {}
    for name, (a, b) in adapter.items():
        tensors[f"{name}.lora_A.weight"] = a.detach().to("cpu", torch.float32).contiguous()
        tensors[f"{name}.lora_B.weight"] = b.detach().to("cpu", torch.float32).contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    return path


def adapter_from_peft(model: nn.Module, adapter_name: str = "default") -> Adapter:
    """The ``adapter_name`` tensors of a peft-wrapped model, keyed by the base model's module paths."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, param in model.named_parameters():
        for part in ("lora_A", "lora_B"):
            marker = f".{part}.{adapter_name}.weight"
            if key.endswith(marker):
                name = key[: -len(marker)]
                for prefix in ("base_model.model.",):
                    name = name[len(prefix):] if name.startswith(prefix) else name
                found.setdefault(name, {})[part] = param
    if not found:
        raise InputError(f"the model holds no LoRA adapter named {adapter_name!r}")
    return {name: (parts["lora_A"], parts["lora_B"]) for name, parts in found.items()}
