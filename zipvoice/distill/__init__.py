"""Flow distillation of ZipVoice into ZipVoiceDistill (few-step sampling), and its evaluation.

* :mod:`zipvoice.distill.loss`: the two-step teacher target and the distillation loss;
* :mod:`zipvoice.distill.ema`: the exponential-moving-average teacher of the second stage;
* :mod:`zipvoice.distill.sampling_loss`: dev-set losses of a model, by flow matching or
  after sampling with a given number of Euler steps (how close a 4-step student gets to a
  16-step teacher).

The training binary is ``python -m zipvoice.bin.train_zipvoice_distill``.
"""

from zipvoice.distill.ema import ema_update
from zipvoice.distill.loss import (
    DistillSchedule,
    DistillStudent,
    distill_loss,
    draw_intervals,
    two_step_velocity,
)
from zipvoice.distill.sampling_loss import dev_flow_matching_loss, dev_sampling_loss

__all__ = [
    "DistillSchedule",
    "DistillStudent",
    "dev_flow_matching_loss",
    "dev_sampling_loss",
    "distill_loss",
    "draw_intervals",
    "ema_update",
    "two_step_velocity",
]
