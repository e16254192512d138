"""What a training run leaves for generation: a self-contained model folder in upstream's formats.

``<exp>/songbloom.yaml`` is the training config in upstream's schema with every
file it names next to it (``${dynamic_path:???/...}``): ``vae.json``,
``vocab_g2p.yaml`` and ``model.pt``, a plain state dict with ``vae.vae.*`` (the
VAE the features were made with) and ``model.*`` (the trained model), exactly
what ``songbloom.models.load_model`` and upstream's sampler read. LoRA runs
also write ``adapter.pt``: ``{"adapter": {key: tensor}, "config": {...}}`` with
keys relative to the MVSA-DiTAR (peft's prefix dropped), merged into a full
``model.pt`` by ``python -m songbloom.bin.merge_lora``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
import yaml
from torch import nn

from shirabe.train.checkpoint import atomic_save
from shirabe.train.lora import base_model, is_peft, merge_lora, relative_key, unwrap

CONFIG_NAME = "songbloom.yaml"
MODEL_NAME = "model.pt"
ADAPTER_NAME = "adapter.pt"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_model_folder(exp_dir: Path, config_yaml: Path, config, vae_state: dict[str, torch.Tensor] | None) -> Path:
    """The yaml and the files it names (not the weights); returns the yaml's path."""
    data = yaml.safe_load(Path(config_yaml).read_text(encoding="utf-8"))
    vae_json = config.vae_config
    if vae_json is None and config.vae_cfg:
        vae_json = json.loads(Path(config.vae_cfg).read_text(encoding="utf-8"))
    data["pretrained_path"] = "${dynamic_path:???/" + MODEL_NAME + "}"
    data.setdefault("vae", {})
    if vae_json is not None and vae_state:
        _write_text(exp_dir / "vae.json", json.dumps(vae_json, indent=2) + "\n")
        data["vae"]["vae_cfg"] = "${dynamic_path:???/vae.json}"
        data["vae"]["vae_ckpt"] = None  # the weights are inside model.pt
    else:
        data["vae"]["vae_cfg"] = data["vae"]["vae_ckpt"] = None
    _write_text(exp_dir / "vocab_g2p.yaml", yaml.safe_dump(list(config.model.vocab.symbols), allow_unicode=True))
    lyrics = data["model"]["condition_provider_cfg"]["lyrics"]
    lyrics["vocab_list"] = "${load_yaml:${dynamic_path:???/vocab_g2p.yaml}}"
    path = exp_dir / CONFIG_NAME
    _write_text(path, "# written by songbloom.bin.train from " + str(config_yaml) + "\n"
                + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def release_state(model: nn.Module, vae_state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """``vae.vae.*`` + ``model.*`` of the (merged, if LoRA) model, as upstream's ``.pt``."""
    core = merge_lora(copy.deepcopy(unwrap(model))) if is_peft(model) else base_model(model)
    state = {f"vae.vae.{k}": v for k, v in (vae_state or {}).items()}
    state.update({f"model.{k}": v.detach().cpu() for k, v in core.state_dict().items()})
    return state


def adapter_state(model: nn.Module, config: dict) -> dict:
    """The trainable tensors of a peft model, keys relative to the MVSA-DiTAR, with the LoRA settings;
    ``config["targets"]`` becomes the full names of the adapted layers (what the patterns or
    ``--lora-train-all`` chose), so a loader needs no pattern rules."""
    assert is_peft(model)
    config = {**config, "targets": sorted(unwrap(model).peft_config["default"].target_modules)}
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    state = model.state_dict()
    return {"adapter": {relative_key(k): state[k].detach().cpu() for k in sorted(trained)}, "config": config}


def save_release(path: Path, state: dict) -> Path:
    return atomic_save(state, path)


def read_adapter(path: Path) -> dict:
    """An ``adapter.pt`` (see the module docstring), checked."""
    from shirabe.cli import InputError
    from shirabe.train.checkpoint import safe_load

    obj = safe_load(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("adapter"), dict) or not isinstance(obj.get("config"), dict):
        raise InputError(f"{path}: not a SongBloom adapter file ({{'adapter': ..., 'config': ...}})")
    for key in ("rank", "alpha", "targets"):
        if key not in obj["config"]:
            raise InputError(f"{path}: field 'config.{key}' is missing")
    return obj


def wrap_for_adapter(core: nn.Module, config: dict) -> nn.Module:
    """``core`` (an MVSA-DiTAR) wrapped with the LoRA layers an adapter file was trained with
    (its ``targets`` are the full names of the adapted layers), the lyric table trainable if it was."""
    from shirabe.train.lora import resolve_targets, wrap_lora

    targets = resolve_targets(core, config["targets"])
    wrapped = wrap_lora(core, targets, int(config["rank"]), float(config["alpha"]), float(config.get("dropout", 0.0)))
    from songbloom.training.modes import lyric_table

    if config.get("lyric_rows", "none") != "none":
        lyric_table(wrapped.get_base_model()).weight.requires_grad_(True)
    return wrapped
