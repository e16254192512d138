"""Training examples and token-budgeted batches for SongBloom.

An example is one song of the feature cuts (``songbloom.bin.extract_features``):
its VAE latents (D, T), sketch ids (T,), the style prompt's latents and its
lyric symbols (the supervision's ``phonemes``), tokenised with
:func:`songbloom.g2p.tokenize` (an unknown symbol is an error naming the cut).
T is cut to a whole number of patches and to ``max_frames``.

**Batches are budgeted by sequence tokens, not by songs.** The LM sees, per song,
the fixed prefix (prompt rows + lyric rows + BOS) and ``P + 1`` tokens per patch
of ``P`` frames, so a song of T frames costs ``prefix + T / P · (P + 1)`` positions,
and a padded batch costs its size times its longest song. :class:`TokenBudgetSampler`
packs songs of similar length (sorted within shuffled pools) into batches whose
padded cost stays within ``max_tokens``, so memory per step is predictable
whatever the song lengths. It is a step-based sampler for
:class:`shirabe.train.loop.Trainer`: its state (epoch and position) is stored in
every checkpoint and a resumed run draws the same batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from lhotse import CutSet

from shirabe.cli import InputError
from songbloom.g2p import LyricError, LyricTokens, Vocab, tokenize

logger = logging.getLogger(__name__)


@dataclass
class SongExample:
    id: str
    latent: np.ndarray  # (D, T) float32
    sketch: np.ndarray  # (T,) int64
    prompt: np.ndarray | None  # (D, Tp) float32
    lyrics: LyricTokens

    @property
    def frames(self) -> int:
        return self.latent.shape[1]


def sequence_tokens(frames: int, block_size: int, prefix: int) -> int:
    """LM positions of one song: the prefix plus ``block_size + 1`` per patch."""
    return prefix + frames // block_size * (block_size + 1)


def load_examples(cuts: CutSet, vocab: Vocab, block_size: int, max_frames: int, max_sentences: int,
                  num_pitch: int, allow_unknown: bool = False) -> list[SongExample]:
    """Examples of every cut that has latents, sketch ids and lyric symbols; bad ones are errors."""
    out = []
    cut_long = 0
    for cut in cuts:
        for key in ("latent", "sketch"):
            if not cut.has_custom(key):
                raise InputError(f"cut {cut.id} has no '{key}' array (run songbloom.bin.extract_features with "
                                 "--codebook first)")
        sup = cut.supervisions[0] if cut.supervisions else None
        symbols = (sup.custom or {}).get("phonemes") if sup is not None else None
        if not symbols:
            raise InputError(f"cut {cut.id} has no lyric symbols (supervision custom 'phonemes')")
        try:
            lyrics = tokenize(symbols, vocab, max_sentences=max_sentences, allow_unknown=allow_unknown,
                              where=f"cut {cut.id}")
        except LyricError as e:
            raise InputError(str(e)) from None
        latent = np.asarray(cut.load_custom("latent"), dtype=np.float32)
        sketch = np.asarray(cut.load_custom("sketch"), dtype=np.int64)
        if sketch.shape[0] != latent.shape[1]:
            raise InputError(f"cut {cut.id}: {sketch.shape[0]} sketch ids for {latent.shape[1]} latent frames")
        if sketch.size and (sketch.min() < 0 or sketch.max() >= num_pitch):
            raise InputError(f"cut {cut.id}: sketch ids must lie in 0..{num_pitch - 1} (the model's num_pitch); "
                             f"got {sketch.min()}..{sketch.max()}: was the codebook larger than the model?")
        frames = min(latent.shape[1], max_frames) // block_size * block_size
        if frames < latent.shape[1] // block_size * block_size:
            cut_long += 1
        if frames == 0:
            logger.warning("skipping %s: shorter than one patch (%d frames)", cut.id, latent.shape[1])
            continue
        prompt = np.asarray(cut.load_custom("prompt_latent"), dtype=np.float32) if cut.has_custom("prompt_latent") \
            else None
        out.append(SongExample(cut.id, latent[:, :frames], sketch[:frames], prompt, lyrics))
    if cut_long:
        logger.warning("%d songs longer than %d frames were cut to that length (their lyrics were not)", cut_long,
                       max_frames)
    if not out:
        raise InputError("no training songs")
    return out


def collate(examples: list[SongExample], eos: int) -> dict:
    """Pad a list of examples into model inputs (sketch ids padded with ``eos``, as upstream)."""
    b = len(examples)
    t = max(e.frames for e in examples)
    d = examples[0].latent.shape[0]
    x_sketch = torch.full((b, t), eos, dtype=torch.long)
    x_latent = torch.zeros(b, d, t)
    for i, e in enumerate(examples):
        x_sketch[i, :e.frames] = torch.from_numpy(e.sketch)
        x_latent[i, :, :e.frames] = torch.from_numpy(e.latent)
    prompts = [e.prompt for e in examples]
    prompt_latents = prompt_lens = None
    if all(p is not None for p in prompts):
        tp = max(p.shape[1] for p in prompts)
        prompt_latents = torch.zeros(b, d, tp)
        for i, p in enumerate(prompts):
            prompt_latents[i, :, :p.shape[1]] = torch.from_numpy(p)
        prompt_lens = torch.tensor([p.shape[1] for p in prompts])
    return {"ids": [e.id for e in examples], "x_sketch": x_sketch, "x_latent": x_latent,
            "x_len": torch.tensor([e.frames for e in examples]), "lyrics": [e.lyrics for e in examples],
            "prompt_latents": prompt_latents, "prompt_lens": prompt_lens}


class TokenBudgetSampler:
    """Batches of songs whose padded LM length (see the module docstring) stays within ``max_tokens``.

    Each epoch shuffles the songs (seeded by ``seed`` and the epoch), sorts pools of
    ``pool_size`` songs by length, packs them greedily and shuffles the batches. A song
    longer than the budget on its own forms a batch by itself (logged once).
    """

    def __init__(self, examples: list[SongExample], max_tokens: int, block_size: int, prefix: int, eos: int,
                 seed: int = 0, pool_size: int = 100):
        if not examples:
            raise InputError("no training songs")
        self.examples, self.max_tokens = examples, max_tokens
        self.cost = [sequence_tokens(e.frames, block_size, prefix) for e in examples]
        self.eos, self.seed, self.pool_size = eos, seed, pool_size
        self.epoch, self.position = 0, 0
        self._plan = self._make_plan(self.epoch)
        over = sum(c > max_tokens for c in self.cost)
        if over:
            logger.warning("%d songs need more than --max-tokens %d positions on their own; each is a batch of one",
                           over, max_tokens)

    def _make_plan(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.examples))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = sorted(order[start:start + self.pool_size], key=lambda i: self.cost[i])
            current: list[int] = []
            for i in pool:
                longest = max([self.cost[j] for j in current] + [self.cost[i]])
                if current and longest * (len(current) + 1) > self.max_tokens:
                    batches.append(current)
                    current = []
                current.append(int(i))
            if current:
                batches.append(current)
        return [batches[k] for k in rng.permutation(len(batches))]

    def __len__(self) -> int:
        return len(self._plan)

    def batch(self) -> dict:
        if self.position >= len(self._plan):
            self.epoch += 1
            self.position = 0
            self._plan = self._make_plan(self.epoch)
        idx = self._plan[self.position]
        self.position += 1
        return collate([self.examples[i] for i in idx], self.eos)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._plan = self._make_plan(self.epoch)


def fixed_batches(examples: list[SongExample], max_tokens: int, block_size: int, prefix: int, eos: int) -> list[dict]:
    """Validation batches: every song once, in order, packed by the same budget."""
    sampler = TokenBudgetSampler(examples, max_tokens, block_size, prefix, eos, pool_size=len(examples))
    order = sorted(range(len(examples)), key=lambda i: (sampler.cost[i], examples[i].id))
    batches, current = [], []
    for i in order:
        longest = max([sampler.cost[j] for j in current] + [sampler.cost[i]])
        if current and longest * (len(current) + 1) > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return [collate([examples[i] for i in b], eos) for b in batches]
