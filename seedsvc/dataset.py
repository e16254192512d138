"""Training batches from SeedSVC cuts: random crops with a prompt prefix.

:class:`SegmentSampler` keeps the cuts' arrays in memory once loaded and draws
batches of random windows of ``segment_frames`` mel frames (whole utterances
when shorter), each with a prompt of ``U(prompt_min, prompt_max)`` of its
length: the prompt frames are given to the model as ``prompt_x`` and excluded
from the loss, as in Seed-VC V2's training.
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
                 prompt_max: float = 0.5, seed: int = 0, need=("mel", "f0", "style", "content")):
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
        items = []
        for i in idx:
            a = self.arrays(int(i))
            t = a["mel"].shape[0]
            n = min(t, self.segment_frames)
            start = int(self.rng.integers(0, t - n + 1))
            items.append({k: (v[start : start + n] if k != "style" else v) for k, v in a.items()})
        lens = [it["mel"].shape[0] for it in items]
        t_max, b = max(lens), len(items)
        out = {"x_lens": torch.tensor(lens)}
        out["mel"] = torch.full((b, items[0]["mel"].shape[1], t_max), -10.0)
        if "f0" in self.need:
            out["f0"] = torch.zeros(b, t_max)
        if "style" in self.need:
            out["style"] = torch.from_numpy(np.stack([it["style"] for it in items])).float()
        if "content" in self.need:
            out["content"] = torch.zeros(b, t_max, items[0]["content"].shape[1])
        if "phone_ids" in self.need:
            out["phone_ids"] = torch.full((b, t_max), -100, dtype=torch.long)
        prompt = []
        for j, it in enumerate(items):
            n = lens[j]
            out["mel"][j, :, :n] = torch.from_numpy(it["mel"]).t()
            if "f0" in out:
                out["f0"][j, :n] = torch.from_numpy(it["f0"].astype(np.float32))
            if "content" in out:
                out["content"][j, :n] = torch.from_numpy(it["content"].astype(np.float32))
            if "phone_ids" in out:
                out["phone_ids"][j, :n] = torch.from_numpy(it["phone_ids"].astype(np.int64))
            frac = self.rng.uniform(self.prompt_min, self.prompt_max)
            prompt.append(min(int(frac * n), n - 1))
        out["prompt_lens"] = torch.tensor(prompt)
        return out
