"""The V2 estimator, CFM sampler and length regulator against upstream's own outputs."""

import pytest
import torch
from seedsvc_testlib import V2_TINY

from seedsvc.models import load_v2_cfm, load_v2_length_regulator, read_net, sway_time_grid

# README: atol 1e-6 demands the bf16 RoPE table
EST_ATOL = 1e-6
CFM_ATOL = 1e-6


def est_inputs(c):
    return c["est_x"], c["est_prompt_x"], c["est_x_lens"], c["est_t"], c["est_style"], c["est_cond"]


def test_checkpoint_loads_with_every_key(v2_cfm):
    state = read_net(V2_TINY / "cfm.pth")["cfm"]
    own = v2_cfm.state_dict()
    assert set(own) == set(state) - {"estimator.transformer.causal_mask"}
    for k, v in own.items():
        assert torch.equal(v, state[k]), k
    assert own["estimator.transformer.freqs_cis"].dtype == torch.bfloat16
    assert not v2_cfm.training


def test_estimator_batch_with_padding(v2_cfm, v2_cases):
    with torch.no_grad():
        out = v2_cfm.estimator(*est_inputs(v2_cases))
    ref = v2_cases["est_out"]
    assert out.shape == ref.shape
    for b, n in enumerate(v2_cases["est_x_lens"].tolist()):
        torch.testing.assert_close(out[b, :, :n], ref[b, :, :n], atol=EST_ATOL, rtol=0)
    torch.testing.assert_close(out, ref, atol=EST_ATOL, rtol=0)


def test_estimator_short_item_alone(v2_cfm, v2_cases):
    i = int(v2_cases["est_short_index"])
    n = int(v2_cases["est_x_lens"][i])
    x, p, lens, t, s, cond = est_inputs(v2_cases)
    with torch.no_grad():
        out = v2_cfm.estimator(x[i : i + 1, :, :n], p[i : i + 1, :, :n], lens[i : i + 1], t[i : i + 1], s[i : i + 1], cond[i : i + 1, :n])
    torch.testing.assert_close(out, v2_cases["est_out_short_alone"], atol=EST_ATOL, rtol=0)


def test_sway_grid(v2_cases):
    torch.testing.assert_close(sway_time_grid(4), v2_cases["cfm_t_span"], atol=1e-7, rtol=0)


def cfm_run(cfm, c, rates, random_voice=False, z=None):
    return cfm.inference(
        c["cfm_mu"], c["cfm_x_lens"], c["cfm_prompt"], c["cfm_style"], int(c["cfm_n_timesteps"]),
        float(c["cfm_temperature"]), rates, random_voice=random_voice, z=z,
    )


def test_cfm_inference_draws_upstreams_noise(v2_cfm, v2_cases):
    torch.manual_seed(1238)  # the README's global seed before upstream's noise draw
    out = cfm_run(v2_cfm, v2_cases, [0.7, 0.7])
    torch.testing.assert_close(out, v2_cases["cfm_out"], atol=CFM_ATOL, rtol=0)
    p = v2_cases["cfm_prompt"].shape[-1]
    assert torch.count_nonzero(out[..., :p]) == 0


@pytest.mark.parametrize(
    "key,rates,random_voice",
    [
        ("cfm_out_a07_b03", [0.7, 0.3], False),
        ("cfm_out_a07_b00", [0.7, 0.0], False),
        ("cfm_out_a00_b07", [0.0, 0.7], False),
        ("cfm_out_a00_b00", [0.0, 0.0], False),
        ("cfm_out_random_voice_a07", [0.7, 0.7], True),
    ],
)
def test_cfm_guidance_variants(v2_cfm, v2_cases, key, rates, random_voice):
    out = cfm_run(v2_cfm, v2_cases, rates, random_voice, z=v2_cases["cfm_z"])
    torch.testing.assert_close(out, v2_cases[key], atol=CFM_ATOL, rtol=0)


def test_cfm_steps_see_upstreams_states(v2_cfm, v2_cases):
    seen = []
    est = v2_cfm.estimator
    calls = []

    def hook(_module, _args, output):
        calls.append(output.detach().clone())

    handle = est.register_forward_hook(hook)
    try:
        cfm_run(v2_cfm, v2_cases, [0.7, 0.7], z=v2_cases["cfm_z"])
    finally:
        handle.remove()
    seen = torch.stack(calls)
    torch.testing.assert_close(seen, v2_cases["cfm_step_est_out"], atol=CFM_ATOL, rtol=0)


def test_length_regulator(v2_cases):
    lr = load_v2_length_regulator(V2_TINY / "config.yaml", V2_TINY / "cfm.pth")
    with torch.no_grad():
        out, _ = lr(v2_cases["lr_tokens"], v2_cases["lr_ylens"])
    torch.testing.assert_close(out, v2_cases["lr_out"], atol=1e-6, rtol=0)
    assert torch.count_nonzero(out[1, int(v2_cases["lr_ylens"][1]) :]) == 0


def test_module_prefix_is_stripped(tmp_path, v2_cases):
    ckpt = torch.load(V2_TINY / "cfm.pth", weights_only=True)
    ckpt["net"] = {part: {f"module.{k}": v for k, v in sd.items()} for part, sd in ckpt["net"].items()}
    path = tmp_path / "ddp.pth"
    torch.save(ckpt, path)
    cfm = load_v2_cfm(V2_TINY / "config.yaml", path)
    with torch.no_grad():
        out = cfm.estimator(*est_inputs(v2_cases))
    torch.testing.assert_close(out, v2_cases["est_out"], atol=EST_ATOL, rtol=0)
