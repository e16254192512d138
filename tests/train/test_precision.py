"""--dtype float32/bf16/fp16: autocast in the training step, the GradScaler only for fp16 on CUDA;
--max-grad-norm clips after unscaling."""

import logging

import pytest
import torch
from torch import nn
from train_testlib import RandomBatches, Regressor, list_loader, make_batch, masked_loss

from shirabe.train.loop import Trainer, new_training_params
from shirabe.train.lr_scheduler import FixedLRScheduler
from shirabe.train.metrics import MetricsTracker
from shirabe.train.precision import MixedPrecision

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class DtypeRecorder(Regressor):
    """Records the dtype its first linear layer computes in."""

    def forward(self, x):
        h = self.proj(x)
        self.seen = h.dtype
        return self.out(torch.tanh(h))


def one_update(exp_dir, dtype, device="cpu", model=None, max_grad_norm=0.0, batches=None, init_scale=1.0):
    model = (model or DtypeRecorder(seed=0)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = new_training_params(exp_dir=exp_dir, num_epochs=1, save_every_n=0, valid_interval=0, log_interval=0,
                                 max_grad_norm=max_grad_norm)
    batches = batches or [{k: v.to(device) for k, v in make_batch(3, rows=3).items()}]
    trainer = Trainer(params, model, opt, FixedLRScheduler(opt), list_loader(batches), masked_loss, device,
                      MixedPrecision(dtype, device, init_scale=init_scale))
    trainer.fit()
    return trainer


def test_bf16_autocasts_on_the_cpu_without_a_scaler(tmp_path):
    trainer = one_update(tmp_path, "bf16")
    assert trainer.model.seen == torch.bfloat16
    assert not trainer.precision.scaling and not trainer.precision.scaler.is_enabled()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    # the update is the plain SGD step on the gradient of the bf16-autocast loss
    ref = DtypeRecorder(seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = masked_loss(ref, make_batch(3, rows=3), True)
    loss.backward()
    for p, q in zip(ref.parameters(), trainer.model.parameters(), strict=True):
        assert torch.allclose(p.detach() - 0.1 * p.grad, q.detach(), rtol=0, atol=1e-7)
    # a float32 step differs by more than that: the step did run in bf16
    f32 = one_update(tmp_path / "f32", "float32").model
    assert f32.seen == torch.float32
    assert float((f32.proj.weight - trainer.model.proj.weight).detach().abs().max()) > 1e-5


def test_fp16_off_cuda_falls_back_to_float32(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        precision = MixedPrecision("fp16", "cpu")
    assert precision.dtype == "float32" and not precision.scaling
    assert "fp16 needs CUDA" in caplog.text
    assert MixedPrecision(True, "cpu").dtype == "float32" and MixedPrecision(False, "cpu").dtype == "float32"
    with pytest.raises(ValueError, match="float32, bf16, fp16"):
        MixedPrecision("half", "cpu")
    assert one_update(tmp_path, "fp16").model.seen == torch.float32


def test_max_grad_norm_clips_the_update_and_zero_turns_it_off(tmp_path):
    class Plane(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2))

        def forward(self, x):
            return x

    def loss(model, batch, is_training):  # gradient (3, 4), norm 5
        return (model.w * torch.tensor([3.0, 4.0])).sum(), MetricsTracker(frames=1.0)

    def run(exp_dir, max_grad_norm):
        model = Plane()
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        params = new_training_params(exp_dir=exp_dir, num_iters=1, save_every_n=0, valid_interval=0,
                                     log_interval=0, max_grad_norm=max_grad_norm)
        t = Trainer(params, model, opt, FixedLRScheduler(opt), RandomBatches(), loss, "cpu",
                    MixedPrecision("float32", "cpu"))
        t.fit()
        return t

    clipped = run(tmp_path / "a", 1.0)
    assert clipped.last_grad_norm == pytest.approx(5.0)
    assert torch.allclose(clipped.model.w.detach(), torch.tensor([-0.6, -0.8]))
    free = run(tmp_path / "b", 0.0)
    assert free.last_grad_norm is None
    assert torch.allclose(free.model.w.detach(), torch.tensor([-3.0, -4.0]))


@needs_cuda
def test_fp16_on_cuda_scales_and_clips_after_unscaling(tmp_path):
    trainer = one_update(tmp_path, "fp16", device="cuda", max_grad_norm=1e-3, init_scale=1024.0)
    assert trainer.model.seen == torch.float16 and trainer.precision.scaling
    assert trainer.precision.scaler.is_enabled()
    # the recorded norm is that of the unscaled gradient, not 1024 times it
    ref = DtypeRecorder(seed=0).cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        loss, _ = masked_loss(ref, {k: v.cuda() for k, v in make_batch(3, rows=3).items()}, True)
    loss.backward()
    norm = torch.nn.utils.get_total_norm([p.grad for p in ref.parameters()])
    assert trainer.last_grad_norm == pytest.approx(float(norm), rel=1e-2)


@needs_cuda
def test_bf16_on_cuda(tmp_path):
    trainer = one_update(tmp_path, "bf16", device="cuda")
    assert trainer.model.seen == torch.bfloat16 and not trainer.precision.scaling
