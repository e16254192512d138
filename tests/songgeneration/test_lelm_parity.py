"""LeLM against upstream's outputs (``$SHIRABE_FIXTURES/songgen_lelm_tiny``).

Sizes, ids, texts, generation settings and the tolerance are read from the fixture (config.yaml,
cases.npz, README.md); the token ids of the text conditions come from cases.npz, so these tests
need no tokenizer (test_songgen_tokenizer.py checks text -> ids).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE, sampling_settings, tolerance  # noqa: E402

from songgeneration.models import SamplingParams, generate, load_lelm, null_conditions  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def lm():
    return load_lelm(LELM_FIXTURE, tokenizer_dir=None)


@pytest.fixture(scope="module")
def cases():
    c = np.load(LELM_FIXTURE / "cases.npz")
    return {k: torch.from_numpy(c[k]) for k in c.files}


def close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    atol, rtol = tolerance()
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    np.testing.assert_allclose(got.detach().float().numpy(), want.numpy(), atol=atol, rtol=rtol, err_msg=what)


def tf_conditions(lm, cases):
    return lm.conditions_from_ids(cases["tf_lyric_ids"], cases["tf_desc_ids"], cases["tf_prompt_tokens"])


def test_structure_index_and_pattern(lm, cases):
    cond = tf_conditions(lm, cases)
    assert torch.equal(cond.lyric_structure, cases["tf_lyric_struct_idx"])
    assert torch.equal(lm.pattern.build(cases["tf_codes"]), cases["tf_pattern_seq"])
    assert torch.equal(lm.pattern.revert(cases["tf_pattern_seq"], cases["tf_codes"].shape[-1]), cases["tf_codes"])


@torch.no_grad()
def test_teacher_forced_intermediates_and_logits(lm, cases):
    cond = tf_conditions(lm, cases)
    _, inter = lm(cases["tf_pattern_seq"], cond, return_intermediates=True)
    for mine, theirs in (("lyric", "tf_cond_lyric"), ("description", "tf_cond_desc"),
                         ("prompt_main", "tf_cond_prompt_main"), ("prompt_sub", "tf_cond_prompt_sub"),
                         ("main_inputs_embeds", "tf_main_inputs_embeds"), ("main_hidden", "tf_main_hidden"),
                         ("sub_inputs_embeds", "tf_sub_inputs_embeds"), ("sub_hidden", "tf_sub_hidden")):
        if theirs in cases:  # intermediates are checked where the fixture gives them
            close(inter[mine], cases[theirs], theirs)
    out = lm.compute_predictions(cases["tf_codes"], cond)
    close(out.logits, cases["tf_logits"], "tf_logits")
    assert torch.equal(out.mask, cases["tf_logits_mask"])


def generation_cases(cases) -> list[str]:
    names = sorted(k[:-len("_prompt_tokens")] for k in cases if k.startswith("gen") and k.endswith("_prompt_tokens"))
    assert names, "cases.npz holds no generation case"
    return names


def test_null_condition_ids(lm, cases):
    null = null_conditions(lm)
    assert torch.equal(null.lyric_ids, cases["gen_cond_lyric_ids"][1:])
    assert torch.equal(null.lyric_structure, cases["gen_cond_lyric_struct_idx"][1:])
    assert torch.equal(null.desc_ids, cases["gen_cond_desc_ids"][1:])


def test_cfg_generation(lm, cases):
    params = SamplingParams(**sampling_settings())
    for name in generation_cases(cases):
        prompt = cases[f"{name}_prompt_tokens"]
        cond = lm.conditions_from_ids(cases["gen_cond_lyric_ids"][:1], cases["gen_cond_desc_ids"][:1], prompt)
        assert torch.equal(cond.lyric_structure, cases["gen_cond_lyric_struct_idx"][:1])
        frames = lm.config.max_frames
        assert frames == cases[f"{name}_codes_untrimmed"].shape[-1]
        res = generate(lm, cond, null_conditions(lm), frames, params, ban_ids=prompt[0, 0])
        for mine, suffix in ((res.step0_main_hidden, "step0_main_hidden"), (res.step0_sub_hidden, "step0_sub_hidden"),
                             (res.margins, "step_margin")):
            if f"{name}_{suffix}" in cases:
                close(mine, cases[f"{name}_{suffix}"], f"{name}_{suffix}")
        if f"{name}_pattern_seq" in cases:
            assert torch.equal(res.pattern_seq, cases[f"{name}_pattern_seq"]), name
        assert torch.equal(res.codes, cases[f"{name}_codes_untrimmed"]), name
        assert torch.equal(res.tokens, cases[f"{name}_tokens"]), name
