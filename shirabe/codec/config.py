"""The Oobleck VAE configuration: parsing the stable-audio ``vae.json`` schema.

A released VAE ships a json file such as SongBloom's ``stable_audio_1920_vae.json``::

    {"model_type": "autoencoder", "sample_rate": 48000, "audio_channels": 2,
     "model": {"encoder": {"type": "oobleck", "config": {...}},
               "decoder": {"type": "oobleck", "config": {...}},
               "bottleneck": {"type": "vae"},
               "latent_dim": 64, "downsampling_ratio": 1920, "io_channels": 2}}

:func:`parse_vae_config` checks every field this package reads and returns a
:class:`VAEConfig`; a missing or wrong field is a one-line :class:`InputError`
naming the file and the dotted field. Fields nothing reads (``sample_size``,
``training``) are ignored.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shirabe.cli import InputError

# SongBloom's ``stable_audio_1920_vae.json`` (48 kHz stereo, 1920 samples per latent frame = 25 Hz,
# 64-dim latents). The ``training`` section of the released file is left out: nothing here reads it.
STABLE_AUDIO_1920_VAE_CONFIG: dict[str, Any] = {
    "model_type": "autoencoder",
    "sample_size": 403200,
    "sample_rate": 48000,
    "audio_channels": 2,
    "model": {
        "encoder": {
            "type": "oobleck",
            "config": {
                "in_channels": 2,
                "channels": 128,
                "c_mults": [1, 2, 4, 8, 16],
                "strides": [2, 4, 4, 6, 10],
                "latent_dim": 128,
                "use_snake": True,
            },
        },
        "decoder": {
            "type": "oobleck",
            "config": {
                "out_channels": 2,
                "channels": 128,
                "c_mults": [1, 2, 4, 8, 16],
                "strides": [2, 4, 4, 6, 10],
                "latent_dim": 64,
                "use_snake": True,
                "final_tanh": False,
            },
        },
        "bottleneck": {"type": "vae"},
        "latent_dim": 64,
        "downsampling_ratio": 1920,
        "io_channels": 2,
    },
}

_ENCODER_FIELDS = {"in_channels", "channels", "c_mults", "strides", "latent_dim", "use_snake", "antialias_activation"}
_DECODER_FIELDS = {
    "out_channels", "channels", "c_mults", "strides", "latent_dim", "use_snake", "antialias_activation",
    "use_nearest_upsample", "final_tanh",
}


@dataclass(frozen=True)
class OobleckEncoderConfig:
    """``model.encoder.config``: audio (in_channels) -> ``latent_dim`` channels (mean and scale)."""

    in_channels: int
    channels: int
    c_mults: tuple[int, ...]
    strides: tuple[int, ...]
    latent_dim: int
    use_snake: bool = True


@dataclass(frozen=True)
class OobleckDecoderConfig:
    """``model.decoder.config``: ``latent_dim`` channels -> audio (out_channels)."""

    out_channels: int
    channels: int
    c_mults: tuple[int, ...]
    strides: tuple[int, ...]
    latent_dim: int
    use_snake: bool = True
    final_tanh: bool = False


@dataclass(frozen=True)
class VAEConfig:
    """An Oobleck autoencoder with the ``vae`` bottleneck."""

    sample_rate: int
    audio_channels: int
    latent_dim: int
    downsampling_ratio: int
    encoder: OobleckEncoderConfig
    decoder: OobleckDecoderConfig

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (25.0 for the 1920 VAE at 48 kHz)."""
        return self.sample_rate / self.downsampling_ratio


class _Reader:
    """Typed field access with errors that name the source and the dotted field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, field: str, message: str) -> InputError:
        return InputError(f"{self.source}: field '{field}' {message}")

    def section(self, parent: Any, key: str, prefix: str) -> dict:
        field = f"{prefix}{key}"
        if not isinstance(parent, dict) or key not in parent:
            raise self.fail(field, "is missing")
        value = parent[key]
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a mapping, got {type(value).__name__}")
        return value

    def value(self, parent: dict, key: str, prefix: str, default: Any = ...) -> Any:
        if key not in parent:
            if default is ...:
                raise self.fail(f"{prefix}{key}", "is missing")
            return default
        return parent[key]

    def positive_int(self, parent: dict, key: str, prefix: str, default: Any = ...) -> int:
        value = self.value(parent, key, prefix, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(f"{prefix}{key}", f"must be a positive integer, got {value!r}")
        return value

    def int_list(self, parent: dict, key: str, prefix: str) -> tuple[int, ...]:
        value = self.value(parent, key, prefix)
        if (
            not isinstance(value, list)
            or not value
            or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value)
        ):
            raise self.fail(f"{prefix}{key}", f"must be a non-empty list of positive integers, got {value!r}")
        return tuple(value)

    def boolean(self, parent: dict, key: str, prefix: str, default: bool) -> bool:
        value = self.value(parent, key, prefix, default)
        if not isinstance(value, bool):
            raise self.fail(f"{prefix}{key}", f"must be true or false, got {value!r}")
        return value

    def literal(self, parent: dict, key: str, prefix: str, expected: str) -> None:
        value = self.value(parent, key, prefix)
        if value != expected:
            raise self.fail(f"{prefix}{key}", f"must be {expected!r} (the only kind supported), got {value!r}")

    def known_fields(self, parent: dict, allowed: set[str], prefix: str) -> None:
        unknown = sorted(set(parent) - allowed)
        if unknown:
            raise self.fail(f"{prefix}{unknown[0]}", "is not a known field of an oobleck config")

    def off(self, parent: dict, key: str, prefix: str) -> None:
        if self.boolean(parent, key, prefix, False):
            raise self.fail(f"{prefix}{key}", "must be false (not supported)")


def _coder(r: _Reader, model: dict, name: str) -> dict:
    section = r.section(model, name, "model.")
    r.literal(section, "type", f"model.{name}.", "oobleck")
    config = r.section(section, "config", f"model.{name}.")
    prefix = f"model.{name}.config."
    r.known_fields(config, _ENCODER_FIELDS if name == "encoder" else _DECODER_FIELDS, prefix)
    return config


def parse_vae_config(config: Any, source: str = "config") -> VAEConfig:
    """Check a parsed stable-audio VAE json (a dict) and return a :class:`VAEConfig`.

    ``source`` names the file in error messages.
    """
    r = _Reader(source)
    if not isinstance(config, dict):
        raise InputError(f"{source}: expected a json object with model_type, sample_rate and model")
    config = copy.deepcopy(config)
    r.literal(config, "model_type", "", "autoencoder")
    sample_rate = r.positive_int(config, "sample_rate", "")
    audio_channels = r.positive_int(config, "audio_channels", "")
    model = r.section(config, "model", "")
    bottleneck = r.section(model, "bottleneck", "model.")
    r.literal(bottleneck, "type", "model.bottleneck.", "vae")
    latent_dim = r.positive_int(model, "latent_dim", "model.")
    ratio = r.positive_int(model, "downsampling_ratio", "model.")
    io_channels = r.positive_int(model, "io_channels", "model.")

    enc = _coder(r, model, "encoder")
    p = "model.encoder.config."
    encoder = OobleckEncoderConfig(
        in_channels=r.positive_int(enc, "in_channels", p, 2),
        channels=r.positive_int(enc, "channels", p, 128),
        c_mults=r.int_list(enc, "c_mults", p),
        strides=r.int_list(enc, "strides", p),
        latent_dim=r.positive_int(enc, "latent_dim", p, 32),
        use_snake=r.boolean(enc, "use_snake", p, False),
    )
    r.off(enc, "antialias_activation", p)

    dec = _coder(r, model, "decoder")
    p = "model.decoder.config."
    decoder = OobleckDecoderConfig(
        out_channels=r.positive_int(dec, "out_channels", p, 2),
        channels=r.positive_int(dec, "channels", p, 128),
        c_mults=r.int_list(dec, "c_mults", p),
        strides=r.int_list(dec, "strides", p),
        latent_dim=r.positive_int(dec, "latent_dim", p, 32),
        use_snake=r.boolean(dec, "use_snake", p, False),
        final_tanh=r.boolean(dec, "final_tanh", p, True),
    )
    r.off(dec, "antialias_activation", p)
    r.off(dec, "use_nearest_upsample", p)

    # cross-field consistency
    for name, coder in (("encoder", encoder), ("decoder", decoder)):
        if len(coder.c_mults) != len(coder.strides):
            raise r.fail(f"model.{name}.config.strides", f"has {len(coder.strides)} entries but c_mults has "
                         f"{len(coder.c_mults)}")
        if math.prod(coder.strides) != ratio:
            raise r.fail(f"model.{name}.config.strides", f"multiply to {math.prod(coder.strides)}, "
                         f"but model.downsampling_ratio is {ratio}")
    if encoder.latent_dim != 2 * latent_dim:
        raise r.fail("model.encoder.config.latent_dim", f"must be 2 x model.latent_dim = {2 * latent_dim} "
                     f"(mean and scale), got {encoder.latent_dim}")
    if decoder.latent_dim != latent_dim:
        raise r.fail("model.decoder.config.latent_dim", f"must equal model.latent_dim = {latent_dim}, "
                     f"got {decoder.latent_dim}")
    for field, value in (("model.encoder.config.in_channels", encoder.in_channels),
                         ("model.decoder.config.out_channels", decoder.out_channels),
                         ("audio_channels", audio_channels)):
        if value != io_channels:
            raise r.fail(field, f"must equal model.io_channels = {io_channels}, got {value}")
    return VAEConfig(sample_rate, audio_channels, latent_dim, ratio, encoder, decoder)


def read_vae_config(path: str | Path) -> VAEConfig:
    """Read and check a stable-audio VAE json file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such VAE config file")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid json ({str(e).splitlines()[0]})") from e
    return parse_vae_config(config, source=str(path))
