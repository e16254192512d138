"""Dev-set losses of a ZipVoice / ZipVoiceDistill model, for comparing models fairly.

Both losses hide one 70-100 % span of every utterance from the speech condition
(as in training) and measure the mean squared error, in model scale
(0.1·log-mel), over the hidden, non-padded frames, weighted by frames:

* :func:`dev_flow_matching_loss`: the training objective — the velocity error at
  ``t = arange(B) / B`` within each batch (upstream's deterministic validation);
* :func:`dev_sampling_loss`: the error of the *generated* features after
  ``num_step`` Euler steps from noise (with the model's guidance), i.e. how well the
  model infills the hidden span when sampling. This is what distillation trades:
  a 4-step student against a 16-step teacher.

The global generator is seeded with ``seed`` first and batches are taken in a
fixed order, so two models evaluated with the same ``seed`` see the same hidden
spans and the same noise.
"""

from __future__ import annotations

import torch
from torch import nn

from shirabe.flow import linear_path, linear_velocity_target
from zipvoice.models.text_condition import condition_time_mask


def _prepare(batch: dict, feat_scale: float, device):
    features = batch["features"].to(device) * feat_scale
    features_lens = batch["features_lens"].to(device)
    hidden = condition_time_mask(features_lens, (0.7, 1.0), max_len=features.size(1))
    speech_condition = torch.where(hidden.unsqueeze(-1), torch.zeros_like(features), features)
    noise = torch.randn_like(features)
    return features, features_lens, hidden, speech_condition, noise


@torch.no_grad()
def dev_flow_matching_loss(model: nn.Module, batches, feat_scale: float = 0.1, seed: int = 0,
                           device: torch.device | str = "cpu") -> dict:
    """``{"loss", "frames", "utterances"}``: the velocity error at ``t = arange(B)/B`` (module docstring)."""
    model.eval()
    torch.manual_seed(seed)
    total = frames = 0.0
    utts = 0
    for batch in batches:
        features, lens, hidden, speech_condition, noise = _prepare(batch, feat_scale, device)
        b = features.size(0)
        t = (torch.arange(b, device=device, dtype=features.dtype) / b).view(-1, 1, 1)
        text_condition, padding_mask = model.forward_text_train(batch["tokens"], lens)
        v = model.forward_fm_decoder(t=t, xt=linear_path(noise, features, t), text_condition=text_condition,
                                     speech_condition=speech_condition, padding_mask=padding_mask)
        keep = hidden & ~padding_mask
        err = ((v - linear_velocity_target(noise, features)) ** 2)[keep]
        total += float(err.sum()) / features.size(2)
        frames += float(keep.sum())
        utts += b
    return {"loss": total / max(frames, 1.0), "frames": frames, "utterances": utts}


@torch.no_grad()
def dev_sampling_loss(model: nn.Module, batches, num_step: int, guidance_scale: float, t_shift: float = 0.5,
                      feat_scale: float = 0.1, seed: int = 0, device: torch.device | str = "cpu") -> dict:
    """``{"loss", "frames", "utterances"}``: the error of features sampled in ``num_step`` steps."""
    model.eval()
    torch.manual_seed(seed)
    total = frames = 0.0
    utts = 0
    for batch in batches:
        features, lens, hidden, speech_condition, noise = _prepare(batch, feat_scale, device)
        text_condition, padding_mask = model.forward_text_train(batch["tokens"], lens)
        x1 = model.solver.sample(x=noise, text_condition=text_condition, speech_condition=speech_condition,
                                 padding_mask=padding_mask, num_step=num_step, guidance_scale=guidance_scale,
                                 t_shift=t_shift)
        keep = hidden & ~padding_mask
        err = ((x1 - features) ** 2)[keep]
        total += float(err.sum()) / features.size(2)
        frames += float(keep.sum())
        utts += features.size(0)
    return {"loss": total / max(frames, 1.0), "frames": frames, "utterances": utts}
