"""The distillation loss: a student's single Euler step imitates two steps of a guided teacher.

Per batch (one draw for the whole batch, as upstream):

* ``t ~ U(0, 1)``; guidance ``w ~ U(0, 2)`` in the first stage, ``U(1, 3)`` in the second;
* ``Δ1 ~ U(0, min(0.3, 1 − t))``, ``Δ2 ~ U(0, min(0.3, 1 − t − Δ1))``;
* ``x_t = t·x1 + (1 − t)·x0`` (``x1`` the features in model scale, ``x0`` noise);
* the speech condition hides one 70-100 % span per utterance, as in training;
* the teacher (with guidance ``w``: classifier-free guidance for ZipVoice, the
  guidance input for ZipVoiceDistill) takes two Euler steps ``t → t + Δ1 → t + Δ1 + Δ2``;
  its implied velocity over the interval is ``(x_dest − x_t) / (Δ1 + Δ2)`` =
  ``(Δ1·v1 + Δ2·v2) / (Δ1 + Δ2)`` (the second form is used: it stays exact for tiny Δ);
* the student (ZipVoiceDistill, given ``w``) takes one step over the same interval;
  the loss is the mean squared difference of the two velocities over the hidden,
  non-padded frames. ``ref_loss``, the student's error against the straight-path
  target ``x1 − x0``, is returned for the log only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from shirabe.flow import linear_path, linear_velocity_target
from zipvoice.models.text_condition import condition_time_mask
from zipvoice.models.zipvoice_distill import ZipVoiceDistill

#: guidance-scale range per distillation stage
GUIDANCE_RANGE = {"first": (0.0, 2.0), "second": (1.0, 3.0)}
MAX_INTERVAL = 0.3


@dataclass(frozen=True)
class DistillSchedule:
    """The random draws of one batch."""

    t: float
    guidance_scale: float
    delta1: float
    delta2: float


class DistillStudent(ZipVoiceDistill):
    """ZipVoiceDistill whose ``forward`` is :meth:`forward_fm_decoder` (same weights and keys).

    Training calls the decoder through ``forward`` so that DDP, which synchronises
    gradients only for calls of the wrapped module itself, can wrap the student.
    """

    def forward(self, **kwargs) -> Tensor:  # noqa: D102
        return self.forward_fm_decoder(**kwargs)


def draw_intervals(stage: str, device: torch.device | str = "cpu") -> DistillSchedule:
    """Draw ``t``, ``w``, ``Δ1`` and ``Δ2`` from the global generator (module docstring)."""
    if stage not in GUIDANCE_RANGE:
        raise ValueError(f"distill stage must be 'first' or 'second', got {stage!r}")
    lo, hi = GUIDANCE_RANGE[stage]
    u = torch.rand(4, device=device).tolist()
    t = u[0]
    w = lo + (hi - lo) * u[1]
    d1 = u[2] * min(MAX_INTERVAL, 1.0 - t)
    d2 = u[3] * min(MAX_INTERVAL, 1.0 - t - d1)
    return DistillSchedule(t, w, d1, d2)


def two_step_velocity(velocity, x_t: Tensor, t: float, delta1: float, delta2: float) -> Tensor:
    """Velocity implied by two Euler steps of ``velocity(t, x)`` from ``(t, x_t)``.

    Returns ``(x_dest − x_t) / (Δ1 + Δ2)`` written as ``(Δ1·v1 + Δ2·v2) / (Δ1 + Δ2)``;
    with ``Δ1 + Δ2 == 0`` it is ``v1``.
    """
    v1 = velocity(t, x_t)
    if delta1 + delta2 <= 0.0:
        return v1
    v2 = velocity(t + delta1, x_t + delta1 * v1)
    return (delta1 * v1 + delta2 * v2) / (delta1 + delta2)


def distill_loss(student, teacher, batch: dict, stage: str, feat_scale: float, device: torch.device,
                 schedule: DistillSchedule | None = None) -> tuple[Tensor, Tensor, float]:
    """``(loss, ref_loss, frames)`` of one batch.

    ``student`` is a :class:`DistillStudent` (possibly DDP-wrapped), so that its
    ``forward`` — the call DDP synchronises — is the decoder's velocity.

    ``teacher`` is a ZipVoice (first stage) or ZipVoiceDistill (second stage) in
    eval mode; ``frames`` is the number of frames the loss is taken over.
    """
    plain = student.module if hasattr(student, "module") else student
    features = batch["features"].to(device) * feat_scale
    features_lens = batch["features_lens"].to(device)
    s = schedule or draw_intervals(stage, device)
    noise = torch.randn_like(features)
    hidden = condition_time_mask(features_lens, (0.7, 1.0), max_len=features.size(1))
    speech_condition = torch.where(hidden.unsqueeze(-1), torch.zeros_like(features), features)
    x_t = linear_path(noise, features, torch.tensor(s.t, device=device, dtype=features.dtype))
    tokens = batch["tokens"]

    with torch.no_grad():
        t_text, t_mask = teacher.forward_text_train(tokens, features_lens)

        def teacher_velocity(t, x):
            return teacher.solver.model(t=torch.tensor(t, device=device, dtype=x.dtype), x=x,
                                        text_condition=t_text, speech_condition=speech_condition,
                                        padding_mask=t_mask, guidance_scale=s.guidance_scale)

        target = two_step_velocity(teacher_velocity, x_t, s.t, s.delta1, s.delta2)
        s_text, s_mask = plain.forward_text_train(tokens, features_lens)
    batch_size = features.size(0)
    v = student(  # a DistillStudent (or DDP around one): forward() is the decoder's velocity
        t=torch.full((batch_size,), s.t, device=device, dtype=features.dtype), xt=x_t, text_condition=s_text,
        speech_condition=speech_condition, padding_mask=s_mask,
        guidance_scale=torch.full((batch_size,), s.guidance_scale, device=device, dtype=features.dtype),
    )
    keep = hidden & ~s_mask
    loss = torch.mean((v[keep] - target[keep]) ** 2)
    with torch.no_grad():
        ref_loss = torch.mean((v[keep] - linear_velocity_target(noise, features)[keep]) ** 2)
    return loss, ref_loss, float(keep.sum())
