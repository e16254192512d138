"""Building the V2 CFM and length regulator from a YAML config and loading checkpoints.

Configs use upstream's ``configs/v2/vc_wrapper.yaml`` keys: ``cfm.estimator`` (DiT
sizes) and ``cfm_length_regulator`` (``_target_`` entries are ignored), so an
upstream config works as is. SeedSVC adds an ``f0`` block (``n_f0_bins``,
``embedding_dim``, ``band``, ``num_heads``; ``enabled: false`` or no block gives
plain V2).

Checkpoints are upstream's nesting ``{'net': {'cfm': ..., 'length_regulator': ...}}``
(our training writes the same, plus training state). A leading ``module.`` is
stripped from every key. Loading is strict except for what is known to differ:
upstream's unused ``transformer.causal_mask`` buffer is skipped, and the F0
modules may be absent from a V2 file (they then keep their fresh initialisation:
zero gates, so the model is V2).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import yaml
from torch import nn

from seedsvc.models.cfm import CFM
from seedsvc.models.dit import DiT
from seedsvc.models.length_regulator import InterpolateRegulator
from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load

logger = logging.getLogger(__name__)

IGNORED_KEYS = ("estimator.transformer.causal_mask",)
F0_KEY_PREFIXES = ("estimator.f0_encoder.", "estimator.f0_cross_attention.")


def read_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cfm"), dict) or "estimator" not in cfg["cfm"]:
        raise InputError(f"{path}: no cfm.estimator block (expected a Seed-VC V2 style config)")
    return cfg


def _plain(block: dict) -> dict:
    return {k: v for k, v in block.items() if not k.startswith("_")}


def f0_block(cfg: dict) -> dict | None:
    block = cfg.get("f0")
    if not block or not block.get("enabled", True):
        return None
    return _plain({k: v for k, v in block.items() if k != "enabled"})


def build_cfm(cfg: dict, with_f0: bool | None = None) -> CFM:
    """CFM + DiT from ``cfg``; ``with_f0`` overrides the config's ``f0`` block (False: plain V2)."""
    f0 = None
    if with_f0 is not False:
        f0 = f0_block(cfg)
        if with_f0 and f0 is None:
            f0 = {}  # defaults
    est_cfg = _plain(cfg["cfm"]["estimator"])
    estimator = DiT(**est_cfg, f0=f0)
    return CFM(estimator, sigma_min=cfg["cfm"].get("sigma_min", 1e-6), in_channels=est_cfg.get("in_channels", 80))


def build_length_regulator(cfg: dict) -> InterpolateRegulator:
    block = cfg.get("cfm_length_regulator")
    if not isinstance(block, dict):
        raise InputError("config has no cfm_length_regulator block")
    return InterpolateRegulator(**_plain(block))


def read_net(checkpoint: str | Path, trust: bool = False) -> dict:
    """``ckpt['net']`` of an upstream-layout checkpoint, with ``module.`` stripped per key."""
    ckpt = safe_load(checkpoint, trust=trust)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("net"), dict):
        raise InputError(f"{checkpoint}: no 'net' entry (expected {{'net': {{'cfm', 'length_regulator'}}}})")
    net = {}
    for part, sd in ckpt["net"].items():
        if isinstance(sd, dict):
            net[part] = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    return net


def load_part(module: nn.Module, state: dict, name: str, source, allow_missing=()) -> None:
    """Load ``state`` into ``module``: shapes must match, only known keys may be missing/extra."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k not in IGNORED_KEYS}
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise InputError(f"{source}: {name}.{k} has shape {tuple(v.shape)}, the config gives {tuple(own[k].shape)}")
    unexpected = sorted(set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(tuple(allow_missing)))
    if unexpected:
        raise InputError(f"{source}: {name} has {len(unexpected)} keys the config does not build, e.g. {unexpected[0]}")
    if missing:
        raise InputError(f"{source}: {name} lacks {len(missing)} keys the config needs, e.g. {missing[0]}")
    module.load_state_dict(state, strict=False)


def load_v2_cfm(config_yaml: str | Path, checkpoint: str | Path | None = None, with_f0: bool | None = None,
                trust: bool = False, device: str | torch.device = "cpu") -> CFM:
    """The CFM described by ``config_yaml`` with ``checkpoint``'s ``net.cfm`` weights, in eval mode."""
    cfg = read_config(config_yaml)
    cfm = build_cfm(cfg, with_f0=with_f0)
    if checkpoint is not None:
        net = read_net(checkpoint, trust=trust)
        if "cfm" not in net:
            raise InputError(f"{checkpoint}: no ['net']['cfm'] entry")
        load_part(cfm, net["cfm"], "cfm", checkpoint, allow_missing=F0_KEY_PREFIXES)
        if cfm.estimator.has_f0 and not any(k.startswith(F0_KEY_PREFIXES) for k in net["cfm"]):
            logger.info("%s has no F0 modules: the F0 cross-attention starts fresh (zero gates, V2 behaviour)", checkpoint)
    return cfm.to(device).eval()


def load_v2_length_regulator(config_yaml: str | Path, checkpoint: str | Path | None = None, trust: bool = False,
                             device: str | torch.device = "cpu") -> InterpolateRegulator:
    cfg = read_config(config_yaml)
    lr = build_length_regulator(cfg)
    if checkpoint is not None:
        net = read_net(checkpoint, trust=trust)
        if "length_regulator" not in net:
            raise InputError(f"{checkpoint}: no ['net']['length_regulator'] entry")
        load_part(lr, net["length_regulator"], "length_regulator", checkpoint)
    return lr.to(device).eval()
