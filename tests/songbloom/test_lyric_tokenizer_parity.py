"""Lyric ids, structure ids and sentence indices against upstream's tokenizer (songbloom_tiny).

The lyric strings are the fixture's inputs, read from its README; the ids and
the conditioner rows (``cond_lyrics``) are upstream's outputs. A row is
E[id] + E[structure] + S[sentence] with the checkpoint's lyric embedding E and
sentence embedding S, so matching ``cond_lyrics`` checks the structure and
sentence indices as well as the ids.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from songbloom.g2p import LyricError, load_vocab, tokenize

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures"))
FIX = FIXTURES / "songbloom_tiny"
PREFIX = "model.condition_provider.conditioners.lyrics."


def fixture_lyrics() -> tuple[list[str], str]:
    text = (FIX / "README.md").read_text(encoding="utf-8")
    train = re.findall(r"^- element \d+: `([^`]*)`", text, flags=re.M)
    gen = re.search(r"The lyrics are `([^`]*)`", text)
    assert train and gen, "the fixture README no longer states its lyric strings"
    return train, gen.group(1)


@pytest.fixture(scope="module")
def fixture():
    cases = np.load(FIX / "cases.npz")
    state = torch.load(FIX / "songbloom_tiny.pt", map_location="cpu", weights_only=True)
    emb = state[PREFIX + "output_proj.weight"].double()
    sent = state[PREFIX + "sentence_idx_in_structure_emb.weight"].double()
    return cases, emb, sent, load_vocab(FIX / "vocab_g2p.yaml")


def rows(tok, emb, sent, max_len):
    ids, st, se = (torch.tensor(x) for x in (tok.ids, tok.structure, tok.sentence))
    x = emb[ids] + emb[st] + sent[se]
    out = torch.zeros(max_len, emb.shape[1], dtype=emb.dtype)
    n = min(max_len, len(ids))
    out[:n] = x[:n]
    mask = torch.zeros(max_len, dtype=torch.long)
    mask[:n] = 1
    return out, mask


def test_ids_match_upstream(fixture):
    cases, emb, sent, vocab = fixture
    train, gen = fixture_lyrics()
    for i, s in enumerate(train):
        expected = cases["lyric_ids_train"][i]
        expected = expected[expected >= 0]
        got = tokenize(s, vocab, max_sentences=sent.shape[0], allow_unknown=True)
        assert got.ids == expected.tolist()
    got = tokenize(gen, vocab, max_sentences=sent.shape[0], allow_unknown=True)
    assert got.ids == cases["lyric_ids_gen"].tolist()


def test_conditioner_rows_match_upstream(fixture):
    cases, emb, sent, vocab = fixture
    train, gen = fixture_lyrics()
    max_len = cases["cond_lyrics"].shape[1]
    for i, s in enumerate(train):
        out, mask = rows(tokenize(s, vocab, sent.shape[0], allow_unknown=True), emb, sent, max_len)
        np.testing.assert_allclose(out.numpy(), cases["cond_lyrics"][i], atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(mask.numpy(), cases["cond_lyrics_mask"][i])
    out, mask = rows(tokenize(gen, vocab, sent.shape[0]), emb, sent, max_len)
    np.testing.assert_allclose(out.numpy(), cases["gen_cond_lyrics"][0], atol=1e-4, rtol=1e-4)
    # the CFG-null lyric is '' -> [id 0]: its first row is S[1], not zero
    out, mask = rows(tokenize("", vocab, sent.shape[0]), emb, sent, max_len)
    np.testing.assert_allclose(out.numpy(), cases["gen_cond_lyrics"][1], atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(mask.numpy(), cases["gen_cond_lyrics_mask"][1])


def test_unknown_symbols_are_counted_and_named(fixture):
    vocab = fixture[3]
    train, _ = fixture_lyrics()
    tok = tokenize(train[1], vocab, allow_unknown=True)
    assert dict(tok.unknown) == {"xyz": 1}
    with pytest.raises(LyricError, match="'xyz'"):
        tokenize(train[1], vocab)
