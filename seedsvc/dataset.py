"""Training batches from SeedSVC cuts: random crops with a prompt prefix.

:class:`SegmentSampler` keeps the cuts' arrays in memory once loaded and draws
batches of random windows of ``segment_frames`` mel frames (whole utterances
when shorter), each with a prompt of ``U(prompt_min, prompt_max)`` of its
length: the prompt frames are given to the model as ``prompt_x`` and excluded
from the loss, as in Seed-VC V2's training.

With ``cross_prompt_prob`` > 0, that share of the windows takes its prompt from
*another* cut of the same speaker (e.g. a re-pitched copy, see
``seedsvc.bin.compute_features --pitch-shifts``): the prompt frames (and the style
vector) come from that cut, the rest from the drawn one. The model then learns to
follow the content and F0 of the frames it generates rather than copy the
register of its prompt.
"""

from __future__ import annotations

import numpy as np
import torch
from lhotse import CutSet

from shirabe.cli import InputError


def load_cut_arrays(cut, need=("mel", "f0", "style", "content")) -> dict[str, np.ndarray]:
    out = {}
    for key in need:
        if not cut.has_custom(key):
            raise InputError(f"cut {cut.id} has no '{key}' array (run the feature stages first)")
        out[key] = np.asarray(cut.load_custom(key))
    t = out["mel"].shape[0]
    for key in ("f0", "content", "phone_ids"):
        if key in out and out[key].shape[0] != t:
            raise InputError(f"cut {cut.id}: '{key}' has {out[key].shape[0]} frames, mel has {t}")
    return out


class SegmentSampler:
    def __init__(self, cuts: CutSet, segment_frames: int = 400, batch_size: int = 8, prompt_min: float = 0.1,
                 prompt_max: float = 0.5, seed: int = 0, need=("mel", "f0", "style", "content"),
                 cross_prompt_prob: float = 0.0):
        self.cuts = list(cuts)
        if not self.cuts:
            raise InputError("no training cuts")
        self.segment_frames, self.batch_size = segment_frames, batch_size
        self.prompt_min, self.prompt_max = prompt_min, prompt_max
        self.need = need
        self.rng = np.random.default_rng(seed)
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        weights = np.array([c.duration for c in self.cuts], dtype=np.float64)
        self.weights = weights / weights.sum()
        if not 0.0 <= cross_prompt_prob <= 1.0:
            raise InputError(f"cross_prompt_prob must be within [0, 1], got {cross_prompt_prob}")
        self.cross_prompt_prob = cross_prompt_prob
        by_speaker: dict[str, list[int]] = {}
        for i, cut in enumerate(self.cuts):
            by_speaker.setdefault(cut.supervisions[0].speaker if cut.supervisions else cut.id, []).append(i)
        self.group_of: dict[int, list[int]] = {}  # cut index -> the indices of its speaker's cuts
        self.position: dict[int, int] = {}  # cut index -> its place in that list
        for group in by_speaker.values():
            for pos, i in enumerate(group):
                self.group_of[i], self.position[i] = group, pos

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        cut = self.cuts[i]
        if cut.id not in self._cache:
            self._cache[cut.id] = load_cut_arrays(cut, self.need)
        return self._cache[cut.id]

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def batch(self) -> dict[str, torch.Tensor]:
        idx = self.rng.choice(len(self.cuts), size=self.batch_size, p=self.weights)
        items, prompt = [], []
        for i in idx:
            frac = self.rng.uniform(self.prompt_min, self.prompt_max)
            group = self.group_of[int(i)]
            if len(group) > 1 and self.cross_prompt_prob and self.rng.random() < self.cross_prompt_prob:
                r = int(self.rng.integers(len(group) - 1))  # another cut of the speaker, uniformly
                b = self.arrays(group[r + (r >= self.position[int(i)])])
                k = min(max(1, int(frac * self.segment_frames)), b["mel"].shape[0], self.segment_frames - 1)
                head = self._crop(b, k)
                tail = self._crop(self.arrays(int(i)), self.segment_frames - k)
                items.append({key: (np.concatenate([head[key], tail[key]]) if key != "style" else head[key])
                              for key in head})
                prompt.append(k)
            else:
                item = self._crop(self.arrays(int(i)), self.segment_frames)
                n = item["mel"].shape[0]
                items.append(item)
                prompt.append(min(int(frac * n), n - 1))
        lens = [it["mel"].shape[0] for it in items]
        t_max, b = max(lens), len(items)
        out = {"x_lens": torch.tensor(lens)}
        out["mel"] = torch.full((b, items[0]["mel"].shape[1], t_max), -10.0)
        if "f0" in self.need:
            out["f0"] = torch.zeros(b, t_max)
        if "style" in self.need:
            out["style"] = torch.from_numpy(np.stack([it["style"] for it in items])).float()
        if "content" in self.need:
            c0 = items[0]["content"]  # (T,) int token ids, padded with 0, or (T, D) float features
            out["content"] = (torch.zeros(b, t_max, dtype=torch.long) if np.issubdtype(c0.dtype, np.integer)
                              else torch.zeros(b, t_max, c0.shape[1]))
        if "phone_ids" in self.need:
            out["phone_ids"] = torch.full((b, t_max), -100, dtype=torch.long)
        for j, it in enumerate(items):
            n = lens[j]
            out["mel"][j, :, :n] = torch.from_numpy(it["mel"]).t()
            if "f0" in out:
                out["f0"][j, :n] = torch.from_numpy(it["f0"].astype(np.float32))
            if "content" in out:
                out["content"][j, :n] = torch.from_numpy(it["content"]).to(out["content"].dtype)
            if "phone_ids" in out:
                out["phone_ids"][j, :n] = torch.from_numpy(it["phone_ids"].astype(np.int64))
        out["prompt_lens"] = torch.tensor(prompt)
        return out

    def _crop(self, a: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
        """A random window of at most ``frames`` frames of one cut's arrays."""
        t = a["mel"].shape[0]
        n = min(t, frames)
        start = int(self.rng.integers(0, t - n + 1))
        return {k: (v[start : start + n] if k != "style" else v) for k, v in a.items()}
