"""Vocos mel vocoder, weight-compatible with ``charactr/vocos-mel-24khz``.

A released Vocos model is a ``config.yaml`` (jsonargparse-style ``class_path`` +
``init_args`` for ``feature_extractor``, ``backbone`` and ``head``) and a plain
``pytorch_model.bin`` state_dict. This module builds the same parameter and
buffer names from that config and loads the weights strictly:

- ``feature_extractor.mel_spec.{spectrogram.window, mel_scale.fb}``: the
  analysis window and mel filterbank (used by :meth:`Vocos.encode` and
  :meth:`Vocos.forward`);
- ``backbone``: ``embed`` (Conv1d, kernel 7) → ``norm`` (LayerNorm) → ConvNeXt
  blocks (depthwise Conv1d k7 → LayerNorm → Linear → GELU → Linear, scaled by a
  per-channel ``gamma``, residual) → ``final_layer_norm``; all LayerNorms use
  eps 1e-6;
- ``head``: ``out`` Linear(dim, n_fft + 2) → log-magnitude and phase halves;
  magnitude ``min(exp(.), 100)``; inverse STFT (:class:`~shirabe.vocoder.istft.ISTFT`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shirabe.audio.mel import LOG_FLOOR, hann_window, magnitude_spectrogram, mel_filterbank
from shirabe.cli import InputError
from shirabe.vocoder.istft import ISTFT

FEATURES_CLASS = "vocos.feature_extractors.MelSpectrogramFeatures"
BACKBONE_CLASS = "vocos.models.VocosBackbone"
HEAD_CLASS = "vocos.heads.ISTFTHead"
MAX_MAGNITUDE = 100.0
LAYER_NORM_EPS = 1e-6

# The released vocos-mel-24khz configuration (13,531,650 parameters).
VOCOS_MEL_24KHZ_CONFIG: dict[str, Any] = {
    "feature_extractor": {
        "class_path": FEATURES_CLASS,
        "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
    },
    "backbone": {
        "class_path": BACKBONE_CLASS,
        "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8},
    },
    "head": {
        "class_path": HEAD_CLASS,
        "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "same"},
    },
}


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int):
        super().__init__()
        self.register_buffer("window", hann_window(n_fft))


class _MelScale(nn.Module):
    def __init__(self, n_freqs: int, n_mels: int, sample_rate: int):
        super().__init__()
        self.register_buffer("fb", mel_filterbank(n_freqs, n_mels, sample_rate))


class _MelSpec(nn.Module):
    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, center: bool):
        super().__init__()
        self.n_fft, self.hop_length, self.center = n_fft, hop_length, center
        self.spectrogram = _Spectrogram(n_fft)
        self.mel_scale = _MelScale(n_fft // 2 + 1, n_mels, sample_rate)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mag = magnitude_spectrogram(audio, self.spectrogram.window, self.n_fft, self.hop_length, self.center)
        return torch.matmul(mag.transpose(1, 2), self.mel_scale.fb).transpose(1, 2)


class MelSpectrogramFeatures(nn.Module):
    """Audio (B, S) → natural-log magnitude mel (B, n_mels, T), floor 1e-7.

    ``padding="center"``: centred frames with reflect padding (1 + S // hop
    frames); ``"same"``: reflect-pad ``(n_fft - hop) // 2`` each side, no
    centring (S // hop frames).
    """

    def __init__(
        self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100, padding: str = "center"
    ):
        super().__init__()
        if padding not in ("center", "same"):
            raise ValueError(f"padding must be 'center' or 'same', got {padding!r}")
        self.padding = padding
        self.sample_rate = sample_rate
        self.mel_spec = _MelSpec(sample_rate, n_fft, hop_length, n_mels, center=padding == "center")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            pad = (self.mel_spec.n_fft - self.mel_spec.hop_length) // 2
            audio = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        return torch.log(torch.clamp(self.mel_spec(audio), min=LOG_FLOOR))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block over (B, C, T) with a learned per-channel residual scale."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class VocosBackbone(nn.Module):
    """(B, input_channels, T) → (B, T, dim)."""

    def __init__(
        self,
        input_channels: int,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        layer_scale_init_value: float | None = None,
    ):
        super().__init__()
        scale = 1.0 / num_layers if layer_scale_init_value is None else layer_scale_init_value
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim, scale) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class ISTFTHead(nn.Module):
    """(B, T, dim) → audio (B, S): predicts log-magnitude and phase per STFT bin."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length, n_fft, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.out(x).transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = x.chunk(2, dim=1)
        mag = torch.clamp(torch.exp(log_mag), max=MAX_MAGNITUDE)
        return self.istft(mag * torch.cos(phase), mag * torch.sin(phase))


class Vocos(nn.Module):
    """Mel → waveform vocoder. :meth:`decode` maps (B, n_mels, T) log-mel to (B, S)."""

    def __init__(self, feature_extractor: MelSpectrogramFeatures, backbone: VocosBackbone, head: ISTFTHead):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.backbone = backbone
        self.head = head

    @property
    def sample_rate(self) -> int:
        return self.feature_extractor.sample_rate

    @property
    def hop_length(self) -> int:
        return self.head.istft.hop_length

    @property
    def n_mels(self) -> int:
        return self.backbone.embed.in_channels

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, S) → log-mel (B, n_mels, T) with the model's own front end."""
        return self.feature_extractor(audio)

    @torch.no_grad()
    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, n_mels, T) → audio (B, S); S = T * hop for the released ``same`` head."""
        if not torch.jit.is_tracing() and (mel.dim() != 3 or mel.shape[1] != self.n_mels):
            raise ValueError(f"expected mel of shape (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        return self.head(self.backbone(mel))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Analysis-synthesis: ``decode(encode(audio))``."""
        return self.decode(self.encode(audio))


# ---------------------------------------------------------------------------
# Building from a config and loading weights


_SECTIONS = {
    "feature_extractor": (FEATURES_CLASS, MelSpectrogramFeatures, {"sample_rate", "n_fft", "hop_length", "n_mels", "padding"}),
    "backbone": (
        BACKBONE_CLASS,
        VocosBackbone,
        {"input_channels", "dim", "intermediate_dim", "num_layers", "layer_scale_init_value", "adanorm_num_embeddings"},
    ),
    "head": (HEAD_CLASS, ISTFTHead, {"dim", "n_fft", "hop_length", "padding"}),
}


def _section_args(config: dict, section: str, source: str) -> dict:
    class_path, _, allowed = _SECTIONS[section]
    entry = config.get(section)
    if not isinstance(entry, dict):
        raise InputError(f"{source}: missing section '{section}'")
    if entry.get("class_path") != class_path:
        raise InputError(
            f"{source}: {section}.class_path {entry.get('class_path')!r} is not supported (expected {class_path})"
        )
    args = dict(entry.get("init_args") or {})
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InputError(f"{source}: {section}.init_args has unsupported field(s): {', '.join(unknown)}")
    if args.pop("adanorm_num_embeddings", None) is not None:
        raise InputError(f"{source}: backbone.init_args.adanorm_num_embeddings is not supported (mel vocoders only)")
    return args


def build_vocos(config: dict, source: str = "config") -> Vocos:
    """Random-weight :class:`Vocos` from a parsed ``config.yaml`` dict, in eval mode.

    ``source`` names the config in error messages.
    """
    if not isinstance(config, dict):
        raise InputError(f"{source}: expected a mapping with feature_extractor/backbone/head")
    config = copy.deepcopy(config)
    fe_args = _section_args(config, "feature_extractor", source)
    bb_args = _section_args(config, "backbone", source)
    head_args = _section_args(config, "head", source)
    try:
        model = Vocos(MelSpectrogramFeatures(**fe_args), VocosBackbone(**bb_args), ISTFTHead(**head_args))
    except (TypeError, ValueError) as e:
        raise InputError(f"{source}: {e}") from e
    if fe_args.get("n_mels", 100) != bb_args.get("input_channels"):
        raise InputError(f"{source}: feature_extractor n_mels differs from backbone input_channels")
    return model.eval()


def read_vocos_config(config_yaml: str | Path) -> dict:
    """Parse a Vocos ``config.yaml`` (safe YAML) into a dict."""
    import yaml

    path = Path(config_yaml)
    if not path.is_file():
        raise InputError(f"{path}: no such vocoder config file")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a mapping with feature_extractor/backbone/head")
    return config


def _names(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(strict=True)`` with a one-line :class:`InputError` on mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if not problems:
        wrong = [
            f"{k} {tuple(state_dict[k].shape)} (expected {tuple(v.shape)})"
            for k, v in expected.items()
            if tuple(state_dict[k].shape) != tuple(v.shape)
        ]
        if wrong:
            problems.append(f"shape mismatch: {_names(wrong, 2)}")
    if problems:
        raise InputError(f"{source}: does not match the model config; " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def load_vocos(config_yaml: str | Path, weights_path: str | Path, trust: bool = False) -> Vocos:
    """Build from ``config.yaml`` and load ``pytorch_model.bin`` strictly; eval mode.

    The weights are read with ``torch.load(weights_only=True)``; a file that
    needs pickle is refused (:class:`InputError` naming it) unless ``trust``.
    """
    from shirabe.train.checkpoint import load_state_dict_file

    model = build_vocos(read_vocos_config(config_yaml), source=str(config_yaml))
    state = load_state_dict_file(weights_path, trust=trust, map_location="cpu", key=None)
    load_state_dict_strict(model, state, str(weights_path))
    return model.eval()


def load_vocos_dir(model_dir: str | Path, trust: bool = False) -> Vocos:
    """:func:`load_vocos` on ``model_dir/config.yaml`` + ``model_dir/pytorch_model.bin``."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: no such vocoder directory (expected config.yaml + pytorch_model.bin)")
    return load_vocos(model_dir / "config.yaml", model_dir / "pytorch_model.bin", trust=trust)
