"""Strict LeLM loading: bad checkpoint folders fail in one line; the version comes from the config."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE  # noqa: E402

from shirabe.cli import InputError  # noqa: E402
from songgeneration.models import build_lelm, load_config, load_lelm, save_lelm  # noqa: E402

DESC_KEY = "audiolm.condition_provider.conditioners.{}.output_proj.weight"


def copy_ckpt(tmp_path: Path, name: str = "ckpt") -> Path:
    dst = tmp_path / name
    dst.mkdir()
    for f in ("config.yaml", "model.pt"):
        shutil.copy(LELM_FIXTURE / f, dst / f)
    return dst


def edit_state(ckpt: Path, fn) -> None:
    state = torch.load(ckpt / "model.pt", weights_only=True)
    fn(state)
    torch.save(state, ckpt / "model.pt")


def edit_config(ckpt: Path, fn) -> None:
    data = yaml.safe_load((ckpt / "config.yaml").read_text(encoding="utf-8"))
    fn(data)
    (ckpt / "config.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


def one_line_error(ckpt: Path, *needles: str) -> str:
    with pytest.raises(InputError) as err:
        load_lelm(ckpt)
    msg = str(err.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_missing_files(tmp_path):
    ckpt = copy_ckpt(tmp_path)
    (ckpt / "model.pt").unlink()
    one_line_error(ckpt, "model.pt")
    (ckpt / "config.yaml").unlink()
    one_line_error(ckpt, "config.yaml", "not found")
    one_line_error(tmp_path / "absent", "absent")


def test_misshaped_unexpected_and_missing_keys(tmp_path):
    ckpt = copy_ckpt(tmp_path)
    key = "audiolm.mlp.0.bias"
    edit_state(ckpt, lambda s: s.__setitem__(key, torch.zeros(s[key].shape[0] + 1, dtype=torch.float16)))
    one_line_error(ckpt, "model.pt", "shape mismatch", key)
    ckpt = copy_ckpt(tmp_path, "ckpt2")
    edit_state(ckpt, lambda s: s.__setitem__("audiolm.extra.weight", torch.zeros(2)))
    one_line_error(ckpt, "unexpected keys", "audiolm.extra.weight")
    ckpt = copy_ckpt(tmp_path, "ckpt3")
    edit_state(ckpt, lambda s: s.pop("audiolm.linears.1.weight"))
    one_line_error(ckpt, "missing keys", "audiolm.linears.1.weight")
    ckpt = copy_ckpt(tmp_path, "ckpt4")
    edit_state(ckpt, lambda s: s.__setitem__("tokenizer.weight", torch.zeros(2)))
    one_line_error(ckpt, "unexpected keys", "tokenizer.weight")


@pytest.mark.parametrize("field", ["lm.num_heads", "codebooks_pattern.delay.delays", "fuser.prepend", "max_dur"])
def test_config_missing_a_field(tmp_path, field):
    ckpt = copy_ckpt(tmp_path)
    *parents, last = field.split(".")

    def drop(data):
        node = data
        for p in parents:
            node = node[p]
        del node[last]
    edit_config(ckpt, drop)
    one_line_error(ckpt, "config.yaml", f"'{field}'")


def test_config_with_a_bad_version(tmp_path):
    ckpt = copy_ckpt(tmp_path)
    edit_config(ckpt, lambda d: d.__setitem__("version", "v3"))
    one_line_error(ckpt, "config.yaml", "'version'")


def test_version_comes_from_the_config_not_the_folder(tmp_path):
    # upstream would take the v2 path for this folder name and the v1 path for the next one
    ckpt = copy_ckpt(tmp_path, "songgeneration_v2_large")
    lm = load_lelm(ckpt)
    assert lm.config.version == "v1"
    state = torch.load(LELM_FIXTURE / "model.pt", weights_only=True)
    name = lm.config.description.name
    assert torch.equal(lm.condition_provider.description.output_proj.weight.half(), state[DESC_KEY.format(name)])

    ckpt = copy_ckpt(tmp_path, "songgeneration_base")
    edit_config(ckpt, lambda d: d.__setitem__("version", "v2"))
    config = load_config(ckpt / "config.yaml")
    assert config.version == "v2"
    assert build_lelm(config, "meta").condition_provider.description.output_proj.num_embeddings == \
        state[DESC_KEY.format(name)].shape[0] + 6
    msg = one_line_error(ckpt, "shape mismatch", "version")
    assert DESC_KEY.format(name) in msg


def test_save_and_reload_round_trip(tmp_path):
    lm = load_lelm(LELM_FIXTURE)
    out = tmp_path / "saved"
    save_lelm(lm, out)
    shutil.copy(LELM_FIXTURE / "config.yaml", out / "config.yaml")
    want = torch.load(LELM_FIXTURE / "model.pt", weights_only=True)
    got = torch.load(out / "model.pt", weights_only=True)
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)
    cases = np.load(LELM_FIXTURE / "cases.npz")
    again = load_lelm(out)
    cond = again.conditions_from_ids(torch.from_numpy(cases["tf_lyric_ids"]), torch.from_numpy(cases["tf_desc_ids"]),
                                     torch.from_numpy(cases["tf_prompt_tokens"]))
    with torch.no_grad():
        logits = again.compute_predictions(torch.from_numpy(cases["tf_codes"]), cond).logits
    assert torch.equal(logits, lm.compute_predictions(torch.from_numpy(cases["tf_codes"]), cond).logits.detach())
