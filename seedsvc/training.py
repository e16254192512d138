"""What each SeedSVC training phase trains, and the model state a phase starts from.

* phase 0 — plain V2: the whole CFM (DiT) and the length regulator, no F0. This is
  upstream's ``train_v2.py --train-cfm`` and, on the mini corpus, stands in for the
  released V2 checkpoint.
* phase 1 — F0 adapters only: the F0 projection (768 → hidden) and the per-layer F0
  cross-attention. V2 and the V1 F0 embedding stay frozen and are not given to the
  optimizer.
* phase 2 — the DiT is unfrozen as well, at ``lr · dit_lr_scale``; the F0 modules keep
  ``lr``. The F0 embedding and the length regulator stay frozen.

``no_f0`` builds the model without F0 modules; any phase then fine-tunes the DiT (the
baseline the F0 model is compared with).
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

logger = logging.getLogger(__name__)

ALWAYS_FROZEN = ("estimator.x_embedder.", "estimator.f0_encoder.embedding.")
F0_TRAINABLE = ("estimator.f0_encoder.proj.", "estimator.f0_cross_attention.")


def is_f0_param(name: str) -> bool:
    return name.startswith(F0_TRAINABLE)


class SeedSVCTrainingModel(nn.Module):
    """The CFM and the length regulator as one module, the model the training loop trains.

    ``forward`` returns the CFM's flow-matching loss of a batch of
    :class:`seedsvc.dataset.SegmentSampler`; :meth:`net_state` is upstream's
    ``{'cfm': ..., 'length_regulator': ...}`` and :meth:`release_state` all of ``model.pth``.
    """

    def __init__(self, cfm: nn.Module, length_regulator: nn.Module, use_f0: bool):
        super().__init__()
        self.cfm, self.length_regulator, self.use_f0 = cfm, length_regulator, use_f0

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        mu, _ = self.length_regulator(batch["content"], batch["x_lens"])
        return self.cfm(batch["mel"], batch["x_lens"], batch["prompt_lens"], mu, batch["style"],
                        f0=batch["f0"] if self.use_f0 else None)

    def net_state(self) -> dict[str, dict[str, Tensor]]:
        return {part: {k: v.detach().cpu() for k, v in getattr(self, part).state_dict().items()}
                for part in ("cfm", "length_regulator")}

    def release_state(self, iters: int, phase: int) -> dict:
        """What ``model.pth`` holds: upstream's layout plus the steps trained and the phase."""
        return {"net": self.net_state(), "iters": int(iters), "epoch": 0, "phase": int(phase)}


def select_trainable(cfm: nn.Module, length_regulator: nn.Module, phase: int) -> None:
    """Set ``requires_grad`` of every parameter for the phase (see the module docstring)."""
    has_f0 = getattr(cfm.estimator, "has_f0", False)
    if phase not in (0, 1, 2):
        raise ValueError(f"phase must be 0, 1 or 2, got {phase}")
    if phase in (1, 2) and not has_f0:
        logger.info("model has no F0 modules: phase %d fine-tunes the DiT instead", phase)
    for name, p in cfm.named_parameters():
        if name.startswith(ALWAYS_FROZEN):
            train = False
        elif is_f0_param(name):
            train = phase in (1, 2)
        else:
            train = phase in (0, 2) or not has_f0
        p.requires_grad_(train)
    for p in length_regulator.parameters():
        p.requires_grad_(phase == 0)


def lr_scales(cfm: nn.Module, phase: int, dit_lr_scale: float = 0.1) -> dict[str, float]:
    """Learning-rate multipliers by parameter-name prefix of :class:`SeedSVCTrainingModel`
    (for :func:`shirabe.train.optim.parameter_groups_by_prefix`): the DiT trains at
    ``lr * dit_lr_scale`` in phase 2 (and in phase 1 without F0); everything else at ``lr``."""
    has_f0 = getattr(cfm.estimator, "has_f0", False)
    if not (phase == 2 or (phase == 1 and not has_f0)):
        return {}
    scales = {"cfm.": dit_lr_scale}
    if has_f0:
        scales.update({f"cfm.{prefix}": 1.0 for prefix in F0_TRAINABLE})
    return scales


def part_of(name: str) -> str:
    """``f0``, ``dit`` or ``length_regulator``: which part a parameter of
    :class:`SeedSVCTrainingModel` belongs to."""
    if name.startswith("length_regulator."):
        return "length_regulator"
    return "f0" if is_f0_param(name.removeprefix("cfm.")) else "dit"


def describe_groups(model: nn.Module, groups: list[dict]) -> str:
    """``f0 295808 @ lr 0.002, dit ... @ lr ...``: the optimizer's parameters by part and rate."""
    names = {id(p): n for n, p in model.named_parameters()}
    counts: dict[tuple[str, float], int] = {}
    for g in groups:
        for p in g["params"]:
            key = (part_of(names[id(p)]), g["lr"])
            counts[key] = counts.get(key, 0) + p.numel()
    return ", ".join(f"{part} {n} @ lr {lr:g}" for (part, lr), n in counts.items())


def count_params(modules) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = frozen = 0
    for m in modules:
        for p in m.parameters():
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
    return trainable, frozen
