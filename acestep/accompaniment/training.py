"""Vocal → accompaniment training: cached pairs, the model trained, and the loss of both modes.

**Data.** ``TrainingConfig.dataset_path`` holds two latent caches written by
``acestep.bin.cache_latents --target audio``: ``vocal/`` (the vocals) and ``target/`` (the
accompaniments or mixes), one cut per song key. :func:`load_pairs` pairs them by key (a key on one
side only is skipped and logged); the two latents of a key must have the same length (one frame of
difference is cut off the longer, more is a skipped key). The conditions (prompt states, lyric ids)
come from the target cache. :class:`PairSampler` (a step sampler for
:class:`shirabe.train.loop.Trainer`) makes batches of ``batch_size`` pairs, shuffled per epoch,
each cut to ``max_duration`` (a random window, the same for vocal and target) and with one of the
cache's tag orders, all drawn from ``(seed, epoch, position)`` so a resumed run draws the same.

**Model.** :class:`AccompanimentModel` holds the (peft LoRA-wrapped) transformer and, in controlnet
mode, the fully trained :class:`~acestep.accompaniment.controlnet.ControlEncoder`; its ``forward``
is one denoiser call, so DDP sees every trained parameter. Checkpoints hold only the trainable
tensors (:func:`shirabe.train.adapters.trainable_state_dict`).

**Loss** (:func:`compute_loss`; random draws from the global CPU generator in this order: the
released condition dropouts (text 0.15, speaker 0.5, lyrics 0.15 per song,
:func:`acestep.training.loss.apply_dropouts`), in controlnet mode the control dropout, the noise,
the logit-normal timestep draw with the config's ``shift``):

- image2image: ``x_src = s·vocal + (1 − s)·noise``, ``x_t = σ·x_src + (1 − σ)·x0``, the network's
  velocity v, ``x0_hat = x_t − σ·v`` (:mod:`acestep.accompaniment.flow`);
- controlnet: ``x_t = σ·noise + (1 − σ)·x0`` as the released objective, with the control encoder's
  residuals of the vocal latents at the same timestep, times ``controlnet_scale``, added to the
  ``injection_layers``; ``x0_hat = x_t − σ·v``. With ``control_dropout`` > 0 a song's residuals are
  zeroed with that probability (the default is 0: generation adds the residuals in the
  conditional and the unconditional pass alike, so the model never runs without them);

then the released masked MSE between x0_hat and x0 (:func:`acestep.models.objective.denoising_loss`)
plus ``structure_loss_weight`` × :func:`acestep.accompaniment.losses.structure_loss` (x0_hat, x0,
vocal, mask) when the weight is above 0. Validation (``is_training=False``) drops nothing and draws
noise and timesteps from a generator seeded by the batch's keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from acestep.accompaniment.controlnet import ControlEncoder
from acestep.accompaniment.flow import path_point, source_latents
from acestep.accompaniment.losses import structure_loss
from acestep.models.objective import denoising_loss, noisy_latents, x0_from_velocity
from acestep.schedule import training_draw
from acestep.training.data import Song, collate, load_example, load_songs
from acestep.training.loss import (
    LYRICS_DROPOUT,
    SPEAKER_DROPOUT,
    TEXT_DROPOUT,
    apply_dropouts,
    batch_generator,
    keep_mask,
)
from shirabe.cli import InputError
from shirabe.train.metrics import MetricsTracker

logger = logging.getLogger(__name__)

VOCAL_DIR = "vocal"
TARGET_DIR = "target"
#: latent frames per second of audio (44.1 kHz / 4096 samples per frame)
FRAMES_PER_SECOND = 44100 / 4096
#: width of one attention head of the control encoder (its head count follows from its width)
CONTROL_HEAD_DIM = 128


# -- data ----------------------------------------------------------------------------------------


@dataclass
class Pair:
    key: str
    vocal: Song
    target: Song
    frames: int  # common length in latent frames


@dataclass
class PairSet:
    pairs: list[Pair]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)


def load_pairs(dataset_path: str | Path) -> PairSet:
    """The pairs of ``dataset_path/{vocal,target}`` (see the module docstring); one-line errors for a
    missing cache or no usable pair."""
    root = Path(dataset_path)
    for side in (VOCAL_DIR, TARGET_DIR):
        if not (root / side).is_dir():
            raise InputError(f"{root / side}: no latent cache folder (dataset_path must hold {VOCAL_DIR}/ and "
                             f"{TARGET_DIR}/, each written by acestep.bin.cache_latents)")
    vocals = {s.id: s for s in load_songs(root / VOCAL_DIR)}
    targets = {s.id: s for s in load_songs(root / TARGET_DIR)}
    pairs, skipped = [], []
    for key in sorted(set(vocals) | set(targets)):
        if key not in vocals or key not in targets:
            side = VOCAL_DIR if key not in vocals else TARGET_DIR
            skipped.append((key, f"not in {root / side}"))
            continue
        v, t = vocals[key].frames, targets[key].frames
        if abs(v - t) > 1:
            skipped.append((key, f"vocal has {v} latent frames, target {t}"))
            continue
        pairs.append(Pair(key, vocals[key], targets[key], min(v, t)))
    for key, reason in skipped:
        logger.warning("skipped pair %s: %s", key, reason)
    if not pairs:
        raise InputError(f"{root}: no complete vocal/target pair ({len(skipped)} key(s) skipped)")
    return PairSet(pairs, skipped)


def max_frames(max_duration: float) -> int:
    """Latent frames of ``max_duration`` seconds (at least 1)."""
    return max(1, int(max_duration * FRAMES_PER_SECOND))


def load_vocal(song: Song, start: int, frames: int) -> np.ndarray:
    return np.asarray(song.cut.load_custom("latent"), dtype=np.float32)[..., start:start + frames]


def pair_batch(pairs: list[Pair], windows: list[tuple[int, int, int]]) -> dict:
    """The core's collated batch of the targets (with their conditions) plus ``vocal_latents`` [B, 8, 16, T];
    ``windows`` holds (tag order, start, frames) per pair."""
    batch = collate([load_example(p.target, order, start, n) for p, (order, start, n) in zip(pairs, windows)])
    vocal = torch.zeros_like(batch["latents"])
    for i, (p, (_, start, n)) in enumerate(zip(pairs, windows)):
        vocal[i, ..., :n] = torch.from_numpy(load_vocal(p.vocal, start, n))
    batch["vocal_latents"] = vocal
    return batch


class PairSampler:
    """Step sampler of pair batches (see the module docstring); state ``(epoch, position)``."""

    def __init__(self, pairs: list[Pair], batch_size: int = 1, crop_frames: int = 0, seed: int = 0):
        if not pairs:
            raise InputError("no training pairs")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.pairs, self.batch_size, self.crop_frames, self.seed = pairs, int(batch_size), int(crop_frames), seed
        self.epoch, self.position = 0, 0
        self._plan = self._make_plan(0)

    def _make_plan(self, epoch: int) -> list[list[int]]:
        order = [int(i) for i in np.random.default_rng([self.seed, epoch]).permutation(len(self.pairs))]
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __len__(self) -> int:
        return len(self._plan)

    def length(self, pair: Pair) -> int:
        return min(pair.frames, self.crop_frames) if self.crop_frames > 0 else pair.frames

    def batch(self) -> dict:
        if self.position >= len(self._plan):
            self.epoch, self.position = self.epoch + 1, 0
            self._plan = self._make_plan(self.epoch)
        rng = np.random.default_rng([self.seed, self.epoch, self.position, 1])
        chosen = [self.pairs[i] for i in self._plan[self.position]]
        windows = []
        for p in chosen:
            n = self.length(p)
            windows.append((int(rng.integers(p.target.num_orders)), int(rng.integers(p.frames - n + 1)), n))
        self.position += 1
        return pair_batch(chosen, windows)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._plan = self._make_plan(self.epoch)


def fixed_batches(pairs: list[Pair], batch_size: int = 1, crop_frames: int = 0) -> list[dict]:
    """Validation batches: the pairs in key order, the first tag order, the first ``crop_frames`` frames."""
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        out.append(pair_batch(chunk, [(0, 0, min(p.frames, crop_frames) if crop_frames > 0 else p.frames)
                                      for p in chunk]))
    return out


# -- model ---------------------------------------------------------------------------------------


def control_heads(dim: int) -> int:
    """Attention heads of a control encoder of width ``dim``: the largest divisor of ``dim`` that is at most
    ``dim // 128`` (12 for the default 1536; 1 below 256)."""
    top = max(1, dim // CONTROL_HEAD_DIM)
    return next(h for h in range(top, 0, -1) if dim % h == 0)


def build_control_encoder(config, width: int) -> ControlEncoder:
    acc = config.accompaniment
    return ControlEncoder(width, acc.injection_layers, dim=acc.control_encoder_dim, depth=acc.control_encoder_depth,
                          heads=control_heads(acc.control_encoder_dim))


class AccompanimentModel(nn.Module):
    """The transformer (LoRA-wrapped) and, in controlnet mode, the control encoder; ``forward`` = one denoiser call."""

    def __init__(self, transformer: nn.Module, control_encoder: ControlEncoder | None = None,
                 controlnet_scale: float = 1.0):
        super().__init__()
        self.transformer = transformer
        self.control_encoder = control_encoder
        self.controlnet_scale = float(controlnet_scale)

    def forward(self, x_t: torch.Tensor, batch: dict, timestep: torch.Tensor, mask: torch.Tensor,
                vocal: torch.Tensor | None = None, control_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted velocity; ``vocal`` (and per-song ``control_keep``) feed the control encoder."""
        device = x_t.device
        residuals = None
        if self.control_encoder is not None:
            residuals = self.control_encoder(vocal, timestep, mask, self.controlnet_scale)
            if control_keep is not None:
                residuals = {i: r * control_keep[:, None, None].to(r.dtype) for i, r in residuals.items()}
        out = self.transformer(hidden_states=x_t, attention_mask=mask,
                               encoder_text_hidden_states=batch["text_hidden"].to(device),
                               text_attention_mask=batch["text_mask"].to(device),
                               speaker_embeds=batch["speaker"].to(device),
                               lyric_token_idx=batch["lyric_ids"].to(device), lyric_mask=batch["lyric_mask"].to(device),
                               timestep=timestep, block_residuals=residuals)
        return out.sample


# -- loss ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossSettings:
    mode: str = "image2image"
    reference_strength: float = 0.5
    structure_loss_weight: float = 0.0
    shift: float = 3.0
    control_dropout: float = 0.0
    text_dropout: float = TEXT_DROPOUT
    speaker_dropout: float = SPEAKER_DROPOUT
    lyrics_dropout: float = LYRICS_DROPOUT

    @classmethod
    def from_config(cls, config, **overrides) -> LossSettings:
        acc = config.accompaniment
        return cls(mode=acc.mode, reference_strength=acc.reference_strength,
                   structure_loss_weight=config.structure_loss_weight, shift=config.shift, **overrides)


def compute_loss(model, batch: dict, is_training: bool, *, device: torch.device, settings: LossSettings):
    """``(loss, metrics)`` for :class:`shirabe.train.loop.Trainer`; the loss is a mean over songs, so
    ``frames`` counts songs (see the module docstring)."""
    generator = None
    control_keep = None
    if is_training:
        batch = apply_dropouts(batch, settings.text_dropout, settings.speaker_dropout, settings.lyrics_dropout)
    else:
        generator = batch_generator(batch["ids"])
    x0 = batch["latents"]
    b = x0.shape[0]
    if settings.mode == "controlnet" and is_training and settings.control_dropout > 0:
        control_keep = keep_mask(b, settings.control_dropout).to(device)
    noise = torch.randn(x0.shape, generator=generator)
    u = torch.randn(b, generator=generator)
    _, timestep, sigma = training_draw(u, shift=settings.shift)
    x0, noise, sigma, timestep = x0.to(device), noise.to(device), sigma.to(device), timestep.to(device)
    vocal = batch["vocal_latents"].to(device)
    mask = batch["attention_mask"].to(device)
    if settings.mode == "image2image":
        x_t = path_point(x0, source_latents(vocal, noise, settings.reference_strength), sigma)
    else:
        x_t = noisy_latents(x0, noise, sigma)
    with torch.set_grad_enabled(is_training):
        v = model(x_t, batch, timestep, mask, vocal=vocal if settings.mode == "controlnet" else None,
                  control_keep=control_keep)
        x0_hat = x0_from_velocity(v.float(), x_t, sigma)
        denoising = denoising_loss(x0_hat, x0, mask)
        loss = denoising
        structure = None
        if settings.structure_loss_weight > 0:
            structure = structure_loss(x0_hat, x0, vocal, mask)
            loss = denoising + settings.structure_loss_weight * structure
    values = {"loss": float(loss.detach()) * b, "denoising_loss": float(denoising.detach()) * b}
    if structure is not None:
        values["structure_loss"] = float(structure.detach()) * b
    metrics = MetricsTracker(**values, latent_frames=float(mask.sum()), frames=float(b), utterances=b)
    return loss, metrics
