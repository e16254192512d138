"""ACE-Step sampling: APG/CFG arithmetic, the guidance window, ERG hooks, and the task start points
(audio2audio, retake, repaint, extend) driven through the denoising loop of a tiny transformer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from acestep_testlib import make_tiny_transformer

from acestep.models import load_transformer
from acestep.pipeline import ACEStepPipeline, GenerationRequest
from acestep.sampling import erg, tasks
from acestep.sampling.guidance import MomentumBuffer, apg, cfg, guidance_scale_at, guidance_window
from acestep.sampling.loop import Conditions, GuidanceSettings, denoise
from acestep.schedule import inference_schedule

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TINY_ERG = dict(erg_text_blocks=(0, 1), erg_lyric_layers=(0,), erg_diffusion_blocks=(0, 1))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_transformer(make_tiny_transformer(tmp_path_factory.mktemp("tiny") / "ace_step_transformer"))


def conditions(seed: int = 5) -> Conditions:
    g = torch.Generator().manual_seed(seed)
    return Conditions(text=torch.randn(1, 4, 768, generator=g), text_mask=torch.tensor([[1, 1, 1, 0]]),
                      lyric_ids=torch.tensor([[261, 300, 2, 400, 2]]), lyric_mask=torch.ones(1, 5, dtype=torch.long),
                      text_null=torch.randn(1, 4, 768, generator=g))


class DecodeLog:
    """Wraps ``model.decode``: records (timestep, input latents, context) of every call."""

    def __init__(self, model, monkeypatch):
        self.calls = []
        original = model.decode

        def decode(hidden_states, attention_mask, encoder_hidden_states, encoder_hidden_mask, timestep, *a, **k):
            self.calls.append((float(timestep[0]), hidden_states.clone(), encoder_hidden_states))
            return original(hidden_states, attention_mask, encoder_hidden_states, encoder_hidden_mask, timestep, *a, **k)

        monkeypatch.setattr(model, "decode", decode)

    def steps(self, timesteps: torch.Tensor) -> list[int]:
        """The schedule index of every call."""
        return [int(np.argmin(np.abs(timesteps.numpy() - t))) for t, _, _ in self.calls]


# ---- guidance arithmetic --------------------------------------------------------------------------

def _apg_numpy(cond, uncond, g, running, momentum=-0.75, threshold=2.5):
    diff = cond - uncond
    running = diff + momentum * running
    diff = running.copy()
    for b in range(diff.shape[0]):
        for c in range(diff.shape[1]):
            n = math.sqrt(float((diff[b, c] ** 2).sum()))
            if n > threshold:
                diff[b, c] *= threshold / n
            u = cond[b, c] / math.sqrt(float((cond[b, c] ** 2).sum()))
            diff[b, c] = diff[b, c] - float((diff[b, c] * u).sum()) * u
    return cond + (g - 1) * diff, running


def test_apg_two_steps_match_hand_arithmetic():
    # one item, two channels of 2x3: channel 0's diff is small (no clip), channel 1's large (clipped)
    cond1 = np.array([[[[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]], [[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]]]])
    uncond1 = np.array([[[[0.5, 0.2, 1.5], [0.5, -0.5, 0.1]], [[-1.0, -2.0, 0.0], [2.0, 4.0, -3.0]]]])
    cond2 = cond1[..., ::-1].copy() * 0.7
    uncond2 = uncond1 * 1.3
    buffer = MomentumBuffer()
    running = 0.0
    for cond, uncond in ((cond1, uncond1), (cond2, uncond2)):
        expected, running = _apg_numpy(cond, uncond, 15.0, running)
        got = apg(torch.tensor(cond, dtype=torch.float32), torch.tensor(uncond, dtype=torch.float32), 15.0, buffer)
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-5)
    # hand check of channel 0 of step 1: diff = [.5 -.2 .5; 0 -.5 -.1], |diff| = 0.8888 < 2.5, no clip
    d = np.array([0.5, -0.2, 0.5, 0.0, -0.5, -0.1])
    u = np.array([1.0, 0.0, 2.0, 0.5, -1.0, 0.0]) / math.sqrt(1 + 4 + 0.25 + 1)
    first = apg(torch.tensor(cond1, dtype=torch.float32), torch.tensor(uncond1, dtype=torch.float32), 3.0,
                MomentumBuffer())
    np.testing.assert_allclose(first[0, 0].numpy().ravel(), cond1[0, 0].ravel() + 2 * (d - (d @ u) * u), atol=1e-6)


def test_cfg_is_uncond_plus_scaled_difference():
    cond = torch.tensor([[1.0, -2.0, 0.5]])
    uncond = torch.tensor([[0.0, 1.0, 0.5]])
    assert cfg(cond, uncond, 4.0).tolist() == [[4.0, -11.0, 0.5]]


def test_guidance_window_and_decay_rule():
    # n = 10, gi = 0.5: start = int(10 * 0.25) = 2, end = int(10 * 0.75) = 7 -> steps 2..6
    assert guidance_window(10, 0.5) == (2, 7)
    assert [guidance_scale_at(i, 2, 7, 15.0, 3.0, 1.0) for i in range(2, 7)] == [15.0, 12.0, 9.0, 6.0, 3.0]
    assert [guidance_scale_at(i, 2, 7, 15.0, 3.0, 0.5) for i in (2, 6)] == [15.0, 9.0]
    assert guidance_scale_at(4, 2, 7, 15.0, 3.0, 0.0) == 15.0


def test_uncond_forward_runs_only_inside_the_window(model, monkeypatch):
    log = DecodeLog(model, monkeypatch)
    timesteps, _ = inference_schedule(10)
    start = tasks.text2music_start(tasks.draw_noise(0, 6), 10)
    denoise(model, start, conditions(), GuidanceSettings(**TINY_ERG), progress=False)
    steps = log.steps(timesteps)
    assert len(steps) == 15  # 10 conditional + 5 unconditional forwards
    twice = sorted({s for s in steps if steps.count(s) == 2})
    assert twice == [2, 3, 4, 5, 6]
    assert sorted(set(steps)) == list(range(10))


def test_no_guidance_at_scale_one(model, monkeypatch):
    log = DecodeLog(model, monkeypatch)
    start = tasks.text2music_start(tasks.draw_noise(0, 6), 4)
    denoise(model, start, conditions(), GuidanceSettings(guidance_scale=1.0), progress=False)
    assert len(log.calls) == 4


# ---- ERG ---------------------------------------------------------------------------------------

def test_diffusion_erg_hooks_change_the_output_and_are_removed(model):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 8, 16, 6, generator=g)
    c = conditions()
    states, mask = model.encode(c.text, c.text_mask, torch.zeros(1, 512), c.lyric_ids, c.lyric_mask)
    t = torch.tensor([700.0])

    def run():
        return model.decode(x, torch.ones(1, 6), states, mask, t).sample

    before = run()
    with erg.diffusion_query_temperature(model, (0, 1)) as hooked:
        hot = run()
    after = run()
    assert hooked == 4
    assert (hot - before).abs().max() > 1e-3
    assert torch.equal(after, before)
    assert all(not m._forward_hooks for m in model.modules())
    with erg.diffusion_query_temperature(model) as hooked:  # blocks 15-19 do not exist in a 2-block model
        assert hooked == 0
        assert torch.equal(run(), before)


def test_lyric_erg_hooks_change_the_states_and_are_removed(model):
    c = conditions()
    plain, _ = model.encode(c.text, c.text_mask, torch.zeros(1, 512), c.lyric_ids, c.lyric_mask)
    with erg.lyric_query_temperature(model, (0,)) as hooked:
        hot, _ = model.encode(c.text, c.text_mask, torch.zeros(1, 512), c.lyric_ids, c.lyric_mask)
    again, _ = model.encode(c.text, c.text_mask, torch.zeros(1, 512), c.lyric_ids, c.lyric_mask)
    assert hooked == 1
    lyric = slice(1 + 4, None)  # [speaker | 4 text | lyrics]
    assert (hot[:, lyric] - plain[:, lyric]).abs().max() > 1e-4
    assert torch.equal(hot[:, :5], plain[:, :5])
    assert torch.equal(again, plain)
    assert all(not m._forward_hooks for m in model.modules())


def test_erg_diffusion_changes_the_guided_result(model):
    start = tasks.text2music_start(tasks.draw_noise(3, 6), 4)
    settings = dict(guidance_interval=1.0, **TINY_ERG)
    with_erg = denoise(model, start, conditions(), GuidanceSettings(**settings), progress=False)
    without = denoise(model, start, conditions(), GuidanceSettings(use_erg_diffusion=False, **settings),
                      progress=False)
    assert (with_erg - without).abs().max() > 1e-4


# ---- tasks -------------------------------------------------------------------------------------

def test_audio2audio_starts_from_the_mixed_reference(model, monkeypatch):
    g = torch.Generator().manual_seed(2)
    ref, noise = torch.randn(1, 8, 16, 5, generator=g), torch.randn(1, 8, 16, 5, generator=g)
    start = tasks.audio2audio_task_start(ref, noise, 0.5, 10)
    # strength 0.5: mix sigma = 3*0.5/(1+2*0.5) = 0.75; int(0.5*10) = 5 steps; first timestep 900
    torch.testing.assert_close(start.latents, ref * 0.25 + noise * 0.75)
    log = DecodeLog(model, monkeypatch)
    denoise(model, start, conditions(), GuidanceSettings(guidance_scale=1.0), progress=False)
    assert len(log.calls) == 5
    assert log.calls[0][0] == pytest.approx(900.0, abs=1e-3)
    torch.testing.assert_close(log.calls[0][1], ref * 0.25 + noise * 0.75)


def test_retake_variance_zero_is_the_seed_noise_and_one_the_retake_noise():
    pipe = ACEStepPipeline(None, None, None)
    frames = int(1.0 * 44100 / 512 / 8)  # 10
    seed_noise = torch.randn(1, 8, 16, frames, generator=torch.Generator().manual_seed(11))
    retake = torch.randn(1, 8, 16, frames, generator=torch.Generator().manual_seed(12))
    zero, _ = pipe.start_point(GenerationRequest("p", duration=1.0, task="retake", seed=11, retake_seed=12,
                                                 retake_variance=0.0, infer_step=4))
    one, _ = pipe.start_point(GenerationRequest("p", duration=1.0, task="retake", seed=11, retake_seed=12,
                                                retake_variance=1.0, infer_step=4))
    half, _ = pipe.start_point(GenerationRequest("p", duration=1.0, task="retake", seed=11, retake_seed=12,
                                                 retake_variance=0.5, infer_step=4))
    assert zero.latents.shape == (1, 8, 16, 10)
    assert torch.equal(zero.latents, seed_noise)
    torch.testing.assert_close(one.latents, retake, atol=1e-6, rtol=0)
    torch.testing.assert_close(half.latents, (seed_noise + retake) * math.sqrt(0.5))
    assert zero.first_step == 0 and zero.num_steps == 4


def test_repaint_keeps_the_renoised_source_outside_the_range(model, monkeypatch):
    g = torch.Generator().manual_seed(4)
    src, z, z2 = (torch.randn(1, 8, 16, 8, generator=g) for _ in range(3))
    start = tasks.repaint_start(src, z, z2, 2, 5, 0.5, 6)
    timesteps, _ = inference_schedule(6)
    assert start.first_step == 3  # int(6 * (1 - 0.5))
    log = DecodeLog(model, monkeypatch)
    out = denoise(model, start, conditions(), GuidanceSettings(guidance_scale=1.0), progress=False)
    assert [round(t, 3) for t, _, _ in log.calls] == [round(float(t), 3) for t in timesteps[3:]]
    outside = torch.ones(8, dtype=torch.bool)
    outside[2:5] = False
    for t, x, _ in log.calls:  # z0 outside the range is the seed noise z
        s = t / 1000
        torch.testing.assert_close(x[..., outside], ((1 - s) * src + s * z)[..., outside], atol=1e-5, rtol=0)
    assert torch.equal(out[..., outside], src[..., outside])
    assert (out[..., 2:5] - src[..., 2:5]).abs().max() > 1e-2
    # inside the range the start mixes the source with cos/sin-mixed noise
    s = float(timesteps[3]) / 1000
    mixed = math.cos(0.25 * math.pi) * z + math.sin(0.25 * math.pi) * z2
    torch.testing.assert_close(log.calls[0][1][..., 2:5], ((1 - s) * src + s * mixed)[..., 2:5], atol=1e-5, rtol=0)


def test_repaint_range_outside_the_source_is_refused():
    z = torch.zeros(1, 8, 16, 8)
    with pytest.raises(ValueError, match="outside the source"):
        tasks.repaint_start(z, z, z, 3, 9, 0.5, 6)


def test_extend_returns_the_longer_latents_with_the_source_kept(model):
    g = torch.Generator().manual_seed(6)
    src = torch.randn(1, 8, 16, 6, generator=g)
    noise, other = torch.randn(1, 8, 16, 11, generator=g), torch.randn(1, 8, 16, 11, generator=g)
    start = tasks.extend_start(src, noise, other, 3, 2, 1.0, 4)
    assert start.mask[0, 0, 0].tolist() == [1] * 3 + [0] * 6 + [1] * 2
    out = start.finish(denoise(model, start, conditions(), GuidanceSettings(guidance_scale=1.0), progress=False))
    assert out.shape[-1] == 11
    assert torch.equal(out[..., 3:9], src)


def test_extend_beyond_the_cap_keeps_far_source_frames_aside(model):
    g = torch.Generator().manual_seed(7)
    src = torch.randn(1, 8, 16, 10, generator=g)
    noise, other = torch.randn(1, 8, 16, 12, generator=g), torch.randn(1, 8, 16, 12, generator=g)
    start = tasks.extend_start(src, noise, other, 3, 0, 1.0, 3, max_frames=12)
    window = denoise(model, start, conditions(), GuidanceSettings(guidance_scale=1.0), progress=False)
    assert window.shape[-1] == 12
    out = start.finish(window)
    assert out.shape[-1] == 13
    assert torch.equal(out[..., 3:], src)
