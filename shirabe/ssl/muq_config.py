"""The MuQ configuration: :class:`MuQConfig`, read from a released ``config.json``.

A MuQ ``config.json`` is a flat dict (the training dataclass). Inference uses:

- ``encoder_dim``, ``encoder_depth``: width and number of conformer layers;
- ``conv_dim``: channels of the two 2-D residual blocks of the subsampling;
- ``stat``: the ``melspec_2048_mean`` / ``melspec_2048_std`` used to normalise the dB mel;
- ``features`` (must be ``["melspec_2048"]``), ``hop_length`` (240), ``n_mels`` (128) and
  ``label_rate`` (25): checked, since the 24 kHz front end is fixed;
- ``w2v2_config``: a wav2vec2-conformer config dict, of which ``num_attention_heads``,
  ``intermediate_size``, ``hidden_act`` (swish/silu), ``position_embeddings_type`` (rotary),
  ``rotary_embedding_base``, ``conv_depthwise_kernel_size`` and ``layer_norm_eps`` are read;
  its ``hidden_size`` and ``num_hidden_layers`` are overridden by ``encoder_dim`` and
  ``encoder_depth``.

Every other field (masking, quantiser and loss settings, paths) is training-only: accepted
and ignored. A missing field takes the default of ``OpenMuQ/MuQ-large-msd-iter`` (1024 wide,
12 layers, 16 heads, FFN 4096, depthwise kernel 31, the MSD mel statistics). A field of the
wrong type or an unsupported value is an :class:`~shirabe.cli.InputError` naming the file and
the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from shirabe.cli import InputError

__all__ = ["DEFAULT_OVERLAP_SECONDS", "DEFAULT_WINDOW_SECONDS", "MUQ_FRAME_RATE", "MUQ_HOP_LENGTH", "MUQ_N_FFT",
           "MUQ_N_MELS", "MUQ_SAMPLES_PER_FRAME", "MUQ_SAMPLE_RATE", "MuQConfig"]

MUQ_SAMPLE_RATE = 24000
MUQ_N_FFT = 2048
MUQ_HOP_LENGTH = 240
MUQ_N_MELS = 128
MUQ_FRAME_RATE = 25
#: samples per output frame: the mel hop times the subsampling factor 4
MUQ_SAMPLES_PER_FRAME = MUQ_HOP_LENGTH * 4
FEATURE_NAME = "melspec_2048"
#: long audio is encoded in windows of this length overlapping by this much (seconds)
DEFAULT_WINDOW_SECONDS = 30.0
DEFAULT_OVERLAP_SECONDS = 10.0

#: the MSD statistics of the dB mel shipped with the released checkpoints
MSD_MEL_MEAN = 6.768444971712967
MSD_MEL_STD = 18.417922652295623

_ACTIVATIONS = ("swish", "silu")


@dataclass(frozen=True)
class MuQConfig:
    """Inference settings of a MuQ encoder (defaults: ``OpenMuQ/MuQ-large-msd-iter``)."""

    encoder_dim: int = 1024
    encoder_depth: int = 12
    conv_dim: int = 512
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    conv_depthwise_kernel_size: int = 31
    rotary_embedding_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    mel_mean: float = MSD_MEL_MEAN
    mel_std: float = MSD_MEL_STD

    def __post_init__(self):
        self.validate("MuQConfig")

    @property
    def head_dim(self) -> int:
        return self.encoder_dim // self.num_attention_heads

    def validate(self, where: str) -> None:
        """Raise :class:`InputError` (prefixed by ``where``) for impossible settings."""
        for name in ("encoder_dim", "encoder_depth", "conv_dim", "num_attention_heads", "intermediate_size",
                     "conv_depthwise_kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{where}: {name} must be a positive integer, got {value!r}")
        for name in ("rotary_embedding_base", "layer_norm_eps", "mel_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise InputError(f"{where}: {name} must be a positive number, got {value!r}")
        if isinstance(self.mel_mean, bool) or not isinstance(self.mel_mean, (int, float)) or not math.isfinite(
                self.mel_mean):
            raise InputError(f"{where}: mel_mean must be a finite number, got {self.mel_mean!r}")
        if self.encoder_dim % self.num_attention_heads:
            raise InputError(f"{where}: encoder_dim {self.encoder_dim} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.head_dim % 2:
            raise InputError(f"{where}: the attention head size {self.head_dim} must be even (rotary embedding)")
        if self.conv_depthwise_kernel_size % 2 == 0:
            raise InputError(f"{where}: conv_depthwise_kernel_size must be odd, got "
                             f"{self.conv_depthwise_kernel_size}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> MuQConfig:
        """Parse a flat MuQ config dict (see the module docstring); ``where`` names it in errors."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}")
        _expect(data, "features", [FEATURE_NAME], where)
        _expect(data, "hop_length", MUQ_HOP_LENGTH, where)
        _expect(data, "n_mels", MUQ_N_MELS, where)
        _expect(data, "label_rate", MUQ_FRAME_RATE, where)
        kwargs: dict[str, Any] = {}
        for key in ("encoder_dim", "encoder_depth", "conv_dim"):
            if key in data:
                kwargs[key] = data[key]
        stat = data.get("stat", {})
        if not isinstance(stat, dict):
            raise InputError(f"{where}: field 'stat' must be an object, got {type(stat).__name__}")
        for key, name in ((f"{FEATURE_NAME}_mean", "mel_mean"), (f"{FEATURE_NAME}_std", "mel_std")):
            if key in stat:
                kwargs[name] = stat[key]
        w2v2 = data.get("w2v2_config", {})
        if not isinstance(w2v2, dict):
            raise InputError(f"{where}: field 'w2v2_config' must be an object, got {type(w2v2).__name__}")
        for key in ("num_attention_heads", "intermediate_size", "conv_depthwise_kernel_size",
                    "rotary_embedding_base", "layer_norm_eps"):
            if key in w2v2:
                kwargs[key] = w2v2[key]
        act = w2v2.get("hidden_act", "swish")
        if act not in _ACTIVATIONS:
            raise InputError(f"{where}: w2v2_config.hidden_act {act!r} is not supported (only swish/silu)")
        pos = w2v2.get("position_embeddings_type", "rotary")
        if pos != "rotary":
            raise InputError(f"{where}: w2v2_config.position_embeddings_type {pos!r} is not supported "
                             "(only rotary)")
        known = {f.name for f in fields(cls)}
        assert set(kwargs) <= known
        config = object.__new__(cls)
        for f in fields(cls):
            object.__setattr__(config, f.name, kwargs.get(f.name, f.default))
        config.validate(where)
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> MuQConfig:
        """Read ``config.json`` at ``path``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: no such MuQ config file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read ({e})") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        return cls.from_dict(data, where=str(path))


def _expect(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    if key in data and data[key] != value:
        raise InputError(f"{where}: field {key!r} is {data[key]!r}; only {value!r} is supported "
                         "(the 24 kHz MuQ front end is fixed)")
