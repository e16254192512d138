"""ASTRAL-quantization-compatible content: HuBERT → ConvNeXt-V2 → binary spherical quantizer.

Seed-VC V2 describes *what* is sung with discrete tokens from an ``AstralQuantizer``
(configuration ``default_2048``): the 16 kHz audio goes through
``facebook/hubert-large-ll60k`` cut to its first 18 transformer layers, with the
encoder's final LayerNorm replaced by an identity; the 1024-d 50 Hz states pass a
12-block ConvNeXt-V2 stage (512 channels) and a binary spherical quantizer (BSQ)
whose 11 sign bits, read most-significant first, are the token id in [0, 2048).
Parameter names are upstream's (``encoder.blocks.N.dwconv`` …,
``quantizer.project_in`` …, buffer ``quantizer.mask``), so a released
``bsq2048_light.pth`` loads. The 32-token ("narrow", 5 bits) variant has the same
structure; the codebook size is read from the checkpoint.

Checkpoints (:func:`load_astral_extractor`, ``weights_only``): a plain state dict of
the whole module (keys ``encoder.*``, ``quantizer.*``; other keys such as
``decoder.*`` or ``asr_decoder.*`` are counted and ignored), or
``{'net': {'encoder': sd, 'vq': sd, ...}}``; a leading ``module.`` is stripped.
The encoder and quantizer load strictly: the architecture (width, depth,
intermediate width, input width, number of bits) is read from the tensor shapes
and every tensor of it must be present with its shape; ``quantizer.mask`` may be
absent (it is fixed) but, when present, must be the MSB-first bit weights.
``ssl_model.*`` tensors whose names and shapes match the truncated HuBERT replace
the directory's weights, as upstream's non-strict load of the whole module does.

Content frames (:meth:`AstralContentExtractor.extract`): ids at 50 Hz, where a
window of ``L`` samples gives ``min(L // 320, HuBERT frames)`` ids, are
nearest-interpolated to the mel frames of :mod:`seedsvc.audio`
(``len(wav_22k) // 256``) with torch's ``F.interpolate(mode='nearest')``, i.e. frame
``i`` takes id ``floor(i · scale)`` with ``scale = N / T`` in float32 — the same as
Seed-VC V2's length regulator interpolating the ids itself.

Long audio is processed in windows of 30 s (``WINDOW_SECONDS``) so memory stays
bounded: window ``k > 0`` starts 5 s (``OVERLAP_SECONDS``) before the end of window
``k - 1``; each id is placed at its true frame position (window start / 320 +
index), and a later window contributes only the frames after those already
taken, so every such frame has at least ~5 s of left context. Audio up to 30 s is
one window, exactly as upstream. (Upstream's own 30 s / 5 s loop drops the first
250 frames of later windows, which skips one frame per boundary; this rule does
not.) The GRN of the ConvNeXt-V2 blocks normalises over a window's whole time
axis, so ids of long audio depend slightly on the window layout, as upstream's do.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedsvc.audio import HOP, SAMPLE_RATE
from seedsvc.content import ContentExtractor
from shirabe.audio import resample
from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load

logger = logging.getLogger(__name__)

SSL_SAMPLE_RATE = 16000
SSL_HOP = 320  # HuBERT: 16 kHz / 320 = 50 frames/s
SSL_OUTPUT_LAYER = 18
MIN_SSL_SAMPLES = 400  # HuBERT's receptive field: shorter input gives no frame
WINDOW_SECONDS = 30
OVERLAP_SECONDS = 5


# ----------------------------------------------------------------------------- encoder


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T), computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        mean = h.mean(dim=1, keepdim=True)
        var = (h - mean).pow(2).mean(dim=1, keepdim=True)
        h = (h - mean) * torch.rsqrt(var + self.eps)
        h = h * self.weight.float()[:, None] + self.bias.float()[:, None]
        return h.to(x.dtype)


class GRN(nn.Module):
    """Global response normalisation on (B, T, C): L2 norm over time, divided by its channel mean."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """x + pwconv2(GRN(GELU(pwconv1(LN(dwconv(x)))))) on (B, C, T)."""

    def __init__(self, dim: int, intermediate_dim: int, dilation: int = 1):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3 * dilation, groups=dim, dilation=dilation)
        self.norm = ChannelsFirstLayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.grn = GRN(intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.dwconv(x)).transpose(1, 2)
        h = self.pwconv2(self.grn(self.act(self.pwconv1(h))))
        return x + h.transpose(1, 2)


class ConvNeXtV2Stage(nn.Module):
    """``input_projection`` (1×1 conv, identity when ``input_dim == dim``) → blocks → identity; (B, C, T)."""

    def __init__(self, dim: int = 512, num_blocks: int = 12, intermediate_dim: int = 1536, dilation: int = 1,
                 input_dim: int | None = 1024):
        super().__init__()
        input_dim = input_dim or dim
        self.input_projection = nn.Conv1d(input_dim, dim, 1) if input_dim != dim else nn.Identity()
        self.blocks = nn.ModuleList(ConvNeXtV2Block(dim, intermediate_dim, dilation) for _ in range(num_blocks))
        self.output_projection = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_projection(x)
        for block in self.blocks:
            x = block(x)
        return self.output_projection(x)


# --------------------------------------------------------------------------- quantizer


class BinarySphericalQuantize(nn.Module):
    """Binary spherical quantisation: project to log2(codebook) dims, L2-normalise, take signs.

    The id is the sum of ``mask`` (``2 ** [bits-1 … 0]``) over the positive
    coordinates, so the first coordinate is the most significant bit.
    """

    def __init__(self, codebook_size: int = 2048, dim: int = 512, spherical: bool = True,
                 codebook_scale: float = 1.0):
        super().__init__()
        bits = int(round(math.log2(codebook_size)))
        if 2**bits != codebook_size:
            raise ValueError(f"BSQ codebook size must be a power of two, got {codebook_size}")
        self.codebook_size, self.codebook_dim = codebook_size, bits
        self.spherical, self.codebook_scale = spherical, codebook_scale
        self.project_in = nn.Linear(dim, bits)
        self.project_out = nn.Linear(bits, dim)
        self.register_buffer("mask", 2 ** torch.arange(bits - 1, -1, -1), persistent=True)

    def codes(self, x: Tensor) -> Tensor:
        """(…, dim) → (…, bits) latent before the sign (normalised when spherical)."""
        h = self.project_in(x)
        if self.spherical:
            h = F.normalize(h, dim=-1) * self.codebook_scale
        return h

    def indices_of(self, codes: Tensor) -> Tensor:
        return ((codes > 0).long() * self.mask.to(codes.device).long()).sum(dim=-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, dim) → (quantized (B, T, dim), ids (B, T) int64)."""
        h = self.codes(x)
        signs = torch.where(h > 0, torch.ones_like(h), -torch.ones_like(h))
        if self.spherical:
            signs = F.normalize(signs, dim=-1) * self.codebook_scale
        return self.project_out(signs), self.indices_of(h)


# ------------------------------------------------------------------------------ module


@dataclass
class AstralConfig:
    """``default_2048`` sizes; :meth:`from_state_dict` reads them from a checkpoint's shapes."""

    input_dim: int = 1024
    dim: int = 512
    num_blocks: int = 12
    intermediate_dim: int = 1536
    dilation: int = 1
    codebook_size: int = 2048
    ssl_output_layer: int = SSL_OUTPUT_LAYER

    @classmethod
    def from_state_dict(cls, sd: dict[str, Tensor], path) -> AstralConfig:
        def need(key):
            if key not in sd:
                raise InputError(f"{path}: missing '{key}' (not an ASTRAL quantizer checkpoint?)")
            return sd[key].shape

        dw, pw1, pin = need("encoder.blocks.0.dwconv.weight"), need("encoder.blocks.0.pwconv1.weight"), \
            need("quantizer.project_in.weight")
        if len(dw) != 3 or len(pw1) != 2 or len(pin) != 2:
            raise InputError(f"{path}: encoder.blocks.0 / quantizer.project_in tensors have unexpected ranks")
        ip = sd.get("encoder.input_projection.weight")
        blocks = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.blocks\.(\d+)\.", k))}
        return cls(input_dim=int(ip.shape[1]) if ip is not None and ip.dim() == 3 else int(dw[0]), dim=int(dw[0]),
                   num_blocks=max(blocks) + 1, intermediate_dim=int(pw1[0]), codebook_size=2 ** int(pin[0]))


class AstralQuantizer(nn.Module):
    """``encoder`` (ConvNeXt-V2 stage) + ``quantizer`` (BSQ), with an optional truncated HuBERT ``ssl_model``."""

    def __init__(self, config: AstralConfig | None = None, ssl_model: nn.Module | None = None):
        super().__init__()
        self.config = config or AstralConfig()
        c = self.config
        if ssl_model is not None:
            self.ssl_model = ssl_model
        self.encoder = ConvNeXtV2Stage(c.dim, c.num_blocks, c.intermediate_dim, c.dilation, c.input_dim)
        self.quantizer = BinarySphericalQuantize(c.codebook_size, c.dim)

    def quantize(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """SSL states (B, T, input_dim) → (quantized (B, T, dim), ids (B, T))."""
        x = self.encoder(hidden.transpose(1, 2)).transpose(1, 2)
        return self.quantizer(x)

    def ssl_states(self, input_values: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised 16 kHz input → (states (B, T, input_dim), frame counts (B,))."""
        states = self.ssl_model(input_values, attention_mask=attention_mask).last_hidden_state
        lens = attention_mask.sum(-1) // SSL_HOP
        states = states[:, : int(lens.max())]
        return states, lens.clamp(max=states.shape[1])

    def forward(self, input_values: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        states, lens = self.ssl_states(input_values, attention_mask)
        quantized, ids = self.quantize(states)
        return quantized, ids, lens


def truncate_ssl_model(model: nn.Module, num_layers: int = SSL_OUTPUT_LAYER) -> nn.Module:
    """Keep the first ``num_layers`` transformer layers; the encoder's final LayerNorm becomes an identity."""
    model.encoder.layers = model.encoder.layers[:num_layers]
    model.encoder.layer_norm = nn.Identity()
    return model


def frames_nearest(ids: Tensor, num_frames: int) -> Tensor:
    """(N,) ids → (num_frames,) by ``F.interpolate(mode='nearest')`` (frame i takes id floor(i·N/T))."""
    if ids.shape[0] == num_frames:
        return ids
    out = F.interpolate(ids[None, None].double(), size=num_frames, mode="nearest")
    return out[0, 0].round().long()


# --------------------------------------------------------------------------- extractor


class AstralContentExtractor(ContentExtractor):
    """Token ids at the mel frame rate.

    ``dim`` is the codebook size: an id stands for a one-hot vector of that
    size, as the phone extractor's posteriors are distributions over its phones.
    """

    name = "astral"
    discrete = True

    def __init__(self, model: AstralQuantizer, feature_extractor, device="cpu"):
        self.model = model.to(device).eval()
        self.feature_extractor = feature_extractor
        self.codebook_size = model.quantizer.codebook_size
        self.dim = self.codebook_size
        self.device = device

    @torch.inference_mode()
    def _window_ids(self, wav16: np.ndarray) -> Tensor:
        feats = self.feature_extractor(wav16, sampling_rate=SSL_SAMPLE_RATE, return_tensors="pt",
                                       return_attention_mask=True)
        states, lens = self.model.ssl_states(feats["input_values"].to(self.device),
                                             feats["attention_mask"].to(self.device))
        _, ids = self.model.quantize(states.float())
        return ids[0, : int(lens[0])].cpu()

    def tokens(self, wav16: np.ndarray) -> Tensor:
        """16 kHz mono audio → (N,) int64 ids at 50 Hz, in 30 s windows (see the module docstring)."""
        wav16 = np.asarray(wav16, dtype=np.float32)
        if wav16.ndim != 1:
            raise InputError(f"ASTRAL content needs mono audio, got shape {wav16.shape}")
        if wav16.shape[0] < MIN_SSL_SAMPLES:
            raise InputError(f"audio of {wav16.shape[0] / SSL_SAMPLE_RATE:.3f} s is too short for HuBERT "
                             f"(at least {MIN_SSL_SAMPLES / SSL_SAMPLE_RATE:.3f} s)")
        window = WINDOW_SECONDS * SSL_SAMPLE_RATE
        step = (WINDOW_SECONDS - OVERLAP_SECONDS) * SSL_SAMPLE_RATE
        pieces, taken, start = [], 0, 0
        while True:
            ids = self._window_ids(wav16[start : start + window])
            first = start // SSL_HOP
            pieces.append(ids[max(taken - first, 0) :])
            taken = first + ids.shape[0]
            if start + window >= wav16.shape[0]:
                break
            start += step
        return torch.cat(pieces)

    def extract(self, wav: np.ndarray, sr: int, num_frames: int | None = None) -> Tensor:
        """Audio at its true rate ``sr`` → (T,) int64 ids, T = ``num_frames`` or ``len(wav_22k) // 256``."""
        wav = np.asarray(wav, dtype=np.float32)
        if num_frames is None:
            num_frames = len(resample(wav, sr, SAMPLE_RATE)) // HOP
        ids = self.tokens(resample(wav, sr, SSL_SAMPLE_RATE))
        return frames_nearest(ids, num_frames)


# ------------------------------------------------------------------------------ loading


def _strip_module(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def flatten_astral_state(obj, path) -> tuple[dict[str, Tensor], int]:
    """Either checkpoint format → (``encoder.*``/``quantizer.*``/``ssl_model.*``/… tensors, #ignored entries)."""
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not an ASTRAL quantizer checkpoint (expected a state dict)")
    ignored = 0
    if isinstance(obj.get("net"), dict):
        net = obj["net"]
        for part in ("encoder", "vq"):
            if not isinstance(net.get(part), dict):
                raise InputError(f"{path}: no ['net']['{part}'] state dict")
        flat = {f"encoder.{_strip_module(k)}": v for k, v in net["encoder"].items()}
        flat.update({f"quantizer.{_strip_module(k)}": v for k, v in net["vq"].items()})
        ignored = sum(len(v) if isinstance(v, dict) else 1 for k, v in net.items() if k not in ("encoder", "vq"))
    else:
        flat = {_strip_module(k): v for k, v in obj.items()}
    bad = next((k for k, v in flat.items() if not isinstance(v, Tensor)), None)
    if bad is not None:
        raise InputError(f"{path}: entry '{bad}' is not a tensor (not an ASTRAL quantizer state dict)")
    return flat, ignored


def load_astral_weights(model: AstralQuantizer, flat: dict[str, Tensor], path) -> int:
    """Strict load of ``encoder``/``quantizer`` from ``flat``; returns the number of other keys."""
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(("encoder.", "quantizer."))}
    for key, ref in expected.items():
        if key == "quantizer.mask":
            if key in flat and not torch.equal(flat[key].long().cpu(), ref.long().cpu()):
                raise InputError(f"{path}: 'quantizer.mask' is {flat[key].tolist()}, expected the MSB-first "
                                 f"bit weights {ref.tolist()}")
            continue
        if key not in flat:
            raise InputError(f"{path}: missing '{key}' (needed by the ASTRAL encoder/quantizer)")
        if tuple(flat[key].shape) != tuple(ref.shape):
            raise InputError(f"{path}: '{key}' has shape {list(flat[key].shape)}, expected {list(ref.shape)}")
    extra = sorted(k for k in flat if k.startswith(("encoder.", "quantizer.")) and k not in expected)
    if extra:
        raise InputError(f"{path}: '{extra[0]}' is not part of the supported ASTRAL configuration "
                         f"({asdict(model.config)})")
    model.load_state_dict({k: flat[k] for k in expected if k in flat}, strict=False)
    return sum(1 for k in flat if not k.startswith(("encoder.", "quantizer.")))


def _hubert_key(key: str) -> str:
    """Older weight-norm spellings of the positional conv → torch's parametrization names."""
    return key.replace("conv.weight_g", "conv.parametrizations.weight.original0").replace(
        "conv.weight_v", "conv.parametrizations.weight.original1")


def check_ssl_dir(ssl_dir) -> Path:
    if ssl_dir is None:
        raise InputError("--ssl-model is needed for the 'astral' content extractor "
                         "(a local facebook/hubert-large-ll60k directory)")
    ssl_dir = Path(ssl_dir)
    if not ssl_dir.is_dir():
        raise InputError(f"{ssl_dir}: no such HuBERT model directory")
    if not (ssl_dir / "config.json").is_file():
        raise InputError(f"{ssl_dir}: not a HuBERT model directory (no config.json)")
    return ssl_dir


def load_ssl_model(ssl_dir, num_layers: int = SSL_OUTPUT_LAYER):
    """HuBERT and its feature extractor from a local directory, truncated to ``num_layers`` layers."""
    ssl_dir = check_ssl_dir(ssl_dir)
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    try:
        model = HubertModel.from_pretrained(str(ssl_dir))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise InputError(f"{ssl_dir}: cannot load a HuBERT model ({str(e).splitlines()[0]})") from e
    if len(model.encoder.layers) < num_layers:
        raise InputError(f"{ssl_dir}: HuBERT has {len(model.encoder.layers)} layers, ASTRAL uses the first {num_layers}")
    if (ssl_dir / "preprocessor_config.json").is_file():
        fe = Wav2Vec2FeatureExtractor.from_pretrained(str(ssl_dir))
    else:
        fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SSL_SAMPLE_RATE, padding_value=0.0,
                                      do_normalize=True, return_attention_mask=True)
    if fe.sampling_rate != SSL_SAMPLE_RATE:
        raise InputError(f"{ssl_dir}: the feature extractor expects {fe.sampling_rate} Hz, ASTRAL uses 16 kHz")
    return truncate_ssl_model(model.eval(), num_layers), fe


def load_astral_extractor(checkpoint, ssl_dir, device="cpu") -> AstralContentExtractor:
    """ASTRAL weights (``bsq2048_light.pth``) + a local HuBERT directory → :class:`AstralContentExtractor`."""
    check_ssl_dir(ssl_dir)
    flat, ignored = flatten_astral_state(safe_load(checkpoint), checkpoint)
    config = AstralConfig.from_state_dict(flat, checkpoint)
    model = AstralQuantizer(config)
    ignored += load_astral_weights(model, flat, checkpoint)
    ssl_model, fe = load_ssl_model(ssl_dir, config.ssl_output_layer)
    hidden = ssl_model.config.hidden_size
    if hidden != config.input_dim:
        raise InputError(f"{checkpoint}: the encoder takes {config.input_dim}-d input, {ssl_dir} gives {hidden}-d")
    ssl_sd = ssl_model.state_dict()
    taken = {}
    for k, v in flat.items():
        if k.startswith("ssl_model."):
            name = _hubert_key(k[len("ssl_model."):])
            if name in ssl_sd:
                if tuple(v.shape) != tuple(ssl_sd[name].shape):
                    raise InputError(f"{checkpoint}: '{k}' has shape {list(v.shape)}, {ssl_dir} has "
                                     f"{list(ssl_sd[name].shape)}")
                taken[name] = v
    if taken:
        ssl_model.load_state_dict(taken, strict=False)
        ignored -= len(taken)
        logger.info("%s: %d HuBERT tensors taken from the checkpoint", checkpoint, len(taken))
    model.ssl_model = ssl_model
    logger.info("ASTRAL quantizer from %s (%s, codebook %d) on HuBERT %s (first %d layers); %d unused keys ignored",
                checkpoint, ", ".join(f"{k} {v}" for k, v in asdict(config).items() if k != "codebook_size"),
                config.codebook_size, ssl_dir, config.ssl_output_layer, ignored)
    return AstralContentExtractor(model, fe, device)


__all__ = [
    "AstralConfig",
    "AstralContentExtractor",
    "AstralQuantizer",
    "BinarySphericalQuantize",
    "ConvNeXtV2Block",
    "ConvNeXtV2Stage",
    "GRN",
    "frames_nearest",
    "load_astral_extractor",
    "truncate_ssl_model",
]
