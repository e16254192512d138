"""Building from configs and loading checkpoints: full-size key listing, strictness, safe loading."""

import json
import shutil

import pytest
import torch
from zipvoice_testlib import FIXTURES, ZIPVOICE_TINY

from shirabe.cli import InputError
from zipvoice.models import BASE_CONFIG, build_model, load_model, read_config

FULL_KEYS = FIXTURES / "zipvoice_full_keys.tsv"

UPSTREAM_BASE = {
    "fm_decoder_downsampling_factor": [1, 2, 4, 2, 1], "fm_decoder_num_layers": [2, 2, 4, 4, 4],
    "fm_decoder_cnn_module_kernel": [31, 15, 7, 15, 31], "fm_decoder_feedforward_dim": 1536,
    "fm_decoder_num_heads": 4, "fm_decoder_dim": 512, "text_encoder_num_layers": 4,
    "text_encoder_feedforward_dim": 512, "text_encoder_cnn_module_kernel": 9, "text_encoder_num_heads": 4,
    "text_encoder_dim": 192, "time_embed_dim": 192, "text_embed_dim": 192, "query_head_dim": 32,
    "value_head_dim": 12, "pos_head_dim": 4, "pos_dim": 48, "feat_dim": 100,
}  # fmt: skip


def _meta_model(name="zipvoice"):
    cfg = read_config(BASE_CONFIG)
    with torch.device("meta"):
        return build_model(cfg["model"], vocab_size=360, pad_id=0, model_name=name)


def test_base_config_is_upstreams():
    cfg = read_config(BASE_CONFIG)
    assert cfg["model"] == UPSTREAM_BASE
    assert cfg["feature"] == {"sampling_rate": 24000, "type": "vocos"}


def test_base_config_builds_full_key_listing():
    rows = [ln.rstrip("\n").split("\t") for ln in FULL_KEYS.read_text().splitlines() if not ln.startswith("#")]
    state = _meta_model().state_dict()
    assert [(k, str(tuple(v.shape))) for k, v in state.items()] == [tuple(r) for r in rows]
    assert sum(v.numel() for v in state.values()) == 122_664_804


def test_base_distill_adds_guidance_embedding():
    plain = _meta_model().state_dict()
    distill = _meta_model("zipvoice_distill").state_dict()
    extra = {k: tuple(v.shape) for k, v in distill.items() if k not in plain}
    assert extra == {"fm_decoder.guidance_scale_embed.weight": (192, 192)}
    assert sum(v.numel() for v in distill.values()) == 122_701_668


def _model_dir(tmp_path, state=None, checkpoint="model.pt"):
    for name in ("model.json", "tokens.txt"):
        shutil.copy(ZIPVOICE_TINY / name, tmp_path / name)
    if state is not None:
        torch.save(state, tmp_path / checkpoint)
    return tmp_path


def test_load_model_eval_and_methods(tiny_model):
    assert not tiny_model.training
    for name in ("forward_text_embed", "forward_text_inference_ratio_duration", "forward_fm_decoder", "sample"):
        assert callable(getattr(tiny_model, name))
    assert tiny_model.pad_id == 0 and tiny_model.embed.num_embeddings == 46


def test_ddp_prefix_and_bare_state_dict(tmp_path):
    state = torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True)["model"]
    _model_dir(tmp_path, {"model": {f"module.{k}": v for k, v in state.items()}}, "ddp.pt")
    torch.save(state, tmp_path / "bare.pt")
    ref = load_model(ZIPVOICE_TINY)
    for name in ("ddp.pt", "bare.pt"):
        model = load_model(tmp_path, name)
        assert torch.equal(model.embed.weight, ref.embed.weight)


def test_safetensors_checkpoint(tmp_path):
    from safetensors.torch import save_file

    state = torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True)["model"]
    _model_dir(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    model = load_model(tmp_path, "model.safetensors")
    assert torch.equal(model.fm_decoder.in_proj.weight, state["fm_decoder.in_proj.weight"])


def test_strict_mismatch_is_one_line(tmp_path):
    state = torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True)["model"]
    del state["embed.weight"]
    _model_dir(tmp_path, {"model": state})
    with pytest.raises(InputError, match=r"does not match.*1 missing \(e\.g\. embed\.weight\)") as e:
        load_model(tmp_path)
    assert "\n" not in str(e.value)
    # the distill checkpoint into the plain model: one unexpected key
    with pytest.raises(InputError, match="unexpected"):
        load_model(ZIPVOICE_TINY, "model_distill.pt", "zipvoice")


def test_token_table_size_must_match(tmp_path):
    _model_dir(tmp_path, torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True))
    with open(tmp_path / "tokens.txt", "a", encoding="utf-8") as f:
        f.write("x\t46\n")
    with pytest.raises(InputError, match=r"shape mismatch \(e\.g\. embed\.weight \(46, 32\) vs \(47, 32\)\)"):
        load_model(tmp_path)


class _Custom:
    pass


def test_pickle_checkpoint_needs_trust(tmp_path):
    state = torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True)
    state["extra"] = _Custom()
    _model_dir(tmp_path, state)
    with pytest.raises(InputError, match="need pickle") as e:
        load_model(tmp_path)
    assert str(tmp_path / "model.pt") in str(e.value)
    assert load_model(tmp_path, trust=True).vocab_size == 46


def test_bad_files(tmp_path):
    _model_dir(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="no such checkpoint"):
        load_model(tmp_path, "missing.pt")
    (tmp_path / "model.json").write_text("{broken")
    with pytest.raises(InputError, match="model.json: not a readable JSON"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"model": {"fm_decoder_dim": 64, "colour": 1}}))
    with pytest.raises(InputError, match="unknown model field"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="no such model directory"):
        load_model(tmp_path / "nope")
    with pytest.raises(InputError, match="unknown model name"):
        load_model(ZIPVOICE_TINY, model_name="zipvoice_dialog")
