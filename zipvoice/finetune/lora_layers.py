"""peft adapter layers for ZipVoice modules that are not ``nn.Linear``.

:class:`ActivationLinearLora` adapts an ``ActivationDropoutAndLinear`` (the
output projections of the feed-forward and convolution modules), which keeps
its ``weight``/``bias`` directly and applies an activation first:

    y = W · act(x) + b + scale · B · A · act(x)          (LoRA)

(DoRA rescales the rows of ``W + scale · B · A`` as for a linear). It is peft's
own linear LoRA layer fed with ``act(x)``: the activation runs once, then the
wrapped module only projects. Merging (``merge_and_unload``) adds the low-rank
update to ``W`` and leaves a plain ``ActivationDropoutAndLinear`` with the
original parameter names.
"""

from __future__ import annotations

from peft.tuners.lora.layer import Linear as LoraLinear
from torch import Tensor

from zipvoice.models.scaling import ActivationDropoutAndLinear


class ActivationLinearLora(LoraLinear):
    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        base = self.get_base_layer()
        h = base.pre(x)
        base.project_only = True
        try:
            return super().forward(h, *args, **kwargs)
        finally:
            base.project_only = False


CUSTOM_LORA_LAYERS = {ActivationDropoutAndLinear: ActivationLinearLora}
