"""Text -> ids of the lyric and description conditions with a Qwen2 tokenizer folder built from the
``qwen.tiktoken`` ranks (skipped when no such file is installed: the parity tests use the stored ids)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE, case_texts, make_qwen_tokenizer_dir  # noqa: E402

from shirabe.cli import InputError  # noqa: E402
from songgeneration.models import load_lelm, null_conditions  # noqa: E402
from songgeneration.models.text_tokenizer import load_text_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def qwen_tokenizer_dir(tmp_path_factory):
    return make_qwen_tokenizer_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def lm(qwen_tokenizer_dir):
    return load_lelm(LELM_FIXTURE, tokenizer_dir=qwen_tokenizer_dir)


def test_tokenizer_folder_has_the_qwen2_ids(qwen_tokenizer_dir):
    vocab = json.loads((qwen_tokenizer_dir / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 151643
    tok = load_text_tokenizer(qwen_tokenizer_dir)
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151643, 151644, 151645]


def test_text_to_ids_match_upstream(lm):
    cases = np.load(LELM_FIXTURE / "cases.npz")
    lyrics, desc = case_texts()
    cond = lm.make_conditions([lyrics], [desc], torch.from_numpy(cases["tf_prompt_tokens"]))
    assert cond.lyric_ids.tolist() == cases["tf_lyric_ids"].tolist()
    assert cond.lyric_structure.tolist() == cases["tf_lyric_struct_idx"].tolist()
    assert cond.desc_ids.tolist() == cases["tf_desc_ids"].tolist()
    both = lm.make_conditions([lyrics, None], [desc, None], None)
    assert both.lyric_ids.tolist() == cases["gen_cond_lyric_ids"].tolist()
    assert both.desc_ids.tolist() == cases["gen_cond_desc_ids"].tolist()
    assert both.desc_ids[1].tolist() == null_conditions(lm).desc_ids[0].tolist()


def test_structure_tags_are_single_tokens(lm):
    lyric = lm.condition_provider.lyric
    got = []
    for tag in lm.config.lyric_tags:
        ids = lyric.token_ids([tag])[0].tolist()
        assert ids[2:] == [151643] * (len(ids) - 2), tag  # <|im_start|>, the tag, padding
        got.append(ids[1])
    assert got == list(range(151646, 151646 + len(got)))


def test_missing_tokenizer_folder_is_one_line(tmp_path):
    with pytest.raises(InputError, match="tokenizer folder not found") as err:
        load_text_tokenizer(tmp_path / "nowhere")
    assert "\n" not in str(err.value)
