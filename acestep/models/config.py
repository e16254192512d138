"""ACE-Step v1 transformer configuration: the released ``config.json`` key set, checked field by field.

:func:`load_config` reads ``config.json`` (the released ``ace_step_transformer/config.json`` or a
smaller one with the same keys) and returns a :class:`TransformerConfig`; a missing or malformed
field is a one-line :class:`~shirabe.cli.InputError` naming the file and the field. The optional
key ``lyric_encoder_config`` sets the lyric Conformer's sizes (``output_size``, ``attention_heads``,
``linear_units``, ``num_blocks``); without it the released sizes 1024/16/4096/6 apply.
``inner_dim`` in the file is informational: the width is ``num_attention_heads * attention_head_dim``
and the two must agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shirabe.cli import InputError

RELEASED_LYRIC_ENCODER = {"output_size": 1024, "attention_heads": 16, "linear_units": 4096, "num_blocks": 6}


@dataclass(frozen=True)
class LyricEncoderConfig:
    """The lyric Conformer's sizes (everything else is fixed: rel-pos self-attention, swish FFN, pre-norm)."""

    output_size: int = 1024
    attention_heads: int = 16
    linear_units: int = 4096
    num_blocks: int = 6


@dataclass(frozen=True)
class TransformerConfig:
    """Hyper-parameters of the ACE-Step v1 transformer (defaults: the released 3.3 B model)."""

    in_channels: int = 8
    num_layers: int = 24
    attention_head_dim: int = 128
    num_attention_heads: int = 20
    mlp_ratio: float = 2.5
    out_channels: int = 8
    max_position: int = 32768
    rope_theta: float = 1000000.0
    speaker_embedding_dim: int = 512
    text_embedding_dim: int = 768
    ssl_encoder_depths: tuple[int, ...] = (8, 8)
    ssl_names: tuple[str, ...] = ("mert", "m-hubert")
    ssl_latent_dims: tuple[int, ...] = (1024, 768)
    patch_size: tuple[int, int] = (16, 1)
    max_height: int = 16
    max_width: int = 32768
    lyric_encoder_vocab_size: int = 6693
    lyric_hidden_size: int = 1024
    lyric_encoder: LyricEncoderConfig = field(default_factory=LyricEncoderConfig)
    source: str = "<defaults>"

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> TransformerConfig:
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object")

        def fail(name: str, message: str) -> InputError:
            return InputError(f"{source}: field '{name}' {message}")

        def get_int(name: str, container: dict = data, prefix: str = "", minimum: int = 1) -> int:
            value = container.get(name, MISSING)
            if value is MISSING:
                raise fail(prefix + name, "is missing")
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise fail(prefix + name, f"must be an integer >= {minimum}, got {value!r}")
            return value

        def get_float(name: str) -> float:
            value = data.get(name, MISSING)
            if value is MISSING:
                raise fail(name, "is missing")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise fail(name, f"must be a positive number, got {value!r}")
            return float(value)

        def get_list(name: str, kind: type, length: int | None = None) -> tuple:
            value = data.get(name, MISSING)
            if value is MISSING:
                raise fail(name, "is missing")
            if (not isinstance(value, list) or not value
                    or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value)):
                raise fail(name, f"must be a non-empty list of {kind.__name__}, got {value!r}")
            if length is not None and len(value) != length:
                raise fail(name, f"must have {length} entries, got {len(value)}")
            return tuple(value)

        heads = get_int("num_attention_heads")
        head_dim = get_int("attention_head_dim")
        if head_dim % 2:
            raise fail("attention_head_dim", f"must be even (rotary embedding), got {head_dim}")
        if "inner_dim" in data and data["inner_dim"] != heads * head_dim:
            raise fail("inner_dim", f"is {data['inner_dim']!r} but num_attention_heads * attention_head_dim "
                                    f"= {heads * head_dim}")
        ssl_names = get_list("ssl_names", str)
        ssl_dims = get_list("ssl_latent_dims", int, len(ssl_names))
        ssl_depths = get_list("ssl_encoder_depths", int, len(ssl_names))
        num_layers = get_int("num_layers")
        for depth in ssl_depths:
            if not 0 <= depth < num_layers:
                raise fail("ssl_encoder_depths", f"entries must lie in [0, {num_layers}), got {list(ssl_depths)}")
        patch = get_list("patch_size", int, 2)
        lyric_hidden = get_int("lyric_hidden_size")
        lyric_raw = data.get("lyric_encoder_config", None)
        if lyric_raw is None:
            lyric = LyricEncoderConfig(**RELEASED_LYRIC_ENCODER)
        elif not isinstance(lyric_raw, dict):
            raise fail("lyric_encoder_config", f"must be an object, got {lyric_raw!r}")
        else:
            unknown = sorted(set(lyric_raw) - set(RELEASED_LYRIC_ENCODER))
            if unknown:
                raise fail("lyric_encoder_config", f"has unsupported keys {unknown}")
            merged = {k: get_int(k, {**RELEASED_LYRIC_ENCODER, **lyric_raw}, "lyric_encoder_config.")
                      for k in RELEASED_LYRIC_ENCODER}
            lyric = LyricEncoderConfig(**merged)
        if lyric.output_size != lyric_hidden:
            raise fail("lyric_encoder_config.output_size",
                       f"must equal lyric_hidden_size ({lyric_hidden}), got {lyric.output_size}")
        if lyric.output_size % lyric.attention_heads:
            raise fail("lyric_encoder_config.attention_heads",
                       f"must divide output_size {lyric.output_size}, got {lyric.attention_heads}")
        in_channels = get_int("in_channels")
        if (in_channels * 256) % 32:
            raise fail("in_channels", f"in_channels*256 must be divisible by 32, got {in_channels}")
        return cls(
            in_channels=in_channels,
            num_layers=num_layers,
            attention_head_dim=head_dim,
            num_attention_heads=heads,
            mlp_ratio=get_float("mlp_ratio"),
            out_channels=get_int("out_channels"),
            max_position=get_int("max_position"),
            rope_theta=get_float("rope_theta"),
            speaker_embedding_dim=get_int("speaker_embedding_dim"),
            text_embedding_dim=get_int("text_embedding_dim"),
            ssl_encoder_depths=ssl_depths,
            ssl_names=ssl_names,
            ssl_latent_dims=ssl_dims,
            patch_size=(patch[0], patch[1]),
            max_height=get_int("max_height"),
            max_width=get_int("max_width"),
            lyric_encoder_vocab_size=get_int("lyric_encoder_vocab_size"),
            lyric_hidden_size=lyric_hidden,
            lyric_encoder=lyric,
            source=source,
        )


MISSING = object()


def load_config(path: str | Path) -> TransformerConfig:
    """Read and check a transformer ``config.json``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    return TransformerConfig.from_dict(data, str(path))


def config_dict(config: TransformerConfig) -> dict[str, Any]:
    """``config`` in the released ``config.json`` key set (+ ``lyric_encoder_config`` when not the released sizes)."""
    out: dict[str, Any] = {"_class_name": "Transformer2DModel", "_diffusers_version": "0.27.2"}
    for name in ("in_channels", "num_layers"):
        out[name] = getattr(config, name)
    out["inner_dim"] = config.inner_dim
    for name in ("attention_head_dim", "num_attention_heads", "mlp_ratio", "out_channels", "max_position",
                 "rope_theta", "speaker_embedding_dim", "text_embedding_dim", "ssl_encoder_depths", "ssl_names",
                 "ssl_latent_dims", "patch_size", "max_height", "max_width", "lyric_encoder_vocab_size",
                 "lyric_hidden_size"):
        value = getattr(config, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    lyric = {k: getattr(config.lyric_encoder, k) for k in RELEASED_LYRIC_ENCODER}
    if lyric != RELEASED_LYRIC_ENCODER:
        out["lyric_encoder_config"] = lyric
    return out
