"""The mini stand-in tokenizer ("mini"): k-means codes over 25 Hz log-mel frames, decoded by a mel vocoder.

Crude but audible, it lets the SongGeneration recipe run end to end on the
mini corpus without the released tokenizers. One file holds up to three
codebooks (``mixed``, ``vocal``, ``accompaniment``), each ``[K, 100]``: the
centroids of 25 Hz log-mel frames of that stream's audio.

Encoding a stem ``[2, N]`` at 48 kHz:

1. channel mean (the codes are mono), resampled 48 → 24 kHz (soxr,
   :func:`shirabe.audio.resample.resample`);
2. the Vocos log-mel of :func:`shirabe.audio.mel.vocos_mel` (24 kHz, n_fft 1024,
   hop 256, 100 HTK mel bins, natural log), frame ``j`` centred on 24 kHz sample
   ``256 j``;
3. pooled to ``T = N // 1920 + 1`` frames at 25 Hz (hop 1920 at 48 kHz, 960 at
   24 kHz): frame ``t`` is the mean of the mel frames ``j`` with
   ``round(256 j / 960) = t`` (the last frame also takes any later ones; a frame that
   no mel frame falls into copies its nearest neighbour);
4. each frame's code is its nearest centroid (Euclidean).

Decoding codes ``[1, T]`` (mixed) or ``[2, T]`` (vocal, accompaniment):

1. codebook lookup → ``[T, 100]`` log-mel at 25 Hz;
2. linear interpolation to the vocoder's 93.75 Hz frames (frame ``j`` at 25 Hz
   position ``256 j / 960``, held at the ends), ``ceil(3.75 T)`` frames;
3. the vocoder at 24 kHz: Griffin-Lim (:class:`shirabe.vocoder.GriffinLim`, 32
   iterations, seeded) by default, or a Vocos model folder
   (``vocoder_path``, ``charactr/vocos-mel-24khz`` layout) when given;
4. cut to ``960 T`` samples, summed over the rows (vocal + accompaniment), resampled
   24 → 48 kHz (soxr) and copied to both channels: ``[2, 1920 T]``, i.e. ``T / 25`` s.
   (Re-encoding that gives ``T + 1`` frames by the frame rule.)

A ``prompt`` is accepted and ignored: the stand-in has no in-context conditioning.

Codebooks are fitted by :func:`train_codebook` (k-means++ seeding from a seeded
generator, then Lloyd iterations; an emptied cluster is re-seeded with the frame
farthest from its centroid), so a seed gives the same codebook on every run.
The file is safetensors with the tensors ``codebook.<stream>`` and metadata
``tokenizer=mini``, ``format_version``, ``n_mels``, ``mel_sample_rate``, ``mel_hop``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from shirabe.audio.mel import HOP_LENGTH, N_MELS, vocos_mel
from shirabe.audio.mel import SAMPLE_RATE as MEL_SAMPLE_RATE
from shirabe.audio.resample import resample
from shirabe.cli import InputError, get_logger
from songgeneration.tokenizer.base import (
    CODE_SIZE,
    HOP_SAMPLES,
    SAMPLE_RATE,
    AudioTokenizer,
    as_stereo,
    check_codes,
    num_frames,
    register,
)

logger = get_logger(__name__)

STREAMS = ("mixed", "vocal", "accompaniment")
FORMAT_VERSION = "1"
MEL_HOP_25HZ = MEL_SAMPLE_RATE // 25  # 960: one 25 Hz frame in 24 kHz samples
KMEANS_ITERATIONS = 30


# ---------------------------------------------------------------------------
# Features


def stem_features(wav, device: str | torch.device = "cpu", what: str = "audio") -> torch.Tensor:
    """25 Hz log-mel frames ``[T, 100]`` of a 48 kHz stem ``[2, N]`` (see the module doc, steps 1-3)."""
    wav = as_stereo(wav, what)
    n = wav.shape[1]
    frames = num_frames(n)
    mono = resample(wav.mean(dim=0).cpu().numpy(), SAMPLE_RATE, MEL_SAMPLE_RATE)
    mel = vocos_mel(torch.from_numpy(mono).to(device))[0]  # (100, F)
    centre = torch.arange(mel.shape[1], device=mel.device, dtype=torch.float64) * HOP_LENGTH / MEL_HOP_25HZ
    owner = torch.floor(centre + 0.5).long().clamp(max=frames - 1)
    sums = torch.zeros(frames, mel.shape[0], device=mel.device).index_add_(0, owner, mel.t())
    counts = torch.zeros(frames, device=mel.device).index_add_(0, owner, torch.ones_like(owner, dtype=torch.float32))
    filled = counts > 0
    pooled = sums / counts.clamp(min=1).unsqueeze(1)
    if not bool(filled.all()):
        have = filled.nonzero()[:, 0]
        want = torch.arange(frames, device=mel.device)
        nearest = have[(want.unsqueeze(1) - have.unsqueeze(0)).abs().argmin(dim=1)]
        pooled = pooled[nearest]
    return pooled


def codebook_to_mel(frames: torch.Tensor) -> torch.Tensor:
    """25 Hz log-mel ``[..., T, M]`` → vocoder frames ``[..., M, ceil(3.75 T)]`` by linear interpolation."""
    t = frames.shape[-2]
    count = math.ceil(t * MEL_HOP_25HZ / HOP_LENGTH)
    pos = (torch.arange(count, device=frames.device, dtype=torch.float64) * HOP_LENGTH / MEL_HOP_25HZ)
    pos = pos.clamp(max=t - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=t - 1)
    w = (pos - lo).to(frames.dtype).unsqueeze(-1)
    mel = frames[..., lo, :] * (1 - w) + frames[..., hi, :] * w
    return mel.transpose(-1, -2)


# ---------------------------------------------------------------------------
# k-means


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) - 2 * x @ c.t() + (c * c).sum(1).unsqueeze(0)).clamp(min=0)


def nearest(x: torch.Tensor, codebook: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Index of the nearest centroid (Euclidean) of each row of ``x [n, d]``."""
    return torch.cat([_sq_dist(x[i:i + chunk], codebook).argmin(dim=1) for i in range(0, x.shape[0], chunk)])


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iterations: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Centroids ``[k, d]`` of ``x [n, d]``: k-means++ seeding from ``seed``, then Lloyd iterations."""
    n = x.shape[0]
    if k < 1:
        raise InputError(f"codebook size must be at least 1, got {k}")
    if n < k:
        raise InputError(f"{n} frames cannot fit {k} centroids: use more audio or a smaller codebook size")
    x = x.float()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    first = int(torch.randint(n, (1,), generator=gen))
    centroids = [x[first]]
    best = _sq_dist(x, x[first:first + 1])[:, 0].double()
    for _ in range(1, k):
        total = float(best.sum())
        if total <= 0:  # every frame already sits on a centroid: take unused frames in order
            pick = int(torch.randint(n, (1,), generator=gen))
        else:
            pick = int(torch.multinomial((best / total).cpu().float(), 1, generator=gen))
        centroids.append(x[pick])
        best = torch.minimum(best, _sq_dist(x, x[pick:pick + 1])[:, 0].double())
    c = torch.stack(centroids)
    for _ in range(iterations):
        assign = nearest(x, c)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        new = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        empty = (counts == 0).nonzero()[:, 0]
        if empty.numel():
            dist = _sq_dist(x, c).gather(1, assign.unsqueeze(1))[:, 0]
            far = dist.argsort(descending=True)[: empty.numel()]
            new[empty] = x[far]
        if torch.equal(new, c):
            break
        c = new
    return c


def train_codebook(wavs: Iterable, k: int, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = False, what: str = "audio") -> torch.Tensor:
    """Fit a ``[k, 100]`` codebook to the 25 Hz log-mel frames of ``wavs``; deterministic for a seed.

    Each item is a ``[2, N]`` 48 kHz tensor, an audio path (read by :func:`read_stereo_48k`)
    or a tuple of paths of equal length that are summed (e.g. a song's two stems).
    """
    from tqdm import tqdm

    wavs = list(wavs)
    feats = []
    for i, item in enumerate(tqdm(wavs, desc=f"{what} features", unit="file", disable=not progress)):
        name = f"{what} {i}"
        if isinstance(item, (str, Path)):
            name, item = str(item), read_stereo_48k(item)
        elif isinstance(item, tuple):
            parts = [read_stereo_48k(p) for p in item]
            if len({x.shape[1] for x in parts}) != 1:
                raise InputError(f"{', '.join(map(str, item))}: differ in length "
                                 f"({', '.join(str(x.shape[1]) for x in parts)} samples)")
            name, item = " + ".join(map(str, item)), sum(parts)
        feats.append(stem_features(item, device, name))
    if not feats:
        raise InputError(f"no {what} audio to fit a codebook on")
    return kmeans(torch.cat(feats), k, seed)


def read_stereo_48k(path: str | Path) -> torch.Tensor:
    """A wav/flac/mp3 file as ``[2, N]`` at 48 kHz (mono copied to both channels, other rates resampled)."""
    from shirabe.audio.io import load_audio

    wav, _ = load_audio(path, sr=SAMPLE_RATE, mono=False)
    wav = torch.from_numpy(wav)
    if wav.dim() == 2:
        if wav.shape[1] > 2:
            raise InputError(f"{path}: {wav.shape[1]} channels (expected mono or stereo)")
        wav = wav.t()
    return as_stereo(wav, str(path))


# ---------------------------------------------------------------------------
# The tokenizer


def _vocoder(vocoder_path, trust: bool):
    from shirabe.vocoder import GriffinLim, load_vocos_dir

    if vocoder_path is None:
        logger.debug("mini tokenizer: decoding with Griffin-Lim")
        return GriffinLim().eval()
    voc = load_vocos_dir(vocoder_path, trust=trust).eval()
    if (voc.sample_rate, voc.hop_length, voc.n_mels) != (MEL_SAMPLE_RATE, HOP_LENGTH, N_MELS):
        raise InputError(f"{vocoder_path}: a {voc.sample_rate} Hz / hop {voc.hop_length} / {voc.n_mels}-mel vocoder; "
                         f"the mini tokenizer needs {MEL_SAMPLE_RATE} Hz / hop {HOP_LENGTH} / {N_MELS} mels")
    return voc


@register("mini")
class MiniTokenizer(AudioTokenizer):
    """k-means codes over 25 Hz Vocos log-mel frames; see the module doc."""

    def __init__(self, codebooks: dict[str, torch.Tensor], device: str | torch.device = "cpu",
                 vocoder_path: str | Path | None = None, trust: bool = False):
        if "mixed" not in codebooks:
            raise InputError("mini tokenizer: a mixed codebook is required")
        if set(codebooks) - set(STREAMS) or ("vocal" in codebooks) != ("accompaniment" in codebooks):
            raise InputError(f"mini tokenizer: codebooks {sorted(codebooks)} (expected mixed, "
                             "optionally with both vocal and accompaniment)")
        sizes = {tuple(c.shape) for c in codebooks.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 2 or next(iter(sizes))[1] != N_MELS:
            raise InputError(f"mini tokenizer: codebook shapes {sorted(sizes)} (expected one shape [K, {N_MELS}])")
        k = next(iter(sizes))[0]
        if not 1 <= k <= CODE_SIZE:
            raise InputError(f"mini tokenizer: codebook size {k} (expected 1..{CODE_SIZE})")
        self._device = torch.device(device)
        self.codebooks = {s: c.detach().float().to(self._device) for s, c in codebooks.items()}
        self._vocoder_path = vocoder_path
        self._trust = trust
        self._voc = None

    @property
    def codebook_size(self) -> int:
        return self.codebooks["mixed"].shape[0]

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def can_decode_separate(self) -> bool:
        return "vocal" in self.codebooks

    @property
    def vocoder(self):
        if self._voc is None:
            self._voc = _vocoder(self._vocoder_path, self._trust).to(self._device)
        return self._voc

    # -- training, saving, loading

    @classmethod
    def train(cls, mixed: Iterable, vocal: Iterable | None = None, accompaniment: Iterable | None = None,
              k: int = 256, seed: int = 0, device: str | torch.device = "cpu", progress: bool = False,
              **options) -> MiniTokenizer:
        """Fit the codebooks (mixed; vocal and accompaniment when given) with one seed each stream."""
        books = {"mixed": train_codebook(mixed, k, seed, device, progress, "mixed")}
        if (vocal is None) != (accompaniment is None):
            raise InputError("give both vocal and accompaniment stems, or neither")
        if vocal is not None:
            books["vocal"] = train_codebook(vocal, k, seed + 1, device, progress, "vocal")
            books["accompaniment"] = train_codebook(accompaniment, k, seed + 2, device, progress, "accompaniment")
        return cls(books, device, **options)

    def save(self, path: str | Path) -> Path:
        """Write the codebooks to one safetensors file (atomically)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"tokenizer": "mini", "format_version": FORMAT_VERSION, "n_mels": str(N_MELS),
                "mel_sample_rate": str(MEL_SAMPLE_RATE), "mel_hop": str(HOP_LENGTH),
                "streams": json.dumps(sorted(self.codebooks))}
        tensors = {f"codebook.{s}": c.cpu().contiguous() for s, c in self.codebooks.items()}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", vocoder_path: str | Path | None = None,
             trust: bool = False) -> MiniTokenizer:
        """A tokenizer saved by :meth:`save`; a wrong or damaged file is a one-line error naming it."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such tokenizer file")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise InputError(f"{path}: not a readable safetensors file ({reason})") from e
        if meta.get("tokenizer") != "mini":
            raise InputError(f"{path}: not a mini tokenizer file (metadata tokenizer={meta.get('tokenizer')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{path}: format version {meta.get('format_version')!r} (this code reads "
                             f"{FORMAT_VERSION})")
        expected = (str(N_MELS), str(MEL_SAMPLE_RATE), str(HOP_LENGTH))
        if (meta.get("n_mels"), meta.get("mel_sample_rate"), meta.get("mel_hop")) != expected:
            raise InputError(f"{path}: mel front end {meta.get('n_mels')} mels / {meta.get('mel_sample_rate')} Hz / "
                             f"hop {meta.get('mel_hop')} (expected {N_MELS} / {MEL_SAMPLE_RATE} / {HOP_LENGTH})")
        unknown = sorted(k for k in tensors if k.removeprefix("codebook.") not in STREAMS
                         or not k.startswith("codebook."))
        if unknown:
            raise InputError(f"{path}: unexpected tensors {', '.join(unknown)}")
        books = {k.removeprefix("codebook."): v for k, v in tensors.items()}
        try:
            return cls(books, device, vocoder_path=vocoder_path, trust=trust)
        except InputError as e:
            raise InputError(f"{path}: {e}") from e

    # -- the interface

    def _codes(self, wav, stream: str, what: str) -> torch.Tensor:
        feats = stem_features(wav, self._device, what)
        return nearest(feats, self.codebooks[stream]).unsqueeze(0)

    @torch.no_grad()
    def encode(self, wav) -> torch.Tensor:
        return self._codes(wav, "mixed", "mixed audio")

    @torch.no_grad()
    def encode_separate(self, vocal, accompaniment) -> torch.Tensor:
        if not self.can_decode_separate:
            raise InputError("this mini tokenizer has no vocal/accompaniment codebooks (it was trained on mixes only)")
        vocal, accompaniment = as_stereo(vocal, "vocal"), as_stereo(accompaniment, "accompaniment")
        if vocal.shape[1] != accompaniment.shape[1]:
            raise InputError(f"vocal ({vocal.shape[1]} samples) and accompaniment ({accompaniment.shape[1]} samples) "
                             "differ in length")
        return torch.cat([self._codes(vocal, "vocal", "vocal"),
                          self._codes(accompaniment, "accompaniment", "accompaniment")])

    def codes_to_mel(self, codes) -> torch.Tensor:
        """Codes ``[1, T]`` or ``[2, T]`` → 25 Hz log-mel ``[rows, T, 100]`` by codebook lookup."""
        codes = check_codes(codes, self.codebook_size).to(self._device)
        if codes.shape[0] == 2:
            if not self.can_decode_separate:
                raise InputError("this mini tokenizer cannot decode vocal + accompaniment codes "
                                 "(it has no stem codebooks)")
            return torch.stack([self.codebooks["vocal"][codes[0]], self.codebooks["accompaniment"][codes[1]]])
        return self.codebooks["mixed"][codes[0]].unsqueeze(0)

    @torch.no_grad()
    def decode(self, codes, prompt=None) -> torch.Tensor:
        if prompt is not None:
            as_stereo(prompt, "prompt")
            logger.debug("mini tokenizer: the prompt is ignored (no in-context conditioning)")
        frames = self.codes_to_mel(codes)
        t = frames.shape[1]
        audio = self.vocoder.decode(codebook_to_mel(frames))[:, : t * MEL_HOP_25HZ].sum(dim=0)
        if audio.shape[0] < t * MEL_HOP_25HZ:
            audio = torch.nn.functional.pad(audio, (0, t * MEL_HOP_25HZ - audio.shape[0]))
        out = resample(audio.float().cpu().numpy(), MEL_SAMPLE_RATE, SAMPLE_RATE)
        n = t * HOP_SAMPLES
        out = np.pad(out[:n], (0, max(0, n - out.shape[0])))
        return torch.from_numpy(out).unsqueeze(0).expand(2, -1).contiguous()
