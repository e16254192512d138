"""Extending the token table: old rows kept by token string, new rows from IPA neighbours or the mean.

Expectations are derived here from the shipped phoneme → IPA table
(shirabe/text/data/openjtalk_ipa.tsv, read directly) and the token files.
"""

import json
from importlib.resources import files

import numpy as np
import pytest
import torch
from finetune_testlib import FIXTURE, build_tiny

from shirabe.cli import InputError
from zipvoice.finetune import (
    FinetuneOptions,
    extend_embedding,
    plan_embedding,
    prepare_model_for_finetuning,
)


def read_tsv() -> dict[str, list[str]]:
    text = (files("shirabe.text") / "data" / "openjtalk_ipa.tsv").read_text(encoding="utf-8")
    return {line.split("\t")[0]: json.loads(line.split("\t")[1]) for line in text.splitlines()[1:] if line}


def read_tokens(path) -> dict[str, int]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        tok, idx = line.rsplit("\t", 1)
        out[tok] = int(idx)
    return out


NEW_TOKENS = ["A", "fy", "[H]", "カ", "ヤ", "キャ", "ー", "v"]


def test_extension_of_an_openjtalk_table(tmp_path):
    tsv = read_tsv()
    base = read_tokens(FIXTURE / "tokens.txt")
    # the new tokens (appended after the base ids), in a different line order to show
    # that rows follow token strings, not line positions
    lines = [f"{t}\t{len(base) + i}" for i, t in enumerate(NEW_TOKENS)]
    lines += [f"{t}\t{i}" for t, i in sorted(base.items(), key=lambda kv: -kv[1])]
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    new = read_tokens(token_file)

    model = prepare_model_for_finetuning(build_tiny(len(new)), FinetuneOptions(),
                                         init_checkpoint=FIXTURE / "model.pt", token_file=token_file)
    old = torch.load(FIXTURE / "model.pt", weights_only=True)["model"]["embed.weight"].double().numpy()
    got = model.embed.weight.detach().double().numpy()

    # every base row is kept exactly
    for tok, idx in base.items():
        assert np.array_equal(got[new[tok]], old[idx]), tok

    # The fixture's table is written in OpenJTalk phonemes, so a new token's IPA is
    # matched to base tokens whose own IPA (per the tsv) is the same.
    assert tsv["A"] == tsv["a"] == ["a"]               # devoiced A sounds like a
    assert tsv["fy"] == ["ɸ", "ʲ"] and tsv["f"] == ["ɸ"]  # no base token reads ʲ alone
    assert tsv["[H]"] == tsv["["] == ["↑"]             # the hl scheme's high mark = prosody's rise
    assert tsv["y"] == ["j"] and tsv["j"] == ["d", "ʑ"]  # ヤ is y+a, not the affricate j
    assert tsv["ky"] == ["k", "ʲ"]                     # キャ = ky + a, the longest reading first
    assert "v" not in base and tsv["v"] == ["v"]       # no base token reads v
    expected_sources = {
        "A": ["a"], "fy": ["f"], "[H]": ["["], "カ": ["k", "a"], "ヤ": ["y", "a"], "キャ": ["ky", "a"],
    }
    for tok, sources in expected_sources.items():
        want = old[[base[s] for s in sources]].mean(axis=0)
        np.testing.assert_allclose(got[new[tok]], want, rtol=0, atol=1e-7, err_msg=tok)
        if len(sources) == 1:  # a single source is copied exactly
            assert np.array_equal(got[new[tok]], old[base[sources[0]]]), tok
    # ー (long-vowel mark) has no IPA, v has no counterpart: mean of all base rows
    for tok in ("ー", "v"):
        np.testing.assert_allclose(got[new[tok]], old.mean(axis=0), rtol=0, atol=1e-7, err_msg=tok)
    # the rest of the model is the fixture's
    state = torch.load(FIXTURE / "model.pt", weights_only=True)["model"]
    for name, value in model.state_dict().items():
        if name != "embed.weight":
            assert torch.equal(value, state[name]), name


def test_extension_of_an_espeak_table():
    # a base written in espeak IPA (like the released Emilia table) is matched literally
    base = {"_": 0, "a": 1, "k": 2, "ɕ": 3, "ʲ": 4, "↑": 5, "ɯ": 6, "j": 7, "y": 8, "ʑ": 9, "d": 10}
    tsv = read_tsv()
    new = dict(base)
    for tok in ["sh", "ky", "[H]", "U", "ヤ", "ジ", "ー"]:
        new[tok] = len(new)
    plan = plan_embedding(base, new)
    assert plan.copied == {t: t for t in base}
    # straight from the tsv: every IPA token of the new token that the base spells
    for tok in ["sh", "ky", "[H]", "U"]:
        assert plan.ipa[tok] == [u for u in tsv[tok] if u in base], tok
    assert plan.ipa["ヤ"] == ["j", "a"]       # espeak j is the glide (tsv: y → j)
    assert plan.ipa["ジ"] == ["d", "ʑ"]       # tsv: j → d ʑ; the vowel i is not in this base
    assert plan.mean == ["ー"]

    g = torch.Generator().manual_seed(5)
    weight = torch.randn(len(base), 8, generator=g)
    out, _ = extend_embedding(weight, base, new, plan)
    w = weight.double().numpy()
    assert torch.equal(out[: len(base)], weight)
    np.testing.assert_allclose(out[new["ky"]].double().numpy(), (w[2] + w[4]) / 2, atol=1e-7)
    assert torch.equal(out[new["sh"]], weight[3])
    np.testing.assert_allclose(out[new["ー"]].double().numpy(), w.mean(axis=0), atol=1e-7)


def test_vocabulary_mismatch_errors(tmp_path):
    bigger = build_tiny(50)
    with pytest.raises(InputError, match="embedding rows"):
        prepare_model_for_finetuning(bigger, FinetuneOptions(), init_checkpoint=FIXTURE / "model.pt")
    short = tmp_path / "tokens.txt"
    short.write_text("_\t0\na\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="has 2 tokens but the model's embedding 50 rows"):
        prepare_model_for_finetuning(bigger, FinetuneOptions(), init_checkpoint=FIXTURE / "model.pt",
                                     token_file=short)
    with pytest.raises(InputError, match="wrong base token file"):
        prepare_model_for_finetuning(build_tiny(2), FinetuneOptions(), init_checkpoint=FIXTURE / "model.pt",
                                     base_token_file=short, token_file=short)
