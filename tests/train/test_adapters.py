"""Adapter-only checkpoints of a peft LoRA model, and the gradient-checkpointing switch."""

import pytest
import torch
from train_testlib import RandomBatches, Regressor, masked_loss

from shirabe.cli import InputError
from shirabe.train.checkpoint import safe_load
from shirabe.train.loop import Trainer, enable_gradient_checkpointing, new_training_params
from shirabe.train.lr_scheduler import FixedLRScheduler
from shirabe.train.precision import MixedPrecision

peft = pytest.importorskip("peft")


def lora_model(rank=2):
    base = Regressor(seed=0)
    model = peft.get_peft_model(base, peft.LoraConfig(r=rank, lora_alpha=4, target_modules=["proj"]))
    torch.manual_seed(9)
    for name, p in model.named_parameters():  # B starts at zero; make the first steps move A too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def lora_trainer(exp_dir, num_iters, model=None):
    model = model or lora_model()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    params = new_training_params(exp_dir=exp_dir, num_iters=num_iters, save_every_n=2, valid_interval=0,
                                 log_interval=0, average_period=1)
    avg = lora_model().double()
    return Trainer(params, model, opt, FixedLRScheduler(opt), RandomBatches(seed=1), masked_loss, "cpu",
                   MixedPrecision("float32", "cpu"), model_avg=avg)


def test_checkpoints_hold_only_the_adapters_and_resume_restores_them(tmp_path):
    straight = lora_trainer(tmp_path / "a", 4)
    assert straight.adapter_only
    base_before = {k: v.clone() for k, v in straight.model.state_dict().items() if "lora_" not in k}
    straight.fit()
    ckpt = safe_load(tmp_path / "a" / "checkpoint-2.pt")
    trainable = sorted(n for n, p in straight.model.named_parameters() if p.requires_grad)
    assert sorted(ckpt["model"]) == sorted(ckpt["model_avg"]) == trainable
    assert len(trainable) == 2 and all("lora_" in k for k in trainable)  # lora_A and lora_B of proj
    # the base weights did not change; the adapters did
    for k, v in straight.model.state_dict().items():
        if k in base_before:
            assert torch.equal(v, base_before[k]), k
    assert not torch.equal(ckpt["model"][trainable[0]], safe_load(tmp_path / "a" / "checkpoint-4.pt")["model"][trainable[0]])

    lora_trainer(tmp_path / "b", 2).fit()
    resumed = lora_trainer(tmp_path / "b", 4, model=lora_model())
    before = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    resumed.resume(tmp_path / "b" / "checkpoint-2.pt", mid_epoch=True)
    changed = sorted(k for k, v in resumed.model.state_dict().items() if not torch.equal(v, before[k]))
    assert changed == trainable  # resuming touched exactly the adapters
    resumed.fit()
    for (k, v), w in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_adapters_of_another_rank_are_refused(tmp_path):
    lora_trainer(tmp_path, 2).fit()
    other = lora_trainer(tmp_path / "x", 2, model=lora_model(rank=3))
    with pytest.raises(InputError, match=r"checkpoint-2\.pt: .*lora_A.* has shape \(2, 4\), the model's is \(3, 4\)"):
        other.resume(tmp_path / "checkpoint-2.pt", mid_epoch=True)


def test_gradient_checkpointing_switch(tmp_path):
    class Recomputing(Regressor):
        enabled = False

        def gradient_checkpointing_enable(self):
            self.enabled = True

    model = Recomputing()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = new_training_params(exp_dir=tmp_path, num_iters=1, gradient_checkpointing=True)
    Trainer(params, model, opt, FixedLRScheduler(opt), RandomBatches(), masked_loss, "cpu",
            MixedPrecision("float32", "cpu"))
    assert model.enabled
    with pytest.raises(InputError, match="^--gradient-checkpointing: Regressor cannot recompute activations"):
        Trainer(new_training_params(exp_dir=tmp_path, num_iters=1, gradient_checkpointing=True), Regressor(), opt,
                FixedLRScheduler(opt), RandomBatches(), masked_loss, "cpu", MixedPrecision("float32", "cpu"))


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # from peft
def test_gradient_checkpointing_of_a_transformers_model_through_peft():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16)
    lm = transformers.LlamaForCausalLM(config)
    model = peft.get_peft_model(lm, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    def recomputing():
        return any(getattr(m, "gradient_checkpointing", False) for m in lm.modules())

    assert not recomputing()
    enable_gradient_checkpointing(model)
    assert recomputing()
    model.train()
    ids = torch.randint(0, 32, (2, 8))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
