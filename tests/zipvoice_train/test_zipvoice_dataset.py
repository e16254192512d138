"""zipvoice.dataset: manifest checks and cut → batch collation with token ids."""

import gzip
import logging

import numpy as np
import pytest
from lhotse import CutSet, load_manifest

from shirabe.cli import InputError
from zipvoice.dataset import TokenMapper, ZipVoiceDataset, load_cuts


def token_table(path) -> dict[str, int]:
    return {tok: int(i) for tok, i in (line.rsplit("\t", 1) for line in path.read_text().splitlines())}


def test_batch_holds_padded_features_lengths_and_token_ids(corpus, caplog):
    cuts = list(load_manifest(corpus["train"]))[:4]
    table = token_table(corpus["tokens"])
    # cut 1: an unknown token in the middle; cut 2: no stored tokens (tokenized on the fly)
    cuts[1].supervisions[0].custom["tokens"] = ["k", "a", "@@", "s", "a"]
    cuts[2].supervisions[0].custom = None
    cuts[2].supervisions[0].text = "kasa"
    dataset = ZipVoiceDataset(TokenMapper(corpus["tokens"], tokenizer="simple"))
    with caplog.at_level(logging.WARNING):
        batch = dataset[CutSet.from_cuts(cuts)]
    assert batch["cut_ids"] == [c.id for c in cuts]
    lens = [c.num_frames for c in cuts]
    assert batch["features_lens"].tolist() == lens
    assert tuple(batch["features"].shape) == (4, max(lens), 100)
    for i, c in enumerate(cuts):
        np.testing.assert_allclose(batch["features"][i, : lens[i]].numpy(), c.load_features(), atol=1e-6)
    assert batch["tokens"][0] == [table[t] for t in cuts[0].supervisions[0].custom["tokens"]]
    assert batch["tokens"][1] == [table["k"], table["a"], table["s"], table["a"]]
    assert batch["tokens"][2] == [table["k"], table["a"], table["s"], table["a"]]
    assert "'@@'" in caplog.text and "tokenizing on the fly" in caplog.text


def test_cut_without_known_tokens_is_left_out(corpus):
    cuts = list(load_manifest(corpus["train"]))[:3]
    cuts[0].supervisions[0].custom["tokens"] = ["@@", "##@"]
    batch = ZipVoiceDataset(TokenMapper(corpus["tokens"]))[CutSet.from_cuts(cuts)]
    assert batch["cut_ids"] == [cuts[1].id, cuts[2].id] and len(batch["tokens"]) == 2


def test_manifest_errors_name_the_file(corpus, tmp_path):
    with pytest.raises(InputError, match="no such training manifest"):
        load_cuts(tmp_path / "missing.jsonl.gz")
    (tmp_path / "cuts.txt").write_text("x")
    with pytest.raises(InputError, match=r"cuts\.txt: expected a lhotse CutSet manifest"):
        load_cuts(tmp_path / "cuts.txt")
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl.gz: not a readable CutSet manifest"):
        load_cuts(bad)
    no_feats = tmp_path / "nofeats.jsonl.gz"
    load_manifest(corpus["dev"]).drop_features().to_file(no_feats)
    with pytest.raises(InputError, match="has no precomputed features"):
        load_cuts(no_feats, "validation")
    assert len(list(load_cuts(corpus["dev"], "validation"))) == 4
