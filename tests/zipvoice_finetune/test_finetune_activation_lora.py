"""LoRA / DoRA on ActivationDropoutAndLinear: the low-rank path sees act(x), as the weight does."""

import pytest
import torch
from finetune_testlib import FIXTURE, build_tiny, random_batches, snapshot, train_steps

from zipvoice.finetune import FinetuneOptions, prepare_model_for_finetuning
from zipvoice.finetune.adapters import PEFT_PREFIX
from zipvoice.models.scaling import ActivationDropoutAndLinear

TARGETS = ("feed_forward2.out_proj", "conv_module1.out_proj")


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_adapted_projection_follows_the_formula(use_dora):
    plain = build_tiny()
    names = [n for n, m in plain.named_modules() if n.startswith("fm_decoder.")
             and isinstance(m, ActivationDropoutAndLinear) and n.endswith(TARGETS)]
    assert len(names) == 10  # 5 stacks x 1 layer x 2 projections
    opts = FinetuneOptions(use_lora=not use_dora, use_dora=use_dora, lora_rank=3, lora_alpha=6,
                           lora_dropout=0.0, lora_target_modules=",".join(TARGETS))
    model = prepare_model_for_finetuning(plain, opts, init_checkpoint=FIXTURE / "model.pt").eval()
    torch.manual_seed(0)
    for name in names:
        layer = model.get_base_model().get_submodule(name)
        base = layer.get_base_layer()
        assert isinstance(base, ActivationDropoutAndLinear)
        with torch.no_grad():
            layer.lora_B["default"].weight.normal_()
        x = torch.randn(7, 2, base.in_features)
        h = base._act(x)
        w, b = base.weight.detach(), base.bias.detach()
        a_mat = layer.lora_A["default"].weight.detach()
        b_mat = layer.lora_B["default"].weight.detach()
        scale = 6 / 3
        delta = scale * b_mat @ a_mat
        if use_dora:
            magnitude = layer.lora_magnitude_vector["default"].weight.detach()
            torch.testing.assert_close(magnitude, w.norm(dim=1))  # DoRA starts at the weight's row norms
            expected = (h @ (w + delta).T) * (magnitude / (w + delta).norm(dim=1)) + b
        else:
            expected = h @ (w + delta).T + b
        with torch.no_grad():
            out = layer(x)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert (out - (h @ w.T + b)).abs().max() > 1e-3
        assert not base.project_only


def test_only_the_adapters_of_activation_linears_train():
    opts = FinetuneOptions(use_lora=True, lora_rank=2, lora_alpha=4, lora_dropout=0.0,
                           lora_target_modules="feed_forward1.out_proj")
    model = prepare_model_for_finetuning(build_tiny(), opts, init_checkpoint=FIXTURE / "model.pt")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("feed_forward1.out_proj.lora_" in n for n in trainable)
    before = snapshot(model)
    train_steps(model, random_batches(46, 2), lr=2e-2)
    after = snapshot(model)
    for n in before:
        assert torch.equal(before[n], after[n]) != (n in trainable), n
    assert all(n.startswith(PEFT_PREFIX) for n in trainable)
