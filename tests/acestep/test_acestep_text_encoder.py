"""The UMT5 prompt encoder from a local directory, its ERG query temperature, and transformer folders saved
in the released layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from acestep_testlib import make_tiny_umt5

from acestep.models import load_transformer, save_transformer
from acestep.text.encoder import ERG_BLOCKS, TextEncoder
from shirabe.cli import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    folder = make_tiny_umt5(tmp_path_factory.mktemp("umt5"), num_layers=max(ERG_BLOCKS) + 1)
    return TextEncoder.from_dir(folder)


def test_prompts_are_padded_to_the_longest_with_an_int_mask(encoder):
    hidden, mask = encoder.encode(["pop, rock, piano", "jazz"])
    # word-level stand-in tokenizer: "pop , rock , piano" = 5 tokens, "jazz" = 1
    assert hidden.shape == (2, 5, 768)
    assert mask.dtype == torch.int64
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    alone, _ = encoder.encode(["jazz"])
    # padding is masked out of attention, so the short prompt's valid state does not depend on the batch
    assert torch.allclose(alone[0, 0], hidden[1, 0], atol=1e-5)


def test_erg_changes_the_states_and_its_hooks_are_removed(encoder):
    plain, _ = encoder.encode(["upbeat pop, female vocal"])
    erg, _ = encoder.encode(["upbeat pop, female vocal"], erg=True)
    assert (plain - erg).abs().max() > 1e-3
    again, _ = encoder.encode(["upbeat pop, female vocal"])
    assert torch.equal(plain, again)


def test_missing_folder_and_missing_config_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="umt5-base"):
        TextEncoder.from_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        TextEncoder.from_dir(tmp_path / "empty")


def test_saved_transformer_folder_reloads_to_the_same_model(tmp_path):
    model = load_transformer(FIXTURES / "acestep_tiny")
    save_transformer(model, tmp_path / "t")
    written = json.loads((tmp_path / "t" / "config.json").read_text())
    released = json.loads((FIXTURES / "acestep_tiny" / "config.json").read_text())
    assert written == released
    again = load_transformer(tmp_path / "t")
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
