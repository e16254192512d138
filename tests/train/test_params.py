import json
from pathlib import Path

import pytest
import torch

from shirabe import cli
from shirabe.train import params
from shirabe.train.params import AttributeDict


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


def test_str2bool_is_the_one_of_shirabe_cli():
    assert params.str2bool is cli.str2bool
    assert "def str2bool" not in open(params.__file__, encoding="utf-8").read()
