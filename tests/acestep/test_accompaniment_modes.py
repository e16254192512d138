"""The two accompaniment modes' model pieces: the zero-start ControlNet, the image2image flow, the structure loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from acestep.accompaniment.controlnet import ControlEncoder
from acestep.accompaniment.flow import path_point, sample, source_latents, velocity_target
from acestep.accompaniment.losses import structure_loss
from acestep.models import load_transformer
from acestep.models.objective import denoising_loss, x0_from_velocity
from acestep.schedule import inference_schedule, training_draw

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "acestep_tiny"
INPUTS = ("hidden_states", "attention_mask", "encoder_text_hidden_states", "text_attention_mask", "speaker_embeds",
          "lyric_token_idx", "lyric_mask", "timestep")


@pytest.fixture(scope="module")
def base():
    model = load_transformer(FIXTURE)
    cases = np.load(FIXTURE / "cases.npz")
    inputs = {k: torch.from_numpy(cases[f"case1_{k}"]) for k in INPUTS}
    return model, inputs


def encoder_for(model, layers=(0, 1)):
    torch.manual_seed(0)
    return ControlEncoder(model.config.inner_dim, layers, dim=32, depth=2, heads=4)


def test_a_fresh_controlnet_leaves_the_base_output_unchanged_bit_for_bit(base):
    model, inputs = base
    control = encoder_for(model)
    vocal = torch.randn_like(inputs["hidden_states"])
    with torch.no_grad():
        plain = model(**inputs).sample
        residuals = control(vocal, inputs["timestep"], inputs["attention_mask"])
        controlled = model(**inputs, block_residuals=residuals).sample
    assert set(residuals) == {0, 1}
    assert torch.equal(plain, controlled)


def test_trained_injections_change_the_output_and_every_module_trains_and_saves(base):
    model, inputs = base
    control = encoder_for(model, layers=(1,))
    names = {k.split(".")[0] for k in control.state_dict()}
    assert {"patch_embed", "time_embed", "blocks", "out_proj", "out_norm", "injections"} <= names
    vocal = torch.randn_like(inputs["hidden_states"])
    residuals = control(vocal, inputs["timestep"], inputs["attention_mask"])
    model(**inputs, block_residuals=residuals).sample.square().mean().backward()
    # at the zero start only the injections receive a gradient
    assert control.injections["1"].weight.grad.abs().sum() > 0
    assert control.out_proj.weight.grad is None or control.out_proj.weight.grad.abs().sum() == 0
    with torch.no_grad():
        nn.init.normal_(control.injections["1"].weight, std=0.1)
    control.zero_grad()
    residuals = control(vocal, inputs["timestep"], inputs["attention_mask"])
    out = model(**inputs, block_residuals=residuals).sample
    out.square().mean().backward()
    with torch.no_grad():
        assert (out - model(**inputs).sample).abs().max() > 1e-3
    for name, p in control.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # padded frames get no control signal
    assert residuals[1][1, 17:].abs().max() == 0


def test_image2image_inference_starts_where_training_starts():
    timesteps, sigmas = inference_schedule(10)
    assert float(sigmas[0]) == 1.0 and float(timesteps[0]) == 1000.0
    vocal, noise, x0 = torch.randn(3, 2, 8, 16, 5).unbind(0)
    src = source_latents(vocal, noise, 0.3)
    assert torch.allclose(src, 0.3 * vocal + 0.7 * noise)
    assert torch.equal(path_point(x0, src, torch.ones(2)), src)
    assert torch.equal(path_point(x0, src, torch.zeros(2)), x0)
    # the x0-preconditioned prediction of the exact velocity is the target
    v = velocity_target(x0, src)
    sigma = torch.tensor([0.25, 0.8])
    assert torch.allclose(x0_from_velocity(v, path_point(x0, src, sigma), sigma), x0, atol=1e-6)
    with pytest.raises(ValueError, match="reference_strength"):
        source_latents(vocal, noise, 1.0)


def test_a_trained_toy_flow_maps_vocal_sources_to_their_targets():
    """2-D toy: target = a fixed affine map of the 'vocal'; the network sees only x_t and t."""
    torch.manual_seed(0)
    rotation = torch.tensor([[0.0, -0.8], [0.8, 0.0]])
    offset = torch.tensor([0.5, -0.25])

    def target_of(vocal):
        return vocal @ rotation.T + offset

    strength = 0.9
    net = nn.Sequential(nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def velocity(x, timestep):
        return net(torch.cat([x, (timestep / 1000.0)[:, None]], dim=1))

    for _ in range(1500):
        vocal = torch.randn(256, 2)
        x0 = target_of(vocal)
        src = source_latents(vocal, torch.randn(256, 2), strength)
        _, timestep, sigma = training_draw(torch.randn(256))
        x_t = path_point(x0, src, sigma)
        x0_hat = x0_from_velocity(velocity(x_t, timestep), x_t, sigma)
        loss = denoising_loss(x0_hat[:, :, None, None], x0[:, :, None, None], torch.ones(256, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    vocal = torch.randn(512, 2)
    x0 = target_of(vocal)
    mapped = sample(velocity, vocal, torch.randn(512, 2), strength, num_steps=30)
    error = (mapped - x0).norm(dim=1).mean()
    untouched = (source_latents(vocal, torch.randn(512, 2), strength) - x0).norm(dim=1).mean()
    # the 0.1·noise in the source leaves the vocal uncertain by ≈ 0.11 per axis, so even an exact flow
    # (which draws from the posterior) lands ≈ 0.16 from the target on average; measured 0.18
    assert error < 0.25
    assert error < 0.15 * untouched


def test_structure_loss_is_zero_for_the_target_and_counts_energy_shape():
    t = torch.linspace(0, 1, 12)
    vocal = torch.ones(1, 8, 16, 12) * t
    target = torch.ones(1, 8, 16, 12) * t.flip(0)
    assert structure_loss(target, target, vocal).item() == 0.0
    flat = torch.ones(1, 8, 16, 12)
    # hand computation: energies ∝ t², (1−t)², 1 → normalised dot products
    ev = t ** 2 / (t ** 2).norm()
    et = t.flip(0) ** 2 / (t.flip(0) ** 2).norm()
    ef = torch.ones(12) / 12 ** 0.5
    expected = ((ev * ef).sum() - (ev * et).sum()) ** 2
    assert structure_loss(flat, target, vocal).item() == pytest.approx(expected.item(), rel=1e-5)
