"""Our ZipVoice / ZipVoiceDistill reproduce upstream's outputs on the tiny fixture models."""

import numpy as np
import pytest
import torch
from zipvoice_testlib import TOLERANCE, unpad


def _max_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape, (tuple(ours.shape), ref.shape)
    return float(np.abs(ours.detach().numpy() - ref).max())


def _te_tokens(c):
    return [c["te_tokens_padded"][i, : c["te_tokens_lens"][i]].tolist() for i in range(len(c["te_tokens_lens"]))]


def _fm_inputs(c):
    return [torch.from_numpy(c[k]) for k in ("fm_xt", "fm_text_condition", "fm_speech_condition", "fm_padding_mask")]


@pytest.fixture(params=["zipvoice", "zipvoice_distill"])
def model_and_cases(request, tiny_model, tiny_distill, cases, cases_distill):
    if request.param == "zipvoice":
        return tiny_model, cases
    return tiny_distill, cases_distill


@torch.no_grad()
def test_text_embed(model_and_cases):
    model, c = model_and_cases
    embed, lens = model.forward_text_embed(_te_tokens(c))
    assert lens.tolist() == c["te_tokens_lens"].tolist()
    assert _max_diff(embed, c["te_embed"]) <= TOLERANCE


@pytest.mark.parametrize("speed,tag", [(1.0, "s10"), (1.3, "s13")])
@torch.no_grad()
def test_text_condition_inference(model_and_cases, speed, tag):
    model, c = model_and_cases
    cond, mask = model.forward_text_inference_ratio_duration(
        unpad(c["tc_tokens"]), unpad(c["tc_prompt_tokens"]), torch.from_numpy(c["tc_prompt_features_lens"]), speed
    )
    assert _max_diff(cond, c[f"tc_{tag}_text_condition"]) <= TOLERANCE
    np.testing.assert_array_equal(mask.numpy(), c[f"tc_{tag}_padding_mask"])


@torch.no_grad()
def test_text_condition_train(tiny_model, cases):
    cond, mask = tiny_model.forward_text_train(unpad(cases["tt_tokens"]), torch.from_numpy(cases["tt_features_lens"]))
    assert _max_diff(cond, cases["tt_text_condition"]) <= TOLERANCE
    np.testing.assert_array_equal(mask.numpy(), cases["tt_padding_mask"])


@pytest.mark.parametrize("t,tag", [(0.3, "t03"), (0.7, "t07")])
@torch.no_grad()
def test_fm_decoder_padded_batch(tiny_model, cases, t, tag):
    v = tiny_model.forward_fm_decoder(torch.tensor(t), *_fm_inputs(cases))
    assert _max_diff(v, cases[f"fm_v_{tag}"]) <= TOLERANCE


@pytest.mark.parametrize("t,tag", [(0.3, "t03"), (0.7, "t07")])
@torch.no_grad()
def test_guided_velocity(tiny_model, cases, t, tag):
    xt, text, speech, mask = _fm_inputs(cases)
    v = tiny_model.solver.model(torch.tensor(t), xt, text, speech, mask, guidance_scale=1.0)
    assert _max_diff(v, cases[f"fm_vcfg_{tag}_w10"]) <= TOLERANCE


@pytest.mark.parametrize("t,tag", [(0.3, "t03"), (0.4, "t04"), (0.7, "t07")])
@torch.no_grad()
def test_distill_decoder(tiny_distill, cases_distill, t, tag):
    c = cases_distill
    v = tiny_distill.forward_fm_decoder(torch.tensor(t), *_fm_inputs(c), guidance_scale=3.0)
    assert _max_diff(v, c[f"fm_v_{tag}_w30"]) <= TOLERANCE
    # the distill sampler passes w straight to the decoder
    v2 = tiny_distill.solver.model(torch.tensor(t), *_fm_inputs(c), guidance_scale=3.0)
    assert _max_diff(v2, c[f"fm_v_{tag}_w30"]) <= TOLERANCE


def test_full_sampling_from_seed(tiny_model, cases):
    c = cases
    torch.manual_seed(1237)
    out, lens, prompt_part, prompt_lens = tiny_model.sample(
        unpad(c["smp_tokens"]), unpad(c["smp_prompt_tokens"]), torch.from_numpy(c["smp_prompt_features"]),
        torch.tensor([c["smp_prompt_features"].shape[1]]), speed=1.0, t_shift=0.5, num_step=4, guidance_scale=1.0,
    )
    assert lens.tolist() == c["smp_out_lens"].tolist()
    assert _max_diff(out, c["smp_out"]) <= TOLERANCE
    assert prompt_part.shape == (1, 18, 100) and prompt_lens.tolist() == [18]
    # the seeded draw is exactly the stored initial noise
    torch.manual_seed(1237)
    out2, *_ = tiny_model.sample(
        unpad(c["smp_tokens"]), unpad(c["smp_prompt_tokens"]), torch.from_numpy(c["smp_prompt_features"]),
        torch.tensor([18]), speed=1.0, t_shift=0.5, num_step=4, guidance_scale=1.0,
        noise=torch.from_numpy(c["smp_x0"]),
    )
    assert _max_diff(out2, c["smp_out"]) <= TOLERANCE


def test_frame_count_grid(tiny_model, cases):
    c = cases
    speeds = c["dur_speed"]
    for speed in np.unique(speeds):
        rows = np.flatnonzero(speeds == speed)
        tokens = [[1] * int(c["dur_n_tokens"][r]) for r in rows]
        prompt_tokens = [[2] * int(c["dur_n_prompt_tokens"][r]) for r in rows]
        with torch.no_grad():
            _, mask = tiny_model.forward_text_inference_ratio_duration(
                tokens, prompt_tokens, torch.from_numpy(c["dur_prompt_features_len"][rows]), float(speed)
            )
        np.testing.assert_array_equal((~mask).sum(-1).numpy(), c["dur_T_total_torch"][rows])


def test_time_grid():
    from shirabe.flow import shifted_time_steps

    steps = shifted_time_steps(4, t_shift=0.5)
    np.testing.assert_allclose(steps.numpy(), [0, 1 / 7, 1 / 3, 0.6, 1.0], atol=1e-6)
    steps16 = shifted_time_steps(16, t_shift=0.5)
    assert abs(float(steps16[1]) - 0.0323) < 1e-4 and abs(float(steps16[-2]) - 0.8824) < 1e-4



def test_training_loss_and_span_mask(tiny_model):
    """The flow-matching loss is finite and differentiable; the hidden span stays inside each utterance."""
    from zipvoice.models.text_condition import condition_time_mask

    torch.manual_seed(0)
    lens = torch.tensor([30, 20, 7])
    mask = condition_time_mask(lens, (0.7, 1.0), max_len=32)
    assert mask.shape == (3, 32)
    for row, n in zip(mask, lens.tolist()):
        idx = torch.nonzero(row).flatten()
        assert idx.numel() >= int(0.7 * n) - 1 and idx.max() < n
        assert idx.numel() == int(idx.max() - idx.min()) + 1  # contiguous
    model = tiny_model
    model.train()
    try:
        feats = torch.randn(2, 30, 100) * 0.3
        loss = model([[1, 2, 3], [4, 5]], feats, torch.tensor([30, 20]), torch.randn(2, 30, 100),
                     torch.rand(2, 1, 1), condition_drop_ratio=0.2)
        loss.backward()
        assert torch.isfinite(loss) and model.fm_decoder.in_proj.weight.grad is not None
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_swoosh_values_and_gradient():
    from zipvoice.models.scaling import swoosh_l, swoosh_r

    x = torch.linspace(-8, 8, 41, dtype=torch.float64)
    ref_l = torch.log1p(torch.exp(x - 4)) - 0.08 * x - 0.035
    ref_r = torch.log1p(torch.exp(x - 1)) - 0.08 * x - 0.313261687
    assert torch.allclose(swoosh_l(x), ref_l) and torch.allclose(swoosh_r(x), ref_r)
    # training keeps the derivative quantised to one byte (step DERIV_STEP)
    from zipvoice.models.scaling import DERIV_STEP

    for fn, offset in ((swoosh_l, 4.0), (swoosh_r, 1.0)):
        xg = x.clone().requires_grad_(True)
        fn(xg).sum().backward()
        assert torch.allclose(xg.grad, torch.sigmoid(x - offset) - 0.08, rtol=0, atol=DERIV_STEP)
