"""The memory-lean Swoosh used in training without k2: uint8 derivative, unbiased gradient."""

import pytest
import torch

from zipvoice.models import scaling
from zipvoice.models.scaling import DERIV_STEP, set_swoosh_training_impl, swoosh_l, swoosh_r

CASES = [(swoosh_l, 4.0, 0.035), (swoosh_r, 1.0, 0.313261687)]


def exact_derivative(x: torch.Tensor, offset: float) -> torch.Tensor:
    e = torch.exp(x.double() - offset)
    return (e / (1 + e) - 0.08).to(x.dtype)


@pytest.fixture(autouse=True)
def _lean_path():
    if scaling._HAVE_K2:
        pytest.skip("k2 provides the training Swoosh here")
    previous = set_swoosh_training_impl("lean")
    yield
    set_swoosh_training_impl(previous)


@pytest.mark.parametrize("fn,offset,const", CASES)
def test_values_and_gradient_within_one_quantisation_step(fn, offset, const):
    torch.manual_seed(0)
    x = torch.linspace(-12, 12, 4001).requires_grad_(True)
    y = fn(x)
    ref = torch.log1p(torch.exp(x.detach().double() - offset)) - 0.08 * x.detach().double() - const
    assert torch.allclose(y.double(), ref, atol=1e-5)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    exact = upstream * exact_derivative(x.detach(), offset)
    assert bool(((x.grad - exact).abs() <= DERIV_STEP * upstream.abs() + 1e-7).all())


@pytest.mark.parametrize("fn,offset,const", CASES)
def test_dither_makes_the_gradient_unbiased(fn, offset, const):
    torch.manual_seed(1)
    x = (torch.rand(2000) * 16 - 8).requires_grad_(True)
    total = torch.zeros_like(x)
    repeats = 400
    for _ in range(repeats):
        x.grad = None
        fn(x).sum().backward()
        total += x.grad
    err = total / repeats - exact_derivative(x.detach(), offset)
    # one sample errs by up to a step; the mean of 400 dithered samples by ~step/40
    assert float(err.abs().mean()) < DERIV_STEP / 20
    assert float(err.mean().abs()) < DERIV_STEP / 100


def _saved_dtypes(fn) -> list[torch.dtype]:
    saved = []

    def pack(t):
        saved.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(torch.randn(64, 48, requires_grad=True))
    return saved


@pytest.mark.parametrize("fn,offset,const", CASES)
def test_backward_keeps_only_a_uint8_tensor(fn, offset, const):
    assert _saved_dtypes(fn) == [torch.uint8]
    set_swoosh_training_impl("autograd")  # the plain formula keeps float tensors
    plain = _saved_dtypes(fn)
    assert plain and all(d == torch.float32 for d in plain)


def test_inference_needs_no_saved_tensors():
    with torch.no_grad():
        assert _saved_dtypes(swoosh_l) == []
