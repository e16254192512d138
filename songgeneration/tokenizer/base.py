"""The audio tokenizer interface of SongGeneration and the registry of tokenizers by name.

A song is three token streams at 25 Hz: the mixed stream (the whole song) and the
vocal and accompaniment streams. Every tokenizer reads and writes 48 kHz stereo
float32 audio shaped ``[2, N]`` and speaks these shapes:

* :meth:`AudioTokenizer.encode` ``(wav [2, N]) -> codes [1, T]`` (mixed stream);
* :meth:`AudioTokenizer.encode_separate` ``(vocal [2, N], accompaniment [2, N]) -> codes [2, T]``
  (row 0 vocal, row 1 accompaniment);
* :meth:`AudioTokenizer.decode` ``(codes [1, T] | [2, T], prompt=None) -> wav [2, N]``; a tokenizer
  that cannot decode one kind of codes raises a one-line :class:`~shirabe.cli.InputError`.

:meth:`AudioTokenizer.encode_song` stacks the three streams into the language
model's ``[3, T]`` layout (mixed, vocal, accompaniment). Tokenizers whose own
functions return ``[1, 1, T]`` per stream drop the batch axis behind this interface.

Frame rule: ``T = int(seconds * 25) + 1`` with ``seconds = N / 48000``, computed in
integers as ``N * 25 // 48000 + 1`` (:func:`num_frames`), i.e. ``N // 1920 + 1``:
frame ``t`` is centred on sample ``t * 1920``. Code ids are below
:data:`CODE_SIZE` (16384); :data:`EOS_ID` (16384) ends a song and
:data:`PAD_ID` (16385) pads after it, so neither is ever a tokenizer code.

Registry: a tokenizer class registers itself with ``@register("name")`` and
implements ``load(path, device, **options)``; :func:`load_tokenizer` builds one
by name.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from shirabe.cli import InputError

SAMPLE_RATE = 48000
FRAME_RATE = 25
HOP_SAMPLES = SAMPLE_RATE // FRAME_RATE  # 1920
CODE_SIZE = 16384
EOS_ID = 16384
PAD_ID = 16385

# Modules that register the built-in tokenizers (imported on first lookup).
BUILTIN_MODULES = ("songgeneration.tokenizer.standin",)

_REGISTRY: dict[str, type[AudioTokenizer]] = {}


def num_frames(num_samples: int) -> int:
    """Frames of a 48 kHz signal of ``num_samples`` samples: ``int(seconds * 25) + 1``."""
    if num_samples < 0:
        raise ValueError(f"negative length {num_samples}")
    return num_samples * FRAME_RATE // SAMPLE_RATE + 1


def as_stereo(wav, what: str = "audio") -> torch.Tensor:
    """``wav`` as a float32 ``[2, N]`` tensor; mono (``[N]`` or ``[1, N]``) is copied to both channels.

    Anything else (more channels, channels last, empty, not finite) is a one-line
    :class:`InputError` naming ``what``.
    """
    if isinstance(wav, np.ndarray):
        wav = torch.from_numpy(np.ascontiguousarray(wav))
    if not isinstance(wav, torch.Tensor):
        raise InputError(f"{what}: expected a tensor or array shaped [2, N], got {type(wav).__name__}")
    wav = wav.float()
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2 or wav.shape[0] not in (1, 2):
        raise InputError(f"{what}: expected 48 kHz stereo shaped [2, N] (channels first), got {tuple(wav.shape)}")
    if wav.shape[1] == 0:
        raise InputError(f"{what}: no samples")
    if not torch.isfinite(wav).all():
        raise InputError(f"{what}: contains NaN or infinite samples")
    return wav.expand(2, -1).contiguous() if wav.shape[0] == 1 else wav


def check_codes(codes, size: int, rows: tuple[int, ...] = (1, 2)) -> torch.Tensor:
    """``codes`` as an int64 ``[K, T]`` tensor with ``K`` in ``rows`` and every id in ``[0, size)``.

    An end-of-song or pad id, or any id out of range, is a one-line :class:`InputError`
    naming its row and frame (cut the codes with :func:`trim_at_eos` first).
    """
    codes = torch.as_tensor(codes)
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise InputError(f"codes: expected integer ids, got {codes.dtype}")
    codes = codes.long()
    if codes.dim() == 3 and codes.shape[0] == 1:
        codes = codes[0]
    if codes.dim() != 2 or codes.shape[0] not in rows or codes.shape[1] == 0:
        shapes = " or ".join(f"[{k}, T]" for k in rows)
        raise InputError(f"codes: expected {shapes} with T >= 1, got {tuple(codes.shape)}")
    bad = (codes < 0) | (codes >= size)
    if bad.any():
        row, frame = (int(i) for i in bad.nonzero()[0])
        value = int(codes[row, frame])
        kind = {EOS_ID: " (end of song)", PAD_ID: " (pad)"}.get(value, "")
        raise InputError(f"codes: id {value}{kind} at row {row}, frame {frame} is not a code of this tokenizer "
                         f"(ids 0..{size - 1})")
    return codes


def trim_at_eos(codes: torch.Tensor) -> torch.Tensor:
    """``codes [K, T]`` cut before the first frame where any row holds :data:`EOS_ID` or :data:`PAD_ID`."""
    special = ((codes == EOS_ID) | (codes == PAD_ID)).any(dim=0)
    if special.any():
        return codes[:, : int(special.nonzero()[0])]
    return codes


class AudioTokenizer(abc.ABC):
    """48 kHz stereo audio ↔ 25 Hz codes; see the module doc for shapes and the frame rule."""

    name: str = ""
    sample_rate: int = SAMPLE_RATE
    frame_rate: int = FRAME_RATE

    @property
    @abc.abstractmethod
    def codebook_size(self) -> int:
        """Number of code ids (every code is below it, and below :data:`CODE_SIZE`)."""

    @property
    def can_decode_mixed(self) -> bool:
        """Whether :meth:`decode` takes mixed-stream codes ``[1, T]``."""
        return True

    @property
    def can_decode_separate(self) -> bool:
        """Whether :meth:`decode` takes vocal + accompaniment codes ``[2, T]``."""
        return True

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def num_frames(self, num_samples: int) -> int:
        return num_frames(num_samples)

    @abc.abstractmethod
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Mixed stream: ``wav [2, N]`` (48 kHz) → codes ``[1, T]`` (int64, ``T = num_frames(N)``)."""

    @abc.abstractmethod
    def encode_separate(self, vocal: torch.Tensor, accompaniment: torch.Tensor) -> torch.Tensor:
        """Stems of one song (same length) → codes ``[2, T]``: row 0 vocal, row 1 accompaniment."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``[1, T]`` (mixed) or ``[2, T]`` (vocal, accompaniment) → wav ``[2, N]`` at 48 kHz.

        ``prompt`` is optional reference audio ``[2, M]`` at 48 kHz that a tokenizer may
        condition its decoder on.
        """

    def encode_song(self, mixed: torch.Tensor, vocal: torch.Tensor, accompaniment: torch.Tensor) -> torch.Tensor:
        """The language model's three streams ``[3, T]``: mixed, vocal, accompaniment."""
        lengths = {as_stereo(w, what).shape[1] for w, what in
                   ((mixed, "mixed"), (vocal, "vocal"), (accompaniment, "accompaniment"))}
        if len(lengths) != 1:
            raise InputError(f"mixed, vocal and accompaniment differ in length: {sorted(lengths)} samples")
        return torch.cat([self.encode(mixed), self.encode_separate(vocal, accompaniment)], dim=0)

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", **options) -> AudioTokenizer:
        """The tokenizer stored at ``path`` (a file or folder, as the tokenizer defines)."""


def register(name: str) -> Callable[[type[AudioTokenizer]], type[AudioTokenizer]]:
    """Class decorator: make ``cls`` loadable as ``load_tokenizer(name, ...)``."""

    def wrap(cls: type[AudioTokenizer]) -> type[AudioTokenizer]:
        if not (isinstance(cls, type) and issubclass(cls, AudioTokenizer)):
            raise TypeError(f"register('{name}'): {cls!r} is not an AudioTokenizer")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"tokenizer name '{name}' is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _import_builtins() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def known_tokenizers() -> list[str]:
    """Registered tokenizer names, sorted."""
    _import_builtins()
    return sorted(_REGISTRY)


def tokenizer_class(name: str) -> type[AudioTokenizer]:
    """The class registered as ``name``; an unknown name is a one-line error listing the known ones."""
    _import_builtins()
    if name not in _REGISTRY:
        raise InputError(f"unknown tokenizer '{name}' (known: {', '.join(sorted(_REGISTRY)) or 'none'})")
    return _REGISTRY[name]


def load_tokenizer(name: str, path: str | Path, device: str | torch.device = "cpu", **options) -> AudioTokenizer:
    """Load the tokenizer ``name`` from ``path`` onto ``device``; ``options`` go to its ``load``."""
    return tokenizer_class(name).load(path, device=device, **options)
