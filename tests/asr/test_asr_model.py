"""The recognizer network: output lengths, padding invariance, size, config round trip."""

from __future__ import annotations

import math

import pytest
import torch

from shirabe.asr.model import ModelConfig, PhoneCTCModel, num_parameters

SMALL = {"conv_channels": 16, "conv_blocks": 2, "hidden_size": 8, "num_layers": 2}


@pytest.mark.parametrize("subsampling", [1, 2, 4])
def test_output_frames(subsampling):
    torch.manual_seed(0)
    model = PhoneCTCModel(ModelConfig(num_classes=5, subsampling=subsampling, **SMALL)).eval()
    for frames in (1, 2, 3, 4, 5, 17, 40):
        log_probs, out_lens = model(torch.randn(1, frames, 100), torch.tensor([frames]))
        expected = math.ceil(frames / subsampling)
        assert int(out_lens[0]) == expected and log_probs.shape == (1, expected, 5)
        assert torch.allclose(log_probs.exp().sum(-1), torch.ones(1, expected), atol=1e-5)


def test_an_utterance_decodes_the_same_alone_and_padded():
    torch.manual_seed(0)
    model = PhoneCTCModel(ModelConfig(num_classes=7, **SMALL)).eval()
    short, long = torch.randn(37, 100) * 3 - 5, torch.randn(90, 100) * 3 - 5
    batch = torch.zeros(2, 90, 100)
    batch[0, :37], batch[1] = short, long
    with torch.no_grad():
        both, lens = model(batch, torch.tensor([37, 90]))
        alone, alone_lens = model(short[None], torch.tensor([37]))
    assert lens.tolist() == [10, 23] and alone_lens.tolist() == [10]
    assert torch.allclose(both[0, :10], alone[0], atol=1e-5)


def test_default_size_and_config_round_trip():
    config = ModelConfig(num_classes=41)
    assert 0.5e6 < num_parameters(PhoneCTCModel(config)) < 3e6
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model config field"):
        ModelConfig.from_dict({**config.to_dict(), "heads": 4})
    with pytest.raises(ValueError, match="subsampling must be one of"):
        ModelConfig(num_classes=41, subsampling=3)
