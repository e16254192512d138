"""Loading a SongBloom checkpoint: the config yaml plus the plain state-dict ``.pt``.

A released ``.pt`` is a bare state dict with ``vae.vae.*`` (the Oobleck VAE) and ``model.*``
(MVSA-DiTAR). :func:`load_model` reads it with ``weights_only=True`` and loads it **strictly**:
a missing, unexpected or mis-shaped key is a one-line :class:`~shirabe.cli.InputError` listing a
few. Two things are accepted on purpose:

* older released files also carry a second copy of the VAE under
  ``model.condition_provider.conditioners.prompt_wav.tokenizer.vae.*`` (from when the prompt
  conditioner registered the VAE as a submodule); those keys are dropped, and logged;
* a ``.pt`` without ``vae.vae.*`` takes the VAE from the config's ``vae.vae_cfg`` +
  ``vae.vae_ckpt`` files instead.

Only the diffusion model is cast to ``dtype``; the VAE stays fp32 (as upstream). The model is
returned in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch

from shirabe.cli import InputError, get_logger
from shirabe.codec import build_vae, load_vae, read_vae_config
from shirabe.codec.loading import check_state_dict
from shirabe.train.checkpoint import load_state_dict_file
from songbloom.models.config import SongBloomConfig, load_config
from songbloom.models.ditar import LEGACY_VAE_PREFIX
from songbloom.models.songbloom import SongBloom

logger = get_logger(__name__)

MODEL_PREFIX = "model."
VAE_PREFIX = "vae.vae."
LEGACY_PREFIX = MODEL_PREFIX + LEGACY_VAE_PREFIX


def _some(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def split_state(state: dict[str, torch.Tensor], source: str) -> tuple[dict, dict, list[str]]:
    """``model.*`` (prefix removed), ``vae.vae.*`` (prefix removed) and the other keys; the legacy
    duplicate VAE copy is dropped."""
    legacy = [k for k in state if k.startswith(LEGACY_PREFIX)]
    if legacy:
        logger.info("%s: dropping %d keys of the duplicate VAE copy under %s", source, len(legacy), LEGACY_PREFIX)
    model = {k[len(MODEL_PREFIX):]: v for k, v in state.items()
             if k.startswith(MODEL_PREFIX) and not k.startswith(LEGACY_PREFIX)}
    vae = {k[len(VAE_PREFIX):]: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    other = [k for k in state if not k.startswith(MODEL_PREFIX) and not k.startswith(VAE_PREFIX)]
    return model, vae, other


def check_model_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], other: list[str],
                      source: str, config_source: str, strict: bool) -> None:
    missing = [MODEL_PREFIX + k for k in expected if k not in state]
    unexpected = [MODEL_PREFIX + k for k in state if k not in expected] + other
    wrong = [f"{MODEL_PREFIX}{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_some(missing)}")
    if unexpected and strict:
        problems.append(f"unexpected keys: {_some(unexpected)}")
    if wrong:
        problems.append(f"shape mismatch: {_some(wrong, 2)}")
    if problems:
        raise InputError(f"{source}: does not match the model of {config_source}; " + "; ".join(problems))
    if unexpected:
        logger.warning("%s: ignoring unexpected keys: %s", source, _some(unexpected))


def _vae_json(config: SongBloomConfig):
    if config.vae_config is not None:
        return config.vae_config
    if config.vae_cfg:
        return read_vae_config(config.vae_cfg)
    return None


def load_model(config_yaml: str | Path | SongBloomConfig, checkpoint: str | Path | None = None,
               device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, strict: bool = True,
               trust: bool = False, local_dir: str | Path | None = None) -> SongBloom:
    """A :class:`SongBloom` from its config and ``.pt`` (default the config's ``pretrained_path``).

    ``strict=False`` tolerates (and logs) unexpected keys; missing keys are always an error.
    ``trust`` allows files that need pickle. ``local_dir`` is the folder ``???`` stands for in the
    yaml (default: the yaml's folder).
    """
    config = config_yaml if isinstance(config_yaml, SongBloomConfig) else load_config(config_yaml, local_dir)
    checkpoint = checkpoint if checkpoint is not None else config.pretrained_path
    if checkpoint is None:
        raise InputError(f"{config.source}: no checkpoint given and the config has no pretrained_path")
    source = str(checkpoint)
    state = load_state_dict_file(checkpoint, trust=trust, map_location="cpu", key=None)
    model_state, vae_state, other = split_state(state, source)

    vae = None
    if vae_state:
        vae_json = _vae_json(config)
        if vae_json is None:
            if strict:
                raise InputError(f"{source}: holds vae.vae.* weights but {config.source} names no vae.vae_cfg "
                                 "to build the VAE from")
            logger.warning("%s: ignoring the vae.vae.* weights (no vae.vae_cfg in %s)", source, config.source)
        else:
            vae = build_vae(vae_json, device="meta", source=str(config.vae_cfg or "vae config"))
            vae_state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in vae_state.items()}
            check_state_dict(vae, {k: v for k, v in vae_state.items()}, f"{source} (vae.vae.*)")
            vae.load_state_dict(vae_state, strict=True, assign=True)
    elif config.vae_cfg and config.vae_ckpt:
        vae = load_vae(config.vae_cfg, config.vae_ckpt, trust=trust)
    elif config.vae_cfg or config.vae_ckpt:
        raise InputError(f"{config.source}: {source} has no vae.vae.* weights, so the config needs both "
                         "vae.vae_cfg and vae.vae_ckpt")

    model = SongBloom(config, vae=vae, with_vae=False, device="meta")
    expected = model.model.state_dict()
    check_model_state(expected, model_state, other, source, config.source, strict)
    model_state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model_state.items() if k in expected}
    model.model.load_state_dict(model_state, strict=True, assign=True)
    model.model.condition_provider.lyrics.blank_emb.requires_grad_(False)
    model.model.to(device=device)
    if model.vae is not None:
        model.vae.to(device=device, dtype=torch.float32)
    return model.eval()
