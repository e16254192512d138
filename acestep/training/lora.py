"""peft LoRA on the ACE-Step transformer from the released trainer's config JSON.

The JSON is a peft ``LoraConfig`` in the released format, e.g.::

    {"r": 16, "lora_alpha": 32, "use_rslora": true,
     "target_modules": ["linear_q", "linear_k", "linear_v", "to_q", "to_k", "to_v", "to_out.0"]}

``r``, ``lora_alpha``, ``use_rslora`` (default false) and ``target_modules`` are read by
:func:`acestep.models.lora.read_lora_config`; ``lora_dropout`` (default 0) is optional. A target
matches every ``nn.Linear`` whose name is it or ends with ``.<target>``
(:func:`shirabe.train.lora.resolve_targets`; a target that matches nothing is an error). While
training, peft scales the update by ``lora_alpha / sqrt(r)`` (rslora) or ``lora_alpha / r``; the
saved adapter holds the plain A and B (the released layout), so that scale is not in the file
(see :mod:`acestep.models.lora` for the two views).

``speaker_embedder`` in the targets is accepted but does nothing: the cache's (and the released
dataset's) speaker embeddings are zeros, so its adapter gets zero input and no gradient.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from acestep.models.lora import LoraSettings, read_lora_config
from shirabe.cli import InputError
from shirabe.train.lora import resolve_targets

logger = logging.getLogger(__name__)
NO_OP_TARGETS = ("speaker_embedder",)


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: float
    use_rslora: bool
    target_modules: tuple[str, ...]
    dropout: float = 0.0

    @property
    def settings(self) -> LoraSettings:
        return LoraSettings(self.rank, self.alpha, self.use_rslora, self.target_modules)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


def read_lora_spec(path: str | Path) -> LoraSpec:
    """The training settings of a LoRA config JSON; one-line errors naming the file and field."""
    path = Path(path)
    settings = read_lora_config(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    dropout = data.get("lora_dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InputError(f"{path}: field 'lora_dropout' must be a number in [0, 1), got {dropout!r}")
    if not settings.target_modules:
        raise InputError(f"{path}: field 'target_modules' must name at least one module")
    return LoraSpec(settings.rank, settings.alpha, settings.use_rslora, settings.target_modules, float(dropout))


def no_op_targets(spec: LoraSpec) -> list[str]:
    return [t for t in spec.target_modules if t in NO_OP_TARGETS or t.endswith(tuple("." + n for n in NO_OP_TARGETS))]


def warn_no_op_targets(spec: LoraSpec, source: str = "LoRA config") -> list[str]:
    found = no_op_targets(spec)
    for target in found:
        logger.warning("%s: target %r is a no-op: speaker embeddings are zeros in training, so its adapter "
                       "never receives a gradient (leave it out to save memory)", source, target)
    return found


def wrap_transformer(model: nn.Module, spec: LoraSpec, source: str = "LoRA config") -> nn.Module:
    """A peft model with LoRA on the spec's targets; every base weight frozen."""
    from peft import LoraConfig, get_peft_model

    targets = resolve_targets(model, spec.target_modules, option=f"{source}: target_modules")
    warn_no_op_targets(spec, source)
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, use_rslora=spec.use_rslora,
                        lora_dropout=spec.dropout, target_modules=targets, bias="none")
    wrapped = get_peft_model(model, config)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    logger.info("LoRA on %d linear layers (r %d, alpha %g%s, dropout %g): %.2f M trainable parameters",
                len(targets), spec.rank, spec.alpha, ", rslora" if spec.use_rslora else "", spec.dropout,
                trainable / 1e6)
    return wrapped
