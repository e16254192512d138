"""LeLM's training objective: cross-entropy per stream through the delay pattern.

For a batch of :mod:`songgeneration.training.data`:

1. **Condition dropout** (training only), per song, with the rates of the checkpoint's
   ``config.yaml``: ``attribute_dropout.<group>.<conditioner>`` drops one condition
   (``description`` = the lyrics, ``type_info`` = the style text, ``prompt_audio`` = the prompt),
   and ``classifier_free_guidance.training_dropout`` drops all of them at once, which is what
   generation's unconditional branch sees. A dropped text is the ``<|im_start|>`` prefix alone, a
   dropped prompt is all special (absent).
2. **Conditions** go through the model's condition provider with gradients on, so the lyric,
   structure, description and prompt tables train with the decoders. The prompt rows are EOT, then
   EOS, then the ``prompt_len x 25`` frames (250 for 10 s): ``max_len`` (252) rows in all.
3. **Targets**: the codes ``[B, 3, T + 1]`` with EOS at each song's true end and the special id
   after it. The delay pattern is built, both decoders run teacher-forced, the logits are reverted
   to the codes' frames; the positions holding the special id (after EOS, and the pattern's empty
   cells) are ignored, EOS is counted.
4. **Loss**: the mean cross-entropy over the counted positions of all three streams (every stream
   counts the same positions, so it is also the mean of the three per-stream means). Padding adds
   nothing: a padded batch gives the frame-weighted mean of its songs' losses.

Metrics (a :class:`~shirabe.train.metrics.MetricsTracker`): ``frames`` (counted positions, all
streams), ``utterances`` (songs), ``loss``, and per stream ``loss_<s>``, ``acc1_<s>``,
``acc10_<s>`` (top-1/top-10 accuracy over the same positions, EOS included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shirabe.cli import InputError
from shirabe.train.lora import base_model
from shirabe.train.metrics import MetricsTracker
from songgeneration.models.config import LeLMConfig
from songgeneration.models.text_tokenizer import QWEN_PAD_ID

IM_START_ID = QWEN_PAD_ID + 1
STREAMS = ("mixed", "vocal", "accompaniment")


@dataclass
class DropoutRates:
    """Per-song probabilities: all conditions (CFG), the lyrics, the description, the prompt."""

    cfg: float = 0.0
    lyric: float = 0.0
    description: float = 0.0
    prompt: float = 0.0


def dropout_rates(config: LeLMConfig) -> DropoutRates:
    """The rates of a LeLM config (``attribute_dropout`` and ``classifier_free_guidance.training_dropout``)."""
    flat: dict[str, float] = {}
    for group in config.attribute_dropout.values():
        flat.update(group)
    names = {config.lyric.name: "lyric", config.description.name: "description", config.prompt_name: "prompt"}
    unknown = sorted(set(flat) - set(names))
    if unknown:
        raise InputError(f"{config.source}: field 'attribute_dropout' names {unknown[0]!r}, which is not one of "
                         f"the conditioners ({', '.join(names)})")
    rates = DropoutRates(cfg=float(config.cfg_dropout))
    for name, attr in names.items():
        setattr(rates, attr, float(flat.get(name, 0.0)))
    for attr in ("cfg", "lyric", "description", "prompt"):
        if not 0.0 <= getattr(rates, attr) <= 1.0:
            raise InputError(f"{config.source}: dropout rate of {attr} must lie in [0, 1], got {getattr(rates, attr)}")
    return rates


def null_text_ids(rows: int, max_len: int) -> torch.Tensor:
    out = torch.full((rows, max_len), QWEN_PAD_ID, dtype=torch.long)
    out[:, 0] = IM_START_ID
    return out


def apply_dropout(batch: dict, rates: DropoutRates, special: int, generator: torch.Generator | None = None) -> dict:
    """A copy of ``batch`` with dropped conditions replaced by their null forms."""
    lyric, desc, prompt = batch["lyric_ids"].clone(), batch["desc_ids"].clone(), batch["prompt"].clone()
    b = lyric.shape[0]
    draw = torch.rand(b, 4, generator=generator)
    drop_all = draw[:, 0] < rates.cfg
    drop_lyric = drop_all | (draw[:, 1] < rates.lyric)
    drop_desc = drop_all | (draw[:, 2] < rates.description)
    drop_prompt = drop_all | (draw[:, 3] < rates.prompt)
    lyric[drop_lyric] = null_text_ids(int(drop_lyric.sum()), lyric.shape[1])
    desc[drop_desc] = null_text_ids(int(drop_desc.sum()), desc.shape[1])
    prompt[drop_prompt] = special
    return {**batch, "lyric_ids": lyric, "desc_ids": desc, "prompt": prompt,
            "dropped": {"all": drop_all, "lyric": drop_lyric, "description": drop_desc, "prompt": drop_prompt}}


def stream_losses(logits: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sums over the kept positions per stream: cross-entropy, top-1 and top-10 hits, count."""
    card = logits.shape[-1]
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    ce = F.cross_entropy(logits.float().reshape(-1, card), safe.reshape(-1), reduction="none").view(targets.shape)
    ce = ce * keep
    with torch.no_grad():
        top = logits.detach().topk(min(10, card), dim=-1).indices
        hit1 = (top[..., 0] == targets) & keep
        hit10 = (top == targets.unsqueeze(-1)).any(-1) & keep
    dims = (0, 2)
    return {"ce": ce.sum(dims), "hit1": hit1.sum(dims), "hit10": hit10.sum(dims), "count": keep.sum(dims)}


def forward_logits(model, batch: dict, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced logits ``[B, K, T + 1, card]``, targets and the counted-position mask."""
    lm = base_model(model)
    special = lm.config.special_id
    codes = batch["codes"].to(device)
    cond = lm.conditions_from_ids(batch["lyric_ids"], batch["desc_ids"], batch["prompt"]).to(device)
    seq = lm.pattern.build(codes)
    logits = model(seq, cond)
    out, valid = lm.pattern.revert_logits(logits, codes.shape[-1])
    keep = valid & (codes != special)
    return out, codes, keep


def compute_loss(model, batch: dict, is_training: bool, *, device, rates: DropoutRates | None = None
                 ) -> tuple[torch.Tensor, MetricsTracker]:
    """``(loss, metrics)`` for :class:`shirabe.train.loop.Trainer` (see the module docstring)."""
    lm = base_model(model)
    if is_training and rates is not None:
        batch = apply_dropout(batch, rates, lm.config.special_id)
    logits, targets, keep = forward_logits(model, batch, device)
    parts = stream_losses(logits, targets, keep)
    count = parts["count"].sum()
    loss = parts["ce"].sum() / count.clamp(min=1)
    frames = float(count)
    metrics = MetricsTracker({"frames": frames, "utterances": float(targets.shape[0]),
                              "loss": float(loss.detach()) * frames})
    for q, name in enumerate(STREAMS[:targets.shape[1]]):
        n = float(parts["count"][q])
        if n > 0:  # weighted so that averages() (a division by frames) gives the per-stream mean
            scale = frames / n
            metrics[f"loss_{name}"] = float(parts["ce"][q].detach()) * scale
            metrics[f"acc1_{name}"] = float(parts["hit1"][q]) * scale
            metrics[f"acc10_{name}"] = float(parts["hit10"][q]) * scale
    return loss, metrics
