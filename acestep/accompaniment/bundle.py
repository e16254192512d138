"""The accompaniment model bundle: one folder with everything a trained model adds to the base.

Files (all written atomically by :func:`save_bundle`):

| file | when | content |
|---|---|---|
| ``accompaniment_config.json`` | always | the resolved :class:`acestep.config.TrainingConfig` (``model_dump(mode="json")``) |
| ``pytorch_lora_weights.safetensors`` | with a LoRA | the adapter in the released layout (:func:`acestep.models.lora.save_lora`) |
| ``lora_config.json`` | with a LoRA | ``r``, ``lora_alpha``, ``use_rslora``, ``target_modules``, ``lora_dropout`` (upstream's LoRA config JSON) |
| ``control_encoder.safetensors`` | controlnet mode | the :class:`ControlEncoder` state dict |
| ``control_encoder.json`` | controlnet mode | its constructor arguments ``out_dim``, ``injection_layers``, ``dim``, ``depth``, ``heads`` |

The adapter is applied with the trainer's scaling (``lora_alpha/sqrt(r)`` with rslora, else
``lora_alpha/r``, times ``--lora-weight``). :func:`load_bundle` checks that the files agree with each
other and with the config (mode, rank, encoder shape) and loads the control encoder strictly; every
problem is one :class:`~shirabe.cli.InputError` line naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from acestep.accompaniment.controlnet import ControlEncoder
from acestep.config import RELEASED_NUM_LAYERS, TrainingConfig, read_mapping, validate
from acestep.models.lora import (
    LORA_FILE,
    Adapter,
    LoraSettings,
    merge_adapter,
    read_lora_config,
    read_lora_file,
    save_lora,
)
from shirabe.cli import InputError

CONFIG_FILE = "accompaniment_config.json"
LORA_CONFIG_FILE = "lora_config.json"
CONTROL_FILE = "control_encoder.safetensors"
CONTROL_ARGS_FILE = "control_encoder.json"
BUNDLE_FILES = (CONFIG_FILE, LORA_FILE, LORA_CONFIG_FILE, CONTROL_FILE, CONTROL_ARGS_FILE)
CONTROL_ARGS = ("out_dim", "injection_layers", "dim", "depth", "heads")


@dataclass
class Bundle:
    """A loaded bundle (see the module docstring)."""

    folder: Path
    config: TrainingConfig
    lora_path: Path | None = None
    lora_settings: LoraSettings | None = None
    adapter: Adapter | None = None
    control_encoder: ControlEncoder | None = None

    @property
    def mode(self) -> str:
        return self.config.accompaniment.mode

    @property
    def output_type(self) -> str:
        return self.config.accompaniment.output_type

    def merge_lora(self, model: torch.nn.Module, lora_weight: float = 1.0) -> list[str]:
        """Fold the adapter into ``model`` with ``lora_weight · scaling``; returns the module names
        (none without a LoRA)."""
        if self.adapter is None or self.lora_settings is None:
            return []
        return merge_adapter(model, self.adapter, lora_weight * self.lora_settings.scaling, str(self.lora_path))

    def check_model(self, model) -> None:
        """One-line error when the control encoder does not fit ``model`` (an ACEStepTransformer)."""
        if self.control_encoder is None:
            return
        path = self.folder / CONTROL_ARGS_FILE
        width, depth = model.config.inner_dim, model.config.num_layers
        out_dim = self.control_encoder.out_proj.out_features
        if out_dim != width:
            raise InputError(f"{path}: out_dim {out_dim} does not match the transformer width {width}")
        bad = [i for i in self.control_encoder.injection_layers if i >= depth]
        if bad:
            raise InputError(f"{path}: injection layer {bad[0]} does not exist in the {depth}-layer transformer")


def control_arguments(encoder: ControlEncoder) -> dict:
    """The constructor arguments that rebuild ``encoder``."""
    return {"out_dim": encoder.out_proj.out_features, "injection_layers": list(encoder.injection_layers),
            "dim": encoder.patch_embed.out_channels, "depth": len(encoder.blocks),
            "heads": encoder.blocks[0].heads if len(encoder.blocks) else 1}


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _settings_of(config: TrainingConfig) -> LoraSettings:
    lora = config.lora
    return LoraSettings(rank=lora.r, alpha=float(lora.lora_alpha), use_rslora=lora.use_rslora,
                        target_modules=tuple(lora.target_modules))


def _check_encoder_matches(config: TrainingConfig, args: dict, where: str) -> None:
    acc = config.accompaniment
    expected = {"dim": acc.control_encoder_dim, "depth": acc.control_encoder_depth,
                "injection_layers": sorted(acc.injection_layers)}
    for name, value in expected.items():
        if args[name] != value:
            raise InputError(f"{where}: {name} is {args[name]} but {CONFIG_FILE} says "
                             f"accompaniment.{'control_encoder_' if name in ('dim', 'depth') else ''}{name} = {value}")


def save_bundle(folder: str | Path, config: TrainingConfig, adapter: Adapter | None = None,
                lora_settings: LoraSettings | None = None, control_encoder: ControlEncoder | None = None) -> Path:
    """Write a bundle to ``folder`` (created); files of an older bundle that this one lacks are removed.

    ``lora_settings`` defaults to the config's ``lora`` section; the control encoder is required in
    controlnet mode and refused in image2image mode.
    """
    folder = Path(folder)
    mode = config.accompaniment.mode
    if mode == "controlnet" and control_encoder is None:
        raise ValueError("a controlnet bundle needs its control encoder")
    if mode != "controlnet" and control_encoder is not None:
        raise ValueError(f"a {mode} bundle has no control encoder")
    settings = lora_settings if lora_settings is not None else _settings_of(config)
    if adapter is not None:
        ranks = sorted({a.shape[0] for a, _ in adapter.values()})
        if ranks != [settings.rank]:
            raise ValueError(f"the adapter has rank {ranks} but the LoRA settings say r={settings.rank}")
    if control_encoder is not None:
        _check_encoder_matches(config, control_arguments(control_encoder), "control_encoder")
    folder.mkdir(parents=True, exist_ok=True)
    written = {CONFIG_FILE}
    if adapter is not None:
        save_lora(folder / LORA_FILE, adapter)
        _write_json(folder / LORA_CONFIG_FILE, {
            "r": settings.rank, "lora_alpha": settings.alpha, "use_rslora": settings.use_rslora,
            "target_modules": list(settings.target_modules), "lora_dropout": config.lora.lora_dropout})
        written |= {LORA_FILE, LORA_CONFIG_FILE}
    if control_encoder is not None:
        from safetensors.torch import save_file

        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in control_encoder.state_dict().items()}
        tmp = folder / f".{CONTROL_FILE}.tmp"
        save_file(state, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, folder / CONTROL_FILE)
        _write_json(folder / CONTROL_ARGS_FILE, control_arguments(control_encoder))
        written |= {CONTROL_FILE, CONTROL_ARGS_FILE}
    _write_json(folder / CONFIG_FILE, config.model_dump(mode="json"))
    for name in set(BUNDLE_FILES) - written:
        (folder / name).unlink(missing_ok=True)
    return folder


def _load_control_encoder(folder: Path, config: TrainingConfig) -> ControlEncoder:
    args_path, weights_path = folder / CONTROL_ARGS_FILE, folder / CONTROL_FILE
    for path in (args_path, weights_path):
        if not path.is_file():
            raise InputError(f"{path}: not found (a controlnet bundle holds {CONTROL_FILE} and {CONTROL_ARGS_FILE})")
    args = read_mapping(args_path)
    missing = [k for k in CONTROL_ARGS if k not in args]
    if missing:
        raise InputError(f"{args_path}: missing field {missing[0]!r} (fields: {', '.join(CONTROL_ARGS)})")
    extra = sorted(set(args) - set(CONTROL_ARGS))
    if extra:
        raise InputError(f"{args_path}: unknown field {extra[0]!r} (fields: {', '.join(CONTROL_ARGS)})")
    for key in ("out_dim", "dim", "depth", "heads"):
        if isinstance(args[key], bool) or not isinstance(args[key], int) or args[key] < 1:
            raise InputError(f"{args_path}: field {key!r} must be a positive integer, got {args[key]!r}")
    layers = args["injection_layers"]
    if not isinstance(layers, list) or not layers or not all(isinstance(i, int) and i >= 0 for i in layers):
        raise InputError(f"{args_path}: field 'injection_layers' must be a non-empty list of block indices")
    _check_encoder_matches(config, {**args, "injection_layers": sorted(layers)}, str(args_path))
    try:
        encoder = ControlEncoder(args["out_dim"], layers, dim=args["dim"], depth=args["depth"], heads=args["heads"])
    except ValueError as exc:
        raise InputError(f"{args_path}: {exc}") from None
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise InputError(f"{weights_path}: does not fit {CONTROL_ARGS_FILE} ({what}, "
                         f"{len(missing)} missing, {len(unexpected)} unexpected tensors)")
    for key, tensor in state.items():
        if tensor.shape != own[key].shape:
            raise InputError(f"{weights_path}: {key} has shape {list(tensor.shape)}, "
                             f"{CONTROL_ARGS_FILE} implies {list(own[key].shape)}")
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()


def load_bundle(folder: str | Path, num_layers: int = RELEASED_NUM_LAYERS) -> Bundle:
    """Read and check a bundle folder (``num_layers``: depth the config's layer indices are checked against)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: model bundle folder not found")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise InputError(f"{config_path}: not found (a model bundle holds {CONFIG_FILE})")
    config = validate(TrainingConfig, read_mapping(config_path), str(config_path), num_layers)
    bundle = Bundle(folder, config)
    lora_path, lora_config = folder / LORA_FILE, folder / LORA_CONFIG_FILE
    if lora_path.exists() != lora_config.exists():
        have, lack = (lora_path, lora_config) if lora_path.exists() else (lora_config, lora_path)
        raise InputError(f"{lack}: not found (the bundle has {have.name}; a LoRA needs both files)")
    if lora_path.exists():
        settings = read_lora_config(lora_config)
        adapter = read_lora_file(lora_path)
        ranks = sorted({a.shape[0] for a, _ in adapter.values()})
        if ranks != [settings.rank]:
            raise InputError(f"{lora_path}: tensors have rank {ranks} but {LORA_CONFIG_FILE} says r={settings.rank}")
        bundle.lora_path, bundle.lora_settings, bundle.adapter = lora_path, settings, adapter
    has_control = (folder / CONTROL_FILE).exists() or (folder / CONTROL_ARGS_FILE).exists()
    if config.accompaniment.mode == "controlnet":
        bundle.control_encoder = _load_control_encoder(folder, config)
    elif has_control:
        name = CONTROL_FILE if (folder / CONTROL_FILE).exists() else CONTROL_ARGS_FILE
        raise InputError(f"{folder / name}: a control encoder in an {config.accompaniment.mode} bundle "
                         f"({CONFIG_FILE} says accompaniment.mode = {config.accompaniment.mode})")
    return bundle
