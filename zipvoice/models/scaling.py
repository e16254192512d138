"""Building blocks of the Zipformer as they behave at inference time.

The modules keep the parameter names and shapes of the released ZipVoice
checkpoints, so a state_dict from upstream loads strictly. Training-only
regularisers of the original recipe (activation balancers, whitening penalties,
scheduled dropout/skip rates) have no parameters and are the identity in eval
mode; they are left out here.

Swoosh activations use k2's fused kernels when ``import k2`` works and a
pure-PyTorch formula otherwise (the results agree to float32 rounding)::

    SwooshL(x) = log(1 + exp(x - 4)) - 0.08 x - 0.035
    SwooshR(x) = log(1 + exp(x - 1)) - 0.08 x - 0.313261687

In training without k2, a custom autograd function keeps the pure-PyTorch path
memory-lean: the forward pass computes the derivative ``sigmoid(x - offset) -
0.08``, which lies in (-0.08, 0.92), and stores it quantised to one byte per
element instead of a float copy of the input (4 bytes, what plain autograd
keeps). Quantisation adds uniform dither before truncating, so the stored
derivative is unbiased; its step is ``(0.925 + 0.08) / 255 ≈ 0.0039``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

try:  # optional: fused Swoosh kernels
    import k2  # type: ignore

    _HAVE_K2 = hasattr(k2, "swoosh_l_forward") and hasattr(k2, "swoosh_r_forward")
except Exception:  # noqa: BLE001 - k2 fails in many ways when it does not match torch
    k2 = None
    _HAVE_K2 = False


def _swoosh_formula(x: Tensor, offset: float, const: float) -> Tensor:
    return torch.logaddexp(torch.zeros((), dtype=x.dtype, device=x.device), x - offset) - 0.08 * x - const


#: range the quantised derivative covers (the true range is (-0.08, 0.92))
DERIV_MIN = -0.08
DERIV_MAX = 0.925
DERIV_STEP = (DERIV_MAX - DERIV_MIN) / 255.0


def dequantize_derivative(q: Tensor, dtype: torch.dtype) -> Tensor:
    return q.to(dtype).mul_(DERIV_STEP).add_(DERIV_MIN)


class _SwooshFunction(torch.autograd.Function):
    """Swoosh whose backward needs only a uint8 copy of the derivative.

    ``d/dx = sigmoid(x - offset) - 0.08`` is computed in the forward pass (in
    float32 at least, also under fp16 autocast) and saved quantised; the input
    itself is not kept. The stored byte is ``floor((d/dx - DERIV_MIN) /
    DERIV_STEP + u)`` with ``u ~ U[0, 1)``, whose expectation is the exact
    value (dithered rounding); with ``DERIV_MIN = -0.08`` it is simply
    ``floor(sigmoid(x - offset) / DERIV_STEP + u)``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, offset: float, const: float) -> Tensor:
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.no_grad():
            z = x.to(compute_dtype) - offset
            y = nn.functional.softplus(z).add_(z, alpha=-0.08).sub_(0.08 * offset + const)
            q = torch.rand_like(z).add_(torch.sigmoid(z), alpha=1.0 / DERIV_STEP)  # in [0, 254.8)
            ctx.save_for_backward(q.to(torch.uint8))
        ctx.grad_dtype = x.dtype
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (q,) = ctx.saved_tensors
        deriv = dequantize_derivative(q, torch.promote_types(grad.dtype, torch.float32))
        return deriv.mul_(grad).to(ctx.grad_dtype), None, None


#: "lean" (default): the uint8-derivative function above when k2 is absent;
#: "autograd": the plain formula under autograd (for comparisons only)
_TRAINING_IMPL = {"name": "lean"}


def set_swoosh_training_impl(name: str) -> str:
    """Choose the k2-less training path ("lean" or "autograd"); returns the previous one."""
    if name not in ("lean", "autograd"):
        raise ValueError(f"unknown Swoosh implementation {name!r}")
    previous, _TRAINING_IMPL["name"] = _TRAINING_IMPL["name"], name
    return previous


def _swoosh(x: Tensor, offset: float, const: float, name: str) -> Tensor:
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return _swoosh_formula(x, offset, const)
    if x.requires_grad and torch.is_grad_enabled():
        if _HAVE_K2 and hasattr(k2, name):
            return getattr(k2, name)(x)
        if _TRAINING_IMPL["name"] == "autograd":
            return _swoosh_formula(x, offset, const)
        return _SwooshFunction.apply(x, offset, const)
    if _HAVE_K2:
        return getattr(k2, f"{name}_forward")(x)
    return _swoosh_formula(x, offset, const)


def swoosh_l(x: Tensor) -> Tensor:
    return _swoosh(x, 4.0, 0.035, "swoosh_l")


def swoosh_r(x: Tensor) -> Tensor:
    return _swoosh(x, 1.0, 0.313261687, "swoosh_r")


class SwooshL(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return swoosh_l(x)


class SwooshR(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return swoosh_r(x)


_ACTIVATIONS = {"SwooshL": swoosh_l, "SwooshR": swoosh_r}


def ScaledLinear(in_features: int, out_features: int, bias: bool = True, initial_scale: float = 1.0) -> nn.Linear:  # noqa: N802
    """A plain ``nn.Linear`` whose initial weights are multiplied by ``initial_scale``.

    The bias (if any) starts uniform in ±0.1·initial_scale. Only the
    initialisation differs from ``nn.Linear``; there are no extra parameters.
    """
    lin = nn.Linear(in_features, out_features, bias=bias)
    if lin.weight.device.type != "meta":
        with torch.no_grad():
            lin.weight.mul_(initial_scale)
            if lin.bias is not None:
                nn.init.uniform_(lin.bias, -0.1 * initial_scale, 0.1 * initial_scale)
    return lin


class ActivationDropoutAndLinear(nn.Module):
    """``linear(activation(x))`` with the linear's ``weight``/``bias`` stored directly.

    Dropout between the two (training only) is applied with probability
    ``dropout_p``. ``pre`` is the activation (and dropout) alone; LoRA/DoRA
    adapters (``zipvoice.finetune.lora_layers``) run it once, then the linear
    part with ``project_only`` set, so their low-rank path sees the same input
    as the weight.
    """

    project_only = False  # set by an adapter layer around its call of this module

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        activation: str = "SwooshL",
        dropout_p: float = 0.0,
        initial_scale: float = 1.0,
    ):
        super().__init__()
        lin = ScaledLinear(in_channels, out_channels, bias=bias, initial_scale=initial_scale)
        self.weight = lin.weight
        self.bias = lin.bias
        self.activation = activation
        self.dropout_p = dropout_p
        self._act = _ACTIVATIONS[activation]

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def pre(self, x: Tensor) -> Tensor:
        x = self._act(x)
        if self.training and self.dropout_p > 0:
            x = nn.functional.dropout(x, self.dropout_p, training=True)
        return x

    def forward(self, x: Tensor) -> Tensor:
        if not self.project_only:
            x = self.pre(x)
        return nn.functional.linear(x, self.weight, self.bias)


class BiasNorm(nn.Module):
    """``x · exp(log_scale) / rms(x - bias)`` over the channel dimension.

    ``bias`` only enters the normaliser, not the numerator.
    """

    def __init__(self, num_channels: int, channel_dim: int = -1, log_scale: float = 1.0):
        super().__init__()
        self.num_channels = num_channels
        self.channel_dim = channel_dim
        self.log_scale = nn.Parameter(torch.tensor(log_scale))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias
        if self.channel_dim not in (-1, x.ndim - 1):
            for _ in range(x.ndim - 1 - (self.channel_dim % x.ndim)):
                bias = bias.unsqueeze(-1)
        scales = torch.mean((x - bias) ** 2, dim=self.channel_dim, keepdim=True) ** -0.5 * self.log_scale.exp()
        return x * scales


class BypassModule(nn.Module):
    """Learned per-channel interpolation ``src_orig + (src - src_orig) · bypass_scale``.

    The stored scale is used as is (upstream's training recipe only steers it
    through its gradients).
    """

    def __init__(self, embed_dim: int):
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((embed_dim,), 0.5))

    def forward(self, src_orig: Tensor, src: Tensor) -> Tensor:
        return src_orig + (src - src_orig) * self.bypass_scale
