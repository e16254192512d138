"""Debugging hooks: find the first module whose output or gradient is not finite.

:func:`register_inf_check_hooks` adds a forward hook and a full backward hook
to every submodule; each logs a warning naming the module (with the model's
dotted name) whose output, or the gradient with respect to whose output, holds
inf or NaN. Modules run in order, so the first warning of a step names the
culprit. It slows training down; use it to debug, then turn it off.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def _non_finite(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.is_floating_point() and not bool(torch.isfinite(obj).all())
    if isinstance(obj, (list, tuple)):
        return any(_non_finite(o) for o in obj)
    if isinstance(obj, dict):
        return any(_non_finite(o) for o in obj.values())
    return False


def register_inf_check_hooks(model: nn.Module) -> list:
    """Register the hooks; returns their handles (call ``.remove()`` on each to undo)."""
    handles = []
    for name, module in model.named_modules():
        label = name or type(module).__name__

        def forward_hook(_module, _inputs, output, label=label):
            if _non_finite(output):
                logger.warning("inf-check: output of %s is not finite", label)

        def backward_hook(_module, _grad_inputs, grad_outputs, label=label):
            if _non_finite(grad_outputs):
                logger.warning("inf-check: gradient of the output of %s is not finite", label)

        handles.append(module.register_forward_hook(forward_hook))
        handles.append(module.register_full_backward_hook(backward_hook))
    for name, param in model.named_parameters():

        def param_hook(grad, name=name):
            if _non_finite(grad):
                logger.warning("inf-check: gradient of parameter %s is not finite", name)

        if param.requires_grad:
            handles.append(param.register_hook(param_hook))
    return handles
