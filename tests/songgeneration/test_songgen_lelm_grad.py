"""The condition tables (lyrics, structure, description, prompt) take gradients through LeLM's loss."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE  # noqa: E402

from songgeneration.models import load_lelm  # noqa: E402


def test_condition_embeddings_receive_gradients():
    lm = load_lelm(LELM_FIXTURE).train()
    cases = np.load(LELM_FIXTURE / "cases.npz")
    lyric_ids, desc_ids = torch.from_numpy(cases["tf_lyric_ids"]), torch.from_numpy(cases["tf_desc_ids"])
    prompt = torch.from_numpy(cases["tf_prompt_tokens"])
    cond = lm.conditions_from_ids(lyric_ids, desc_ids, prompt)
    lm.loss(torch.from_numpy(cases["tf_codes"]), cond).backward()
    cp = lm.condition_provider
    assert cp.lyric.output_proj.weight.grad[lyric_ids[0, 0]].abs().sum() > 0
    assert cp.lyric.structure_emb.weight.grad[cond.lyric_structure.max()].abs().sum() > 0
    assert cp.description.output_proj.weight.grad[desc_ids[0, 1]].abs().sum() > 0
    assert cp.prompt.EOT_emb.grad.abs().sum() > 0 and cp.prompt.layer2_EOT_emb.grad.abs().sum() > 0
    assert cp.prompt.emb[0].weight.grad[prompt[0, 0, 0]].abs().sum() > 0
    assert cp.prompt.emb[2].weight.grad[prompt[0, 2, 0]].abs().sum() > 0
    # the padding rows stay fixed, as nn.Embedding's padding_idx keeps them
    assert cp.lyric.output_proj.weight.grad[151643].abs().sum() == 0
