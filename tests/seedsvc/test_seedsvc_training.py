"""What each SeedSVC phase trains and at which rate, the model the loop trains, older command lines."""

import pytest
import torch
import yaml

from seedsvc.models import build_cfm, build_length_regulator
from seedsvc.training import SeedSVCTrainingModel, lr_scales, select_trainable
from shirabe.train.optim import parameter_groups_by_prefix

CONFIG = yaml.safe_load("""
cfm:
  estimator: {hidden_dim: 32, depth: 2, num_heads: 2, in_channels: 80, content_dim: 32, style_encoder_dim: 192,
              block_size: 512, class_dropout_prob: 0.1, time_as_token: true, style_as_token: true,
              uvit_skip_connection: false}
cfm_length_regulator: {channels: 32, is_discrete: false, in_channels: 16, sampling_ratios: [1, 1], codebook_size: 16}
f0: {enabled: true, n_f0_bins: 256, embedding_dim: 768, band: 2, num_heads: 2}
""")


def groups_for(phase, use_f0=True, lr=1.0, dit_lr_scale=0.2):
    torch.manual_seed(0)
    model = SeedSVCTrainingModel(build_cfm(CONFIG, with_f0=use_f0), build_length_regulator(CONFIG), use_f0)
    select_trainable(model.cfm, model.length_regulator, phase)
    groups = parameter_groups_by_prefix(model, lr, lr_scales(model.cfm, phase, dit_lr_scale))
    names = {id(p): n for n, p in model.named_parameters()}
    return model, {g["lr"]: sorted(names[id(p)] for p in g["params"]) for g in groups}


def is_f0(name):
    return name.startswith(("cfm.estimator.f0_encoder.proj.", "cfm.estimator.f0_cross_attention."))


def test_phase_groups():
    model, by_lr = groups_for(0, use_f0=False)
    assert list(by_lr) == [1.0]
    assert any(n.startswith("length_regulator.") for n in by_lr[1.0])
    assert not any(n.startswith("cfm.estimator.x_embedder.") for n in by_lr[1.0])  # always frozen

    model, by_lr = groups_for(1)
    assert list(by_lr) == [1.0] and by_lr[1.0] and all(is_f0(n) for n in by_lr[1.0])

    model, by_lr = groups_for(2)
    assert sorted(by_lr) == [pytest.approx(0.2), 1.0]
    assert all(is_f0(n) for n in by_lr[1.0])
    dit = by_lr[min(by_lr)]
    assert dit and not any(is_f0(n) or n.startswith("length_regulator.") for n in dit)
    assert "cfm.estimator.f0_encoder.embedding.weight" not in dit + by_lr[1.0]  # the V1 embedding stays frozen

    _, by_lr = groups_for(1, use_f0=False)  # the no-F0 baseline fine-tunes the DiT at the lower rate
    assert list(by_lr) == [pytest.approx(0.2)]


def test_release_state_is_upstreams_layout():
    model, _ = groups_for(1)
    state = model.release_state(7, 1)
    assert state["iters"] == 7 and state["phase"] == 1 and state["epoch"] == 0
    assert state["net"]["cfm"].keys() == model.cfm.state_dict().keys()
    assert state["net"]["length_regulator"].keys() == model.length_regulator.state_dict().keys()


def test_the_log_names_the_parts_and_their_rates():
    from seedsvc.training import describe_groups

    model, _ = groups_for(2, lr=1e-3)
    groups = parameter_groups_by_prefix(model, 1e-3, lr_scales(model.cfm, 2, 0.2))
    n_f0 = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and is_f0(n))
    n_dit = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and not is_f0(n))
    assert sorted(describe_groups(model, groups).split(", ")) == [f"dit {n_dit} @ lr 0.0002", f"f0 {n_f0} @ lr 0.001"]
