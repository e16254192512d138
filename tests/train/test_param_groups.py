"""parameter_groups_by_prefix: per-module learning rates from {name prefix: lr scale}."""

import pytest
import torch
from torch import nn

from shirabe.train.lr_scheduler import WarmupConstant
from shirabe.train.optim import parameter_groups_by_prefix


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.encoder = nn.Linear(4, 4)
        self.decoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))


def names_of(model, group):
    ids = {id(p) for p in group["params"]}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_longest_prefix_wins_and_the_rest_keep_the_base_rate():
    model = EncoderDecoder()
    model.embed.weight.requires_grad_(False)
    groups = parameter_groups_by_prefix(model, 1e-3, {"decoder.": 0.1, "decoder.1.": 0.5}, weight_decay=0.01)
    by_scale = {g["lr_scale"]: g for g in groups}
    assert sorted(by_scale) == [0.1, 0.5, 1.0]
    assert [by_scale[s]["lr"] for s in (0.1, 0.5, 1.0)] == pytest.approx([1e-4, 5e-4, 1e-3])
    assert names_of(model, by_scale[1.0]) == ["encoder.bias", "encoder.weight"]  # frozen embed left out
    assert names_of(model, by_scale[0.1]) == ["decoder.0.bias", "decoder.0.weight"]
    assert names_of(model, by_scale[0.5]) == ["decoder.1.bias", "decoder.1.weight"]
    assert {g["name"] for g in groups} == {"*", "decoder.", "decoder.1."}
    assert all(g["weight_decay"] == 0.01 for g in groups)
    # an optimizer and a schedule take them; the schedule keeps the ratios
    opt = torch.optim.AdamW(groups)
    sched = WarmupConstant(opt, warmup_batches=2)
    sched.step_batch(1)
    assert sorted(sched.get_last_lr()) == pytest.approx([5e-5, 2.5e-4, 5e-4])


def test_scale_zero_leaves_parameters_out_and_unknown_prefixes_are_errors():
    model = EncoderDecoder()
    groups = parameter_groups_by_prefix(model, 1.0, {"embed.": 0.0})
    assert "embed.weight" not in [n for g in groups for n in names_of(model, g)]
    with pytest.raises(ValueError, match="'decodr.' names no parameter"):
        parameter_groups_by_prefix(model, 1.0, {"decodr.": 0.1})
