"""ScaledAdam: Adam whose step is proportional to each tensor's own size.

For a tensor ``p`` with more than one element, the update is Adam's normalised
gradient times ``lr * rms(p)`` (``rms`` clamped below by ``param_min_rms``), so
every tensor changes by about the same *relative* amount. Because that alone
never changes a tensor's overall scale, the scale is learned separately: the
gradient with respect to a log-scale factor, ``sum(p * grad)``, is accumulated
over ``size_update_period`` steps and applied with its own Adam-style
normalisation at ``lr * scalar_lr_scale``; tensors whose RMS leaves
``[param_min_rms, param_max_rms]`` are pushed back. Scalars take plain Adam
steps at ``lr * scalar_lr_scale`` and are clamped to ``±scalar_max``. Updates
go through a momentum buffer (``beta1``).

Gradient clipping (``clipping_scale``): the model's gradient norm, with each
tensor's gradient weighted by its RMS (the update's size), is recorded every
step; the threshold is ``clipping_scale`` times the median of recent norms,
re-estimated every ``clipping_update_period`` steps (and at steps 10, 20, 40),
and a step whose norm exceeds it has all gradients scaled down to it.

Parameter groups may carry per-group learning rates: see
:func:`parameter_groups_with_lr_scale` for modules that set ``lr_scale``, and
:func:`parameter_groups_by_prefix` for rates given by parameter-name prefix
(any optimizer).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def parameter_groups_with_lr_scale(model: nn.Module, lr: float, include_names: bool = False) -> list[dict]:
    """One group per distinct learning rate: a module attribute ``lr_scale``
    multiplies the rate of everything below it (nested scales multiply)."""
    scale_of: dict[str, float] = {"": 1.0}
    for name, module in model.named_modules():
        if not name:
            scale_of[""] = float(getattr(module, "lr_scale", 1.0))
            continue
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        scale_of[name] = scale_of[parent] * float(getattr(module, "lr_scale", 1.0))
    groups: dict[float, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        scale = scale_of.get(owner, 1.0)
        group = groups.setdefault(scale, {"params": [], "lr": lr * scale, "names": []})
        group["params"].append(p)
        group["names"].append(name)
    out = list(groups.values())
    if not include_names:
        for g in out:
            del g["names"]
    return out


def parameter_groups_by_prefix(model: nn.Module, lr: float, lr_scales: dict[str, float] | None = None,
                               **group_options) -> list[dict]:
    """Optimizer parameter groups whose learning rates are set per module-name prefix.

    ``lr_scales`` maps a parameter-name prefix (``"decoder."``, ``"lm.layers.0."``; the
    names of ``model.named_parameters()``) to a multiplier of ``lr``; a parameter takes
    the scale of the longest prefix it starts with, 1.0 when none matches. Only
    parameters with ``requires_grad`` are included, and a scale of 0 leaves its
    parameters out (frozen by the optimizer, though they keep ``requires_grad``).
    One group per distinct scale, in the order the scales first occur; each group
    has ``lr``, ``lr_scale``, ``name`` (its prefixes, ``"*"`` for the rest) and the
    ``group_options`` (e.g. ``weight_decay``). Learning-rate schedules keep the
    ratios, since they scale every group's own base rate.

    A prefix that names no parameter at all is an error (usually a typo).
    """
    lr_scales = dict(lr_scales or {})
    prefixes = sorted(lr_scales, key=len, reverse=True)
    used: set[str] = set()
    groups: dict[float, dict] = {}
    for name, p in model.named_parameters():
        prefix = next((x for x in prefixes if name.startswith(x)), None)
        if prefix is not None:
            used.add(prefix)
        scale = 1.0 if prefix is None else float(lr_scales[prefix])
        if not p.requires_grad or scale == 0.0:
            continue
        group = groups.setdefault(scale, {"params": [], "lr": lr * scale, "lr_scale": scale, "names": set(),
                                          **group_options})
        group["params"].append(p)
        group["names"].add(prefix if prefix is not None else "*")
    unused = [x for x in lr_scales if x not in used]
    if unused:
        raise ValueError(f"learning-rate prefix {unused[0]!r} names no parameter of the model")
    out = []
    for group in groups.values():
        group["name"] = ",".join(sorted(group.pop("names")))
        out.append(group)
    return out


class ScaledAdam(torch.optim.Optimizer):
    """See the module docstring. Defaults follow the common Zipformer settings."""

    def __init__(
        self,
        params,
        lr: float = 3e-2,
        clipping_scale: float | None = None,
        betas: tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1.0e-08,
        param_min_rms: float = 1.0e-05,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_update_period: int = 100,
    ):
        defaults = dict(
            lr=lr,
            clipping_scale=clipping_scale,
            betas=betas,
            scalar_lr_scale=scalar_lr_scale,
            eps=eps,
            param_min_rms=param_min_rms,
            param_max_rms=param_max_rms,
            scalar_max=scalar_max,
            size_update_period=size_update_period,
            clipping_update_period=clipping_update_period,
        )
        super().__init__(params, defaults)
        self.clip_state: dict = {"step": 0, "norms": [], "threshold": None, "num_clipped": 0}
        self.last_clipping_scale = 1.0

    # -- state -------------------------------------------------------------
    def state_dict(self):
        out = super().state_dict()
        out["clip_state"] = {k: (list(v) if isinstance(v, list) else v) for k, v in self.clip_state.items()}
        return out

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        clip = state_dict.pop("clip_state", None)
        super().load_state_dict(state_dict)
        if clip is not None:
            self.clip_state = {k: (list(v) if isinstance(v, list) else v) for k, v in clip.items()}

    def _init_state(self, p: torch.Tensor, group: dict) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if p.numel() > 1:
                rms = p.detach().pow(2).mean().sqrt().reshape(1)
                state["param_rms"] = rms.to(p.dtype)
                state["scale_grads"] = torch.zeros(group["size_update_period"], dtype=p.dtype, device=p.device)
                state["scale_exp_avg_sq"] = torch.zeros(1, dtype=p.dtype, device=p.device)
                state["size_steps"] = 0
        return state

    # -- clipping ----------------------------------------------------------
    def _clipping_scale(self) -> float:
        clipping_scale = self.defaults["clipping_scale"]
        period = self.defaults["clipping_update_period"]
        cs = self.clip_state
        step = cs["step"]
        cs["step"] += 1
        if clipping_scale is None:
            return 1.0
        sumsq = torch.zeros((), dtype=torch.float64)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g2 = p.grad.detach().double().pow(2).sum()
                if p.numel() > 1:
                    g2 = g2 * self.state[p]["param_rms"].double().pow(2).sum()
                sumsq += g2.cpu()
        norm = float(sumsq.sqrt())
        if step == 0 or not torch.isfinite(torch.tensor(norm)):
            cs["norms"] = [norm] if step == 0 else cs["norms"]
            return 1.0
        cs["norms"] = (cs["norms"] + [norm])[-period:]
        if step % period == 0 or step in (10, 20, 40):
            ordered = sorted(cs["norms"])
            median = ordered[len(ordered) // 2]
            cs["threshold"] = clipping_scale * median
            quartiles = [ordered[min(len(ordered) - 1, (len(ordered) // 4) * i)] for i in range(5)]
            logger.debug(
                "ScaledAdam: grad-norm quartiles %s, threshold %.3e, clipped %d%% of recent steps",
                " ".join(f"{q:.3e}" for q in quartiles),
                cs["threshold"],
                100 * cs["num_clipped"] // max(1, period),
            )
            cs["num_clipped"] = 0
        threshold = cs["threshold"]
        if threshold is None or norm <= threshold:
            return 1.0
        cs["num_clipped"] += 1
        return threshold / (norm + 1e-20)

    # -- updates -----------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._init_state(p, group)
        scale = self._clipping_scale()
        self.last_clipping_scale = scale
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("ScaledAdam does not support sparse gradients")
                grad = p.grad if scale == 1.0 else p.grad * scale
                self._step_one(group, p, grad)
        return loss

    def _step_one(self, group: dict, p: torch.Tensor, grad: torch.Tensor) -> None:
        state = self.state[p]
        beta1, beta2 = group["betas"]
        step = state["step"]
        delta = state["delta"]
        delta.mul_(beta1)
        if p.numel() > 1:
            period = group["size_update_period"]
            state["scale_grads"][step % period] = (p * grad).sum()
            if step % period == period - 1:
                state["param_rms"].copy_(p.pow(2).mean().sqrt())
                if step > 0:
                    self._size_update(group, p, state)
            self._tensor_step(group, p, grad, state)
        else:
            self._scalar_step(group, p, grad, state)
        p.add_(delta)
        if p.numel() == 1:
            p.clamp_(-group["scalar_max"], group["scalar_max"])
        state["step"] = step + 1

    def _size_update(self, group: dict, p: torch.Tensor, state: dict) -> None:
        beta1, beta2 = group["betas"]
        size_lr = group["lr"] * group["scalar_lr_scale"]
        scale_grads = state["scale_grads"]
        n = scale_grads.numel()
        state["size_steps"] += 1
        avg_sq = state["scale_exp_avg_sq"]
        avg_sq.mul_(beta2**n).add_(scale_grads.pow(2).mean(), alpha=1 - beta2**n)
        bias_correction2 = 1 - beta2 ** (state["size_steps"] * n)
        denom = (avg_sq / bias_correction2).sqrt() + group["eps"]
        scale_step = -size_lr * scale_grads.sum() / denom
        rms = state["param_rms"]
        scale_step = torch.where(rms < group["param_min_rms"], torch.full_like(scale_step, size_lr * n), scale_step)
        scale_step = torch.where(rms > group["param_max_rms"], torch.full_like(scale_step, -size_lr * n), scale_step)
        state["delta"].add_(p * scale_step, alpha=1 - beta1)

    def _tensor_step(self, group: dict, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:
        beta1, beta2 = group["betas"]
        exp_avg_sq = state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction2 = 1 - beta2 ** (state["step"] + 1)
        denom = (exp_avg_sq / bias_correction2).sqrt().add_(group["eps"])
        alpha = -group["lr"] * (1 - beta1) * state["param_rms"].clamp(min=group["param_min_rms"])
        state["delta"].add_(grad / denom * alpha)

    def _scalar_step(self, group: dict, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:
        beta1, beta2 = group["betas"]
        exp_avg_sq = state["exp_avg_sq"]
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction2 = 1 - beta2 ** (state["step"] + 1)
        denom = (exp_avg_sq / bias_correction2).sqrt() + group["eps"]
        state["delta"].add_(grad / denom, alpha=-group["lr"] * group["scalar_lr_scale"] * (1 - beta1))
