"""Parity of the ACE-Step v1 transformer, its LoRA views and its schedules with the reference outputs.

Everything is read from ``$SHIRABE_FIXTURES/acestep_tiny`` (default ``tests/fixtures``): a
random-weight 2-layer checkpoint in the released file format, inputs, and the outputs the
reference implementation computed for them (see that folder's README for every array).
Tolerances are the README's: model outputs and losses atol/rtol 1e-4, σ tables atol 1e-6,
timesteps atol 1e-4, counts and indices exact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from acestep import schedule as S
from acestep.models import load_transformer, objective
from acestep.models.lora import adapter_from_peft, load_lora, read_lora_config, read_lora_file

pytestmark = pytest.mark.usefixtures("single_torch_thread")
FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES") or Path(__file__).resolve().parent.parent / "fixtures")
TINY = FIXTURES / "acestep_tiny"
INPUTS = ["hidden_states", "attention_mask", "encoder_text_hidden_states", "text_attention_mask", "speaker_embeds",
          "lyric_token_idx", "lyric_mask", "timestep"]
ADAPTERS = ["lora_transformer_only", "lora_zh_rap_config"]


def close(actual, expected, atol=1e-4, rtol=1e-4):
    expected = torch.as_tensor(np.asarray(expected))
    actual = torch.as_tensor(actual).detach().to(expected.dtype)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def cases():
    return np.load(TINY / "cases.npz")


@pytest.fixture(scope="module")
def schedule():
    return np.load(TINY / "schedule.npz")


@pytest.fixture(scope="module")
def model():
    return load_transformer(TINY)


def case1_inputs(cases) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(cases[f"case1_{name}"]) for name in INPUTS}


def ssl_lists(cases) -> list[list[torch.Tensor]]:
    return [[torch.from_numpy(cases[f"case3_ssl_{name}_b{i}"]) for i in range(2)] for name in ("mert", "mhubert")]


def test_case1_sample_and_intermediates(model, cases):
    x = case1_inputs(cases)
    with torch.no_grad():
        context, context_mask = model.encode(x["encoder_text_hidden_states"], x["text_attention_mask"],
                                             x["speaker_embeds"], x["lyric_token_idx"], x["lyric_mask"])
        out, inter = model.decode(x["hidden_states"], x["attention_mask"], context, context_mask, x["timestep"],
                                  return_intermediates=True)
        full = model(**x, return_dict=True)
    close(context, cases["case1_encoder_hidden_states"])
    close(context_mask, cases["case1_encoder_hidden_mask"], atol=0, rtol=0)
    close(context[:, 1 + 10:], cases["case1_lyric_proj_out"])
    for name in ("embedded_timestep", "temb", "proj_in_out", "block0_out", "block1_out"):
        close(inter[name], cases[f"case1_{name}"])
    close(out.sample, cases["case1_sample"])
    close(full.sample, cases["case1_sample"])
    assert full.proj_losses == []


def test_case2_controlnet(model, cases):
    with torch.no_grad():
        out = model(**case1_inputs(cases),
                    block_controlnet_hidden_states=torch.from_numpy(cases["case2_block_controlnet_hidden_states"]),
                    controlnet_scale=float(cases["case2_controlnet_scale"]))
    close(out.sample, cases["case2_sample"])
    assert (out.sample - torch.from_numpy(cases["case1_sample"])).abs().max() > 1e-2


def test_case3_repa_losses(model, cases):
    with torch.no_grad():
        out = model(**case1_inputs(cases), ssl_hidden_states=ssl_lists(cases))
    close(out.sample, cases["case3_sample"])
    assert [name for name, _ in out.proj_losses] == ["mert", "m-hubert"]
    close(out.proj_losses[0][1], cases["case3_proj_loss_mert"])
    close(out.proj_losses[1][1], cases["case3_proj_loss_mhubert"])


def test_case1_tuple_return(model, cases):
    with torch.no_grad():
        sample, losses = model(**case1_inputs(cases), return_dict=False)
    close(sample, cases["case1_sample"])
    assert losses == []


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("view,weight", [("inmemory", 1.0), ("pipeline_w1", 1.0), ("pipeline_w0p5", 0.5)])
def test_lora_views(cases, adapter, view, weight):
    model = load_transformer(TINY)
    folder = TINY / adapter
    settings = read_lora_config(folder / "lora_config_used.json") if view == "inmemory" else None
    merged = load_lora(model, folder, lora_weight=weight, settings=settings)
    assert len(merged) == {"lora_transformer_only": 16, "lora_zh_rap_config": 23}[adapter]
    with torch.no_grad():
        out = model(**case1_inputs(cases)).sample
    close(out, cases[f"{adapter}_case1_sample_{view}"])


def test_lora_inmemory_view_through_peft(cases):
    """peft with the trainer's LoraConfig (rslora) and the file's tensors gives the in-memory output."""
    import peft

    folder = TINY / "lora_zh_rap_config"
    settings = read_lora_config(folder / "lora_config_used.json")
    model = load_transformer(TINY)
    config = peft.LoraConfig(r=settings.rank, lora_alpha=settings.alpha, use_rslora=settings.use_rslora,
                             target_modules=list(settings.target_modules))
    wrapped = peft.get_peft_model(model, config)
    adapter = read_lora_file(folder)
    held = adapter_from_peft(wrapped)
    assert sorted(held) == sorted(adapter)
    with torch.no_grad():
        for name, (a, b) in adapter.items():
            held[name][0].copy_(a)
            held[name][1].copy_(b)
        out = wrapped(**case1_inputs(cases)).sample
    close(out, cases["lora_zh_rap_config_case1_sample_inmemory"])


@pytest.mark.parametrize("prefix", ["train", "trainpad"])
def test_training_step(model, cases, prefix):
    """One trainer step: timestep draw, noising, velocity, x0 estimate, masked MSE, REPA term."""
    t = np.load(TINY / "training_case.npz")
    index, timestep, sigma = S.training_draw(torch.from_numpy(t["train_u"]))
    assert index.tolist() == t["train_index"].tolist()
    close(timestep, t["train_timestep"], atol=1e-4, rtol=0)
    close(sigma, t["train_sigma"], atol=1e-6, rtol=0)
    x0, noise = torch.from_numpy(t["train_x0"]), torch.from_numpy(t["train_noise"])
    x_t = objective.noisy_latents(x0, noise, sigma)
    close(x_t, t["train_x_t"], atol=1e-6, rtol=0)
    x = case1_inputs(cases)
    x.update(hidden_states=x_t, attention_mask=torch.from_numpy(t[f"{prefix}_attention_mask"]), timestep=timestep)
    with torch.no_grad():
        out = model(**x, ssl_hidden_states=ssl_lists(cases))
    close(out.sample, t[f"{prefix}_v"])
    x0_hat = objective.x0_from_velocity(out.sample, x_t, sigma)
    close(x0_hat, t[f"{prefix}_x0_hat"])
    denoising = objective.denoising_loss(x0_hat, x0, x["attention_mask"])
    close(denoising, t[f"{prefix}_logged_denoising_loss"])
    close(out.proj_losses[0][1], t[f"{prefix}_logged_mert_loss"])
    close(out.proj_losses[1][1], t[f"{prefix}_logged_mhubert_loss"])
    close(objective.total_loss(denoising, out.proj_losses, 1.0), t[f"{prefix}_loss_total"])


def test_training_table(schedule):
    sigmas, timesteps = S.training_table()
    close(sigmas, schedule["train_sigmas"], atol=1e-6, rtol=0)
    close(timesteps, schedule["train_timesteps"], atol=1e-4, rtol=0)


def test_logit_normal_draw(schedule):
    index, timesteps, sigmas = S.training_draw(torch.from_numpy(schedule["logitnormal_u"]))
    assert index.tolist() == schedule["logitnormal_index"].tolist()
    close(timesteps, schedule["logitnormal_timesteps"], atol=1e-4, rtol=0)
    close(sigmas, schedule["logitnormal_sigmas"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("steps", [10, 60, 27])
def test_inference_schedule(schedule, steps):
    timesteps, sigmas = S.inference_schedule(steps)
    assert timesteps.shape == (steps,) and sigmas.shape == (steps + 1,)
    close(timesteps, schedule[f"infer{steps}_timesteps"], atol=1e-4, rtol=0)
    close(sigmas, schedule[f"infer{steps}_sigmas"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("position", [0, 3])
def test_euler_step(schedule, position):
    assert S.omega_rescale(10) == pytest.approx(float(schedule["euler_omega_after_rescale"]), abs=1e-12)
    timesteps, sigmas = S.inference_schedule(int(schedule["euler_num_inference_steps"]))
    index = S.step_index(timesteps[position], timesteps)
    assert index == position
    out = S.euler_step(torch.from_numpy(schedule["euler_sample"]), torch.from_numpy(schedule["euler_model_output"]),
                       sigmas[index], sigmas[index + 1], omega=10)
    close(out, schedule[f"euler_step{position}_prev_sample"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("tag", ["0p3", "0p5", "0p7", "0p9"])
def test_audio2audio_start(schedule, tag):
    strength = float(tag.replace("p", "."))
    assert strength in schedule["a2a_strengths"].tolist()
    start = S.audio2audio_start(torch.from_numpy(schedule["a2a_ref_latents"]), torch.from_numpy(schedule["a2a_noise"]),
                                strength, int(schedule["a2a_infer_steps"]))
    key = f"a2a_s{tag}_"
    assert start.mix_sigma == pytest.approx(float(schedule[key + "mix_sigma"]), abs=1e-7)
    assert start.num_steps == int(schedule[key + "num_steps"])
    close(start.timesteps, schedule[key + "timesteps"], atol=1e-4, rtol=0)
    close(start.sigmas, schedule[key + "sigmas"], atol=1e-6, rtol=0)
    close(start.latents, schedule[key + "noisy_latents"], atol=1e-6, rtol=0)
