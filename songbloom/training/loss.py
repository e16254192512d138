"""SongBloom's training loss: cross-entropy over sketch ids plus λ times the DiT's flow-matching MSE.

``loss = CE(ar_logit, ar_target; ignore the special id) + λ · MSE(nar_pred, nar_target)``
with λ = 0.1 (the paper's weight). The DiT's gradients reach the LM through
the hidden vector h it is conditioned on, so one backward trains both. The
normaliser is the number of sketch targets (frames + one EOS per song);
the flow term is a mean over the batch's patches.

In training, the condition dropouts run first (all conditions nulled with
``cfg_dropout``, the prompt alone with ``attribute_dropout.wav.prompt_wav``),
and the model draws its own t (logit-normal), noise and h/sketch dropouts. In
validation (``is_training=False``) all of these come from a generator seeded by
the batch's song ids, so a dev loss is a deterministic function of the weights.
"""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F

from shirabe.train.metrics import MetricsTracker

FLOW_WEIGHT = 0.1


def batch_generator(ids: list[str]) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32("\n".join(ids).encode()))


def sketch_loss(ar_logit: torch.Tensor, ar_target: torch.Tensor, ignore_id: int) -> tuple[torch.Tensor, int, int]:
    """(summed CE, number of targets, number predicted right)."""
    logits = ar_logit.float().reshape(-1, ar_logit.shape[-1])
    target = ar_target.reshape(-1)
    keep = target != ignore_id
    ce = F.cross_entropy(logits, target, ignore_index=ignore_id, reduction="sum")
    right = int((logits.argmax(-1)[keep] == target[keep]).sum())
    return ce, int(keep.sum()), right


def compute_loss(model, batch: dict, is_training: bool, *, config, device: torch.device,
                 flow_weight: float = FLOW_WEIGHT):
    """The loss of a batch (see the module docstring) and its metrics (normaliser: sketch targets)."""
    from songbloom.models import LyricBatch, apply_condition_dropout

    m = config.model
    inputs = {"lyrics": LyricBatch.from_tokens(batch["lyrics"], m.lyric_max_len),
              "prompt_latents": batch["prompt_latents"], "prompt_lens": batch["prompt_lens"]}
    generator = None
    if is_training:
        inputs = apply_condition_dropout(inputs, m)
    else:
        generator = batch_generator(batch["ids"])
    prompt = inputs["prompt_latents"]
    with torch.set_grad_enabled(is_training):
        out = model(batch["x_sketch"].to(device), batch["x_latent"].to(device), batch["x_len"].to(device),
                    inputs["lyrics"].to(device), None if prompt is None else prompt.to(device),
                    None if inputs["prompt_lens"] is None else inputs["prompt_lens"].to(device),
                    generator=generator)
        ce_sum, n, right = sketch_loss(out.ar_logit, out.ar_target.to(out.ar_logit.device), m.ignore_id)
        flow = F.mse_loss(out.nar_pred.float(), out.nar_target.float())
        loss = ce_sum / max(n, 1) + flow_weight * flow
    metrics = MetricsTracker(loss=float(loss.detach()) * n, ce=float(ce_sum.detach()), flow=float(flow.detach()) * n,
                             sketch_acc=float(right), frames=float(n), utterances=len(batch["ids"]))
    return loss, metrics
