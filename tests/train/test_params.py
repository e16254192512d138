import argparse
import json
from pathlib import Path

import pytest
import torch

from shirabe.train.params import AttributeDict, str2bool


def test_attribute_access_and_json():
    p = AttributeDict(lr=0.1)
    p.exp_dir = Path("exp/x")
    p.dtype = torch.float16
    assert p["exp_dir"] == Path("exp/x") and p.lr == 0.1
    with pytest.raises(AttributeError, match="nope"):
        _ = p.nope
    del p.lr
    assert "lr" not in p
    assert json.loads(str(p)) == {"dtype": "torch.float16", "exp_dir": "exp/x"}
    assert p.plain() == {"dtype": "torch.float16", "exp_dir": "exp/x"}


@pytest.mark.parametrize("text,value", [("1", True), ("True", True), ("yes", True), ("0", False), ("false", False), ("N", False)])
def test_str2bool(text, value):
    assert str2bool(text) is value


def test_str2bool_rejects():
    with pytest.raises(argparse.ArgumentTypeError, match="maybe"):
        str2bool("maybe")
