"""SeedSVC's F0 path: a fresh F0 cross-attention leaves V2 untouched; the band lines F0 up per frame."""

import torch
from seedsvc_testlib import V1_F0, V2_TINY

from seedsvc.models import F0CrossAttention, load_v2_cfm
from seedsvc.models.rope import rope_table


def svc_from_v2():
    cfm = load_v2_cfm(V2_TINY / "config.yaml", V2_TINY / "cfm.pth", with_f0=True)
    cfm.estimator.f0_encoder.load_v1(V1_F0 / "v1_f0_embedding.pth")
    return cfm


def f0_track(t_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    f0 = 100.0 + 500.0 * torch.rand(1, t_len, generator=g, dtype=torch.float64)
    f0[:, ::5] = 0.0
    return f0


def test_fresh_cross_attention_equals_v2_bit_for_bit(v2_cfm, v2_cases):
    svc = svc_from_v2()
    assert len(svc.estimator.f0_cross_attention) == len(svc.estimator.transformer.layers)
    c = v2_cases
    args = (c["est_x"], c["est_prompt_x"], c["est_x_lens"], c["est_t"], c["est_style"], c["est_cond"])
    f0 = f0_track(c["est_x"].shape[-1]).repeat(2, 1)
    with torch.no_grad():
        assert torch.equal(svc.estimator(*args, f0=f0), v2_cfm.estimator(*args))
    kw = dict(n_timesteps=4, inference_cfg_rate=[0.7, 0.3], z=c["cfm_z"])
    base = v2_cfm.inference(c["cfm_mu"], c["cfm_x_lens"], c["cfm_prompt"], c["cfm_style"], **kw)
    svc_out = svc.inference(c["cfm_mu"], c["cfm_x_lens"], c["cfm_prompt"], c["cfm_style"], f0=f0_track(40), **kw)
    assert torch.equal(svc_out, base)
    torch.testing.assert_close(svc_out, c["cfm_out_a07_b03"], atol=1e-6, rtol=0)


def test_opened_gate_uses_f0_only_in_conditioned_branches(v2_cfm, v2_cases):
    svc = svc_from_v2()
    with torch.no_grad():
        for m in svc.estimator.f0_cross_attention:
            m.gate.fill_(0.5)
    c = v2_cases
    t_len = c["cfm_mu"].shape[1]
    x = c["cfm_z"]
    prompt_x = torch.zeros_like(x)
    prompt_x[..., :12] = c["cfm_prompt"]
    t = torch.tensor([0.4])
    with torch.no_grad():
        full = svc.estimator(x, prompt_x, c["cfm_x_lens"], t, c["cfm_style"], c["cfm_mu"], f0=f0_track(t_len))
        v2_full = v2_cfm.estimator(x, prompt_x, c["cfm_x_lens"], t, c["cfm_style"], c["cfm_mu"])
        dropped = svc.estimator(x, prompt_x, c["cfm_x_lens"], t, c["cfm_style"], c["cfm_mu"],
                                f0=f0_track(t_len), f0_keep=torch.zeros(1))
    assert (full - v2_full).abs().max() > 1e-3
    assert torch.equal(dropped, v2_full)
    calls = []
    hook = svc.estimator.register_forward_hook(lambda m, a, kw_, out: calls.append(kw_["f0_keep"].tolist()),
                                               with_kwargs=True)
    try:
        svc.inference(c["cfm_mu"], c["cfm_x_lens"], c["cfm_prompt"], c["cfm_style"], n_timesteps=1,
                      inference_cfg_rate=[0.7, 0.7], f0=f0_track(t_len), z=x)
        svc.inference(c["cfm_mu"], c["cfm_x_lens"], c["cfm_prompt"], c["cfm_style"], n_timesteps=1,
                      inference_cfg_rate=[0.7, 0.7], f0=f0_track(t_len), z=x, random_voice=True)
    finally:
        hook.remove()
    # batches: [full, content-only, uncond] and [content-only, uncond]
    assert calls == [[1.0, 1.0, 0.0], [1.0, 0.0]]


def test_band_limits_which_f0_frames_a_query_sees():
    torch.manual_seed(0)
    dim, t_len, band = 32, 20, 2
    attn = F0CrossAttention(dim, 4, context_dim=8, band=band)
    with torch.no_grad():
        attn.gate.fill_(1.0)
    h = torch.randn(1, t_len + 2, dim)
    ctx = torch.randn(1, t_len, 8)
    freqs = rope_table(64, dim // 4)[: t_len + 2]
    valid = torch.ones(1, t_len, dtype=torch.bool)
    keep = torch.ones(1)
    out = attn(h, ctx, freqs, valid, keep)
    ctx2 = ctx.clone()
    ctx2[:, 10] += 5.0
    out2 = attn(h, ctx2, freqs, valid, keep)
    changed = ((out2 - out).abs().amax(-1) > 0)[0]
    # sequence position 2 + i holds frame i; only frames 8..12 may change, prefix never
    assert changed.nonzero().flatten().tolist() == [2 + i for i in range(10 - band, 10 + band + 1)]
    # padded F0 frames are never looked at by valid queries
    valid[:, 15:] = False
    ctx3 = ctx.clone()
    ctx3[:, 15:] = 1e3
    a = attn(h, ctx, freqs, valid, keep)
    b = attn(h, ctx3, freqs, valid, keep)
    assert torch.equal(a[:, : 2 + 15], b[:, : 2 + 15])
    assert torch.isfinite(b).all()
