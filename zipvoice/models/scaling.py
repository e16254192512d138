"""Building blocks of the Zipformer as they behave at inference time.

The modules keep the parameter names and shapes of the released ZipVoice
checkpoints, so a state_dict from upstream loads strictly. Training-only
regularisers of the original recipe (activation balancers, whitening penalties,
scheduled dropout/skip rates) have no parameters and are the identity in eval
mode; they are left out here.

Swoosh activations use k2's fused kernels at inference when ``import k2``
works and a pure-PyTorch formula otherwise (the results agree to float32
rounding); in training, a custom autograd function keeps only the input for the
backward pass, so the pure-PyTorch path stays memory-lean::

    SwooshL(x) = log(1 + exp(x - 4)) - 0.08 x - 0.035
    SwooshR(x) = log(1 + exp(x - 1)) - 0.08 x - 0.313261687
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


class _SwooshFunction(torch.autograd.Function):
    """Swoosh with a hand-written backward that keeps only the input for the gradient
    (``d/dx = sigmoid(x - offset) - 0.08``), instead of every intermediate."""

    @staticmethod
    def forward(ctx, x: Tensor, offset: float, const: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.offset = offset
        return _swoosh_formula(x, offset, const)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * (torch.sigmoid(x - ctx.offset) - 0.08), None, None


def _swoosh(x: Tensor, offset: float, const: float, name: str) -> Tensor:
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return _swoosh_formula(x, offset, const)
    if x.requires_grad and torch.is_grad_enabled():
        if _HAVE_K2 and hasattr(k2, name):
            return getattr(k2, name)(x)
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
    ``dropout_p``.
    """

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

    def forward(self, x: Tensor) -> Tensor:
        x = self._act(x)
        if self.training and self.dropout_p > 0:
            x = nn.functional.dropout(x, self.dropout_p, training=True)
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
