"""SongBloom (MVSA-DiTAR) against upstream's outputs on the songbloom_tiny fixture.

Everything comes from ``$SHIRABE_FIXTURES/songbloom_tiny``: the config yaml (loaded with its
``${...}`` resolvers), the strict load of the ``.pt``, the lyric strings from the README, and the
inputs and expected outputs of ``cases.npz``, which upstream's own code computed. Tolerances are
the fixture's: floats atol/rtol 1e-4 (2e-4 on the guided DiT velocity), ids, targets and masks
exact.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from songbloom.g2p import tokenize
from songbloom.models import ConditionProvider, GenerationTrace, LyricBatch, load_model

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures"))
FIX = FIXTURES / "songbloom_tiny"
ATOL = RTOL = 1e-4


def close(got, expected, atol=ATOL):
    got = got.detach().float().numpy() if torch.is_tensor(got) else np.asarray(got)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=RTOL)


def exact(got, expected):
    got = got.detach().numpy() if torch.is_tensor(got) else np.asarray(got)
    np.testing.assert_array_equal(got, expected)


def fixture_lyrics() -> tuple[list[str], str]:
    text = (FIX / "README.md").read_text(encoding="utf-8")
    train = re.findall(r"^- element \d+: `([^`]*)`", text, flags=re.M)
    gen = re.search(r"The lyrics are `([^`]*)`", text)
    assert len(train) == 2 and gen, "the fixture README no longer states its lyric strings"
    return train, gen.group(1)


@pytest.fixture(scope="module")
def songbloom():
    return load_model(FIX / "songbloom_tiny.yaml", device="cpu")


@pytest.fixture(scope="module")
def cases():
    return np.load(FIX / "cases.npz")


@pytest.fixture(scope="module")
def train_inputs(songbloom, cases):
    cfg = songbloom.config.model
    train, _ = fixture_lyrics()
    tokens = [tokenize(s, cfg.vocab, cfg.max_sentence_per_structure, allow_unknown=True) for s in train]
    for tok, expected in zip(tokens, cases["lyric_ids_train"]):
        assert tok.ids == expected[expected >= 0].tolist()
    return dict(
        x_sketch=torch.from_numpy(cases["x_sketch"]),
        x_latent=torch.from_numpy(cases["x_latent"]),
        x_len=torch.from_numpy(cases["x_len"]),
        lyrics=LyricBatch.from_tokens(tokens, cfg.lyric_max_len),
        prompt_latents=torch.from_numpy(cases["prompt_latents"]),
    )


def test_strict_load_of_the_fixture(songbloom, cases):
    state = torch.load(FIX / "songbloom_tiny.pt", map_location="cpu", weights_only=True)
    mine = songbloom.state_dict()
    assert list(mine) == list(state)  # same keys, same order (vae.vae.* first)
    for k, v in state.items():
        assert torch.equal(mine[k], v), k
    model_keys = [k for k in mine if k.startswith("model.")]
    assert (len(model_keys), len(mine) - len(model_keys)) == (58, 155)
    assert sum(mine[k].numel() for k in model_keys) == 1_171_033  # the README's count (with the beta buffers)
    assert not songbloom.training and not songbloom.model.training
    m = songbloom.config.model
    assert (m.block_size, m.latent_dim, m.dim, m.num_heads, m.num_pitch) == (4, 8, 128, 2, 64)
    assert (m.prompt_max_len, m.lyric_max_len, m.max_sentence_per_structure) == tuple(
        cases[k].shape[1] for k in ("cond_prompt", "cond_lyrics")) + (4,)
    assert songbloom.config.default_max_frames == pytest.approx(8)


def test_case1_conditions(songbloom, cases, train_inputs):
    conds = songbloom.model.conditions(train_inputs["lyrics"], train_inputs["prompt_latents"])
    close(conds["lyrics"][0], cases["cond_lyrics"])
    exact(conds["lyrics"][1], cases["cond_lyrics_mask"])
    close(conds["prompt_wav"][0], cases["cond_prompt"])
    exact(conds["prompt_wav"][1], cases["cond_prompt_mask"])


def test_case1_lm_out(songbloom, cases, train_inputs):
    model = songbloom.model
    with torch.no_grad():
        seq, _ = model.lm_input(train_inputs["x_sketch"], train_inputs["x_latent"])
        conds = model.conditions(train_inputs["lyrics"], train_inputs["prompt_latents"])
        out = model.lm_forward(seq, ConditionProvider.prefix(conds, seq.dtype))
    close(out, cases["lm_out"])


def test_case1_training_forward_eval_mode(songbloom, cases, train_inputs):
    with torch.no_grad():
        out = songbloom.model(**train_inputs, t_normal=torch.from_numpy(cases["t_normal"]),
                              noise=torch.from_numpy(cases["fm_noise"]))
    close(out.ar_logit, cases["ar_logit"])
    exact(out.ar_target, cases["ar_target"])
    close(out.nar_pred, cases["nar_pred"])
    close(out.nar_target, cases["nar_target"])
    close(out.nar_t, cases["nar_t"])


def _queue(monkeypatch, arrays):
    """Replace torch.rand/torch.randn by the fixture's draws, checked against the asked shapes."""
    queue = [(name, torch.from_numpy(a)) for name, a in arrays]
    seen = []

    def draw(*size, **kwargs):
        name, value = queue.pop(0)
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        assert tuple(shape) == tuple(value.shape), f"{name}: asked {shape}, stored {tuple(value.shape)}"
        seen.append(name)
        return value.clone()

    monkeypatch.setattr(torch, "rand", draw)
    monkeypatch.setattr(torch, "randn", draw)
    return queue, seen


def test_case1_training_forward_draws_in_upstream_order(songbloom, cases, train_inputs, monkeypatch):
    """Train mode with no explicit randomness: the draws come in upstream's order."""
    queue, seen = _queue(monkeypatch, [(k, cases[k]) for k in ("u_drop_h", "u_drop_s", "t_normal", "fm_noise")])
    model = songbloom.model
    model.train()
    try:
        with torch.no_grad():
            out = model(**train_inputs)
    finally:
        model.eval()
    monkeypatch.undo()
    assert seen == ["u_drop_h", "u_drop_s", "t_normal", "fm_noise"] and not queue
    close(out.ar_logit, cases["ar_logit"])  # the dropout touches only the DiT inputs
    close(out.nar_pred, cases["nar_pred_train"])
    close(out.nar_target, cases["nar_target_train"])
    assert not np.allclose(cases["nar_pred_train"], cases["nar_pred"], atol=1e-3)  # the draws matter


def test_case1_training_forward_explicit_draws(songbloom, cases, train_inputs):
    model = songbloom.model
    model.train()
    try:
        with torch.no_grad():
            out = model(**train_inputs, t_normal=torch.from_numpy(cases["t_normal"]),
                        noise=torch.from_numpy(cases["fm_noise"]),
                        drop_u=(torch.from_numpy(cases["u_drop_h"]), torch.from_numpy(cases["u_drop_s"])))
    finally:
        model.eval()
    close(out.nar_pred, cases["nar_pred_train"])


def _generate(songbloom, cases, **kwargs):
    _, lyrics = fixture_lyrics()
    batch = songbloom.lyric_batch(lyrics)
    exact(batch.ids[0, :batch.lengths[0]], cases["lyric_ids_gen"][:songbloom.config.model.lyric_max_len])
    noise = torch.from_numpy(cases["gen_noise"])
    inf = songbloom.config.inference
    return songbloom.generate(
        lyrics, prompt_latents=torch.from_numpy(cases["gen_prompt_latents"]), cfg_coef=inf.cfg_coef,
        temp=inf.temp, top_k=inf.top_k, penalty_repeat=inf.penalty_repeat, penalty_window=inf.penalty_window,
        steps=inf.steps, diff_temp=inf.diff_temp, dit_cfg_type=inf.dit_cfg_type, max_frames=8,
        noise_fn=lambda patch, shape, dtype, device: noise[patch], **kwargs)


def test_case2_generation(songbloom, cases):
    inf = songbloom.config.inference
    assert (inf.top_k, inf.penalty_window, inf.steps, inf.cfg_coef, inf.diff_temp) == (1, 6, 24, 1.5, 0.95)
    done = []
    tokens, latents = _generate(songbloom, cases, progress=lambda i, n: done.append((i, n)))
    exact(tokens, cases["gen_tokens"])
    close(latents, cases["gen_latents"])
    assert done == [(1, 2), (2, 2)]


def test_case2_generation_trace(songbloom, cases):
    """With upstream's discarded third patch sampled too, every intermediate matches."""
    trace = GenerationTrace()
    tokens, latents = _generate(songbloom, cases, trace=trace)
    exact(tokens, cases["gen_tokens"])
    assert len(trace.h) == 2  # the budget is known: the third patch is not sampled
    songbloom.model.eval()
    trace = GenerationTrace()
    lyrics = songbloom.lyric_batch(fixture_lyrics()[1])
    noise = torch.from_numpy(cases["gen_noise"])
    tokens, latents = songbloom.model.generate(
        lyrics, torch.from_numpy(cases["gen_prompt_latents"]), cfg_coef=1.5, temp=0.9, top_k=1,
        penalty_repeat=True, penalty_window=6, steps=24, diff_temp=0.95, dit_cfg_type="h", max_frames=8,
        noise_fn=lambda patch, shape, dtype, device: noise[patch], trace=trace, draw_final_patch=True)
    exact(tokens, cases["gen_tokens"])
    close(latents, cases["gen_latents"])
    close(torch.stack(trace.raw_logits), cases["gen_raw_logits"])
    close(torch.stack(trace.h), cases["gen_h"])
    close(torch.stack([torch.stack(p) for p in trace.dit_x]), cases["gen_dit_x"])
    close(torch.stack([torch.stack(p) for p in trace.dit_v]), cases["gen_dit_v"], atol=2e-4)
    close(torch.stack([torch.stack(p) for p in trace.dit_t]), cases["gen_dit_t"])


def test_case2_conditions(songbloom, cases):
    lyrics = songbloom.lyric_batch(fixture_lyrics()[1])
    conds = songbloom.model.cfg_conditions(lyrics, torch.from_numpy(cases["gen_prompt_latents"]))
    close(conds["lyrics"][0], cases["gen_cond_lyrics"])
    exact(conds["lyrics"][1], cases["gen_cond_lyrics_mask"])
    close(conds["prompt_wav"][0], cases["gen_cond_prompt"])
    exact(conds["prompt_wav"][1], cases["gen_cond_prompt_mask"])


def test_case2_audio(songbloom, cases):
    audio = songbloom.decode(torch.from_numpy(cases["gen_latents"]), chunked=False)
    close(audio, cases["gen_audio"])
    close(songbloom.decode(torch.from_numpy(cases["gen_latents"])), cases["gen_audio"])  # 8 frames: one chunk


def test_case3_prompt_through_the_vae(songbloom, cases):
    latents = songbloom.encode_prompt(torch.from_numpy(cases["e2e_prompt_wav"]),
                                      noise=torch.from_numpy(cases["e2e_vae_noise"][:1]))
    assert latents.shape == (1, 8, 300)
    lyrics = songbloom.lyric_batch(fixture_lyrics()[1])
    conds = songbloom.model.cfg_conditions(lyrics, latents)
    close(conds["prompt_wav"][0], cases["e2e_cond_prompt"])
    exact(conds["prompt_wav"][1], cases["e2e_cond_prompt_mask"])
