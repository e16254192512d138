"""ACE-Step v1 transformer: config checks, strict loading, full-size key list, LoRA files, masking."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from acestep.models import ACEStepTransformer, TransformerConfig, load_config, load_transformer
from acestep.models.lora import (
    LORA_FILE,
    LoraSettings,
    load_lora,
    lora_scaling,
    read_lora_config,
    read_lora_file,
    save_lora,
)
from acestep.models.transformer import CrossAttention
from shirabe.cli import InputError

pytestmark = pytest.mark.usefixtures("single_torch_thread")
FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES") or Path(__file__).resolve().parent.parent / "fixtures")
TINY = FIXTURES / "acestep_tiny"
FULL_KEYS = FIXTURES / "acestep_full_keys.tsv"
RELEASED = {
    "_class_name": "Transformer2DModel", "_diffusers_version": "0.27.2", "in_channels": 8, "num_layers": 24,
    "inner_dim": 2560, "attention_head_dim": 128, "num_attention_heads": 20, "mlp_ratio": 2.5, "out_channels": 8,
    "max_position": 32768, "rope_theta": 1000000.0, "speaker_embedding_dim": 512, "text_embedding_dim": 768,
    "ssl_encoder_depths": [8, 8], "ssl_names": ["mert", "m-hubert"], "ssl_latent_dims": [1024, 768],
    "patch_size": [16, 1], "max_height": 16, "max_width": 32768, "lyric_encoder_vocab_size": 6693,
    "lyric_hidden_size": 1024,
}


def tiny_dict() -> dict:
    return json.loads((TINY / "config.json").read_text())


def copy_tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "transformer"
    folder.mkdir()
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        shutil.copy(TINY / name, folder / name)
    return folder


def test_full_size_builds_the_released_key_list():
    config = TransformerConfig.from_dict(RELEASED, "released")
    assert config.lyric_encoder.output_size == 1024 and config.lyric_encoder.num_blocks == 6
    with torch.device("meta"):
        model = ACEStepTransformer(config)
    with open(FULL_KEYS, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    expected = [(r["key"], tuple(int(d) for d in r["shape"].split("x"))) for r in rows]
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert len(expected) == 874
    assert actual == expected
    assert sum(v.numel() for v in model.state_dict().values()) == 3_305_659_264
    assert not list(model.buffers())


def test_tiny_config_reads_the_lyric_encoder_sizes():
    config = load_config(TINY / "config.json")
    assert config.inner_dim == 128
    assert (config.lyric_encoder.output_size, config.lyric_encoder.attention_heads,
            config.lyric_encoder.linear_units, config.lyric_encoder.num_blocks) == (64, 4, 256, 2)
    model = ACEStepTransformer(config)
    assert sum(p.numel() for p in model.parameters()) == 1_933_792
    assert len(model.state_dict()) == 138


@pytest.mark.parametrize("change,message", [
    ({"num_layers": None}, "field 'num_layers' is missing"),
    ({"inner_dim": 100}, "field 'inner_dim' is 100"),
    ({"mlp_ratio": "2.5"}, "field 'mlp_ratio' must be a positive number"),
    ({"ssl_latent_dims": [96]}, "field 'ssl_latent_dims' must have 2 entries"),
    ({"ssl_encoder_depths": [1, 5]}, "field 'ssl_encoder_depths' entries must lie in [0, 2)"),
    ({"lyric_encoder_config": {"output_size": 32}}, "field 'lyric_encoder_config.output_size' must equal"),
    ({"lyric_encoder_config": {"depth": 2}}, "field 'lyric_encoder_config' has unsupported keys ['depth']"),
])
def test_config_errors_name_file_and_field(tmp_path, change, message):
    data = tiny_dict()
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_config_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(InputError, match="not a readable JSON file"):
        load_config(path)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(InputError, match="transformer folder not found"):
        load_transformer(tmp_path / "absent")
    folder = copy_tiny(tmp_path)
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(InputError, match=r"diffusion_pytorch_model\.safetensors: file not found"):
        load_transformer(folder)
    (folder / "config.json").unlink()
    with pytest.raises(InputError, match=r"config\.json: config file not found"):
        load_transformer(folder)


@pytest.mark.parametrize("edit,message", [
    ("drop", "missing keys: final_layer.linear.bias"),
    ("extra", "unexpected keys: extra.weight"),
    ("shape", "shape mismatches: lyric_proj.weight [128, 32] != [128, 64]"),
])
def test_strict_loading(tmp_path, edit, message):
    folder = copy_tiny(tmp_path)
    weights = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    if edit == "drop":
        del state["final_layer.linear.bias"]
    elif edit == "extra":
        state["extra.weight"] = torch.zeros(2)
    else:
        state["lyric_proj.weight"] = torch.zeros(128, 32)
    save_file(state, str(weights))
    with pytest.raises(InputError) as info:
        load_transformer(folder)
    text = str(info.value)
    assert text.startswith(str(weights)) and message in text and "\n" not in text


def test_not_a_safetensors_file(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_transformer(folder)


def test_unused_cross_attention_projections_do_not_change_the_output():
    cases = np.load(TINY / "cases.npz")
    names = ["hidden_states", "attention_mask", "encoder_text_hidden_states", "text_attention_mask",
             "speaker_embeds", "lyric_token_idx", "lyric_mask", "timestep"]
    x = {n: torch.from_numpy(cases[f"case1_{n}"]) for n in names}
    model = load_transformer(TINY)
    with torch.no_grad():
        before = model(**x).sample
        for block in model.transformer_blocks:
            for name in ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"):
                getattr(block.cross_attn, name).weight.mul_(-3.0)
        after = model(**x).sample
        model.transformer_blocks[0].cross_attn.to_q.weight.mul_(-3.0)
        changed = model(**x).sample
    assert torch.equal(before, after)
    assert (changed - before).abs().max() > 1e-3


def test_fully_masked_cross_attention_row_gives_the_output_bias():
    torch.manual_seed(0)
    attn = CrossAttention(16, 2, 8)
    x, context = torch.randn(1, 3, 16), torch.randn(1, 4, 16)
    cos, sin = torch.ones(4, 8), torch.zeros(4, 8)
    out = attn(x, torch.tensor([[1.0, 1.0, 0.0]]), context, torch.tensor([[1.0, 1.0, 0.0, 1.0]]),
               (cos[:3], sin[:3]), (cos, sin))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2], attn.to_out[0].bias.detach())
    assert not torch.allclose(out[0, 0], attn.to_out[0].bias.detach())


def test_tiny_random_model_odd_length_and_empty_lyrics():
    torch.manual_seed(0)
    model = ACEStepTransformer(load_config(TINY / "config.json")).eval()
    t = 7
    with torch.no_grad():
        out = model(hidden_states=torch.randn(1, 8, 16, t), attention_mask=torch.ones(1, t),
                    encoder_text_hidden_states=torch.randn(1, 3, 768), text_attention_mask=torch.ones(1, 3).long(),
                    speaker_embeds=torch.zeros(1, 512), lyric_token_idx=torch.zeros(1, 1).long(),
                    lyric_mask=torch.zeros(1, 1).long(), timestep=torch.tensor([500.0]))
    assert out.sample.shape == (1, 8, 16, t) and torch.isfinite(out.sample).all()


def test_lora_scalings():
    assert lora_scaling(1, 4, True) == 0.5
    assert lora_scaling(32, 4, True) == 16.0
    assert lora_scaling(32, 4, False) == 8.0
    settings = read_lora_config(TINY / "lora_zh_rap_config" / "lora_config_used.json")
    assert settings == LoraSettings(4, 32.0, True, ("speaker_embedder", "linear_q", "linear_k", "linear_v",
                                                     "to_q", "to_k", "to_v", "to_out.0"))


def test_lora_file_roundtrip(tmp_path):
    source = TINY / "lora_zh_rap_config" / LORA_FILE
    adapter = read_lora_file(source)
    assert len(adapter) == 23
    assert "lyric_encoder.encoders.0.self_attn.linear_q" in adapter and "speaker_embedder" in adapter
    written = save_lora(tmp_path / "out", adapter)
    assert written.name == LORA_FILE
    original, copy = load_file(str(source)), load_file(str(written))
    assert sorted(original) == sorted(copy) and len(copy) == 46
    for key in original:
        assert torch.equal(original[key], copy[key])
    with safe_open(str(written), "pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.parametrize("edit,message", [
    ("rename", "unexpected key 'speaker_embedder.lora_C.weight'"),
    ("drop_b", "speaker_embedder has no lora_B.weight"),
    ("not_linear", "final_layer is a FinalLayer, not an nn.Linear of the model"),
    ("shape", "genre_embedder expects A [r, 768] and B [128, r]"),
])
def test_lora_file_errors(tmp_path, edit, message):
    state = load_file(str(TINY / "lora_zh_rap_config" / LORA_FILE))
    if edit == "rename":
        state["speaker_embedder.lora_C.weight"] = state.pop("speaker_embedder.lora_A.weight")
    elif edit == "drop_b":
        del state["speaker_embedder.lora_B.weight"]
    elif edit == "not_linear":
        state["final_layer.lora_A.weight"] = torch.zeros(4, 128)
        state["final_layer.lora_B.weight"] = torch.zeros(128, 4)
    else:
        state["genre_embedder.lora_A.weight"] = torch.zeros(4, 10)
        state["genre_embedder.lora_B.weight"] = torch.zeros(128, 4)
    path = tmp_path / LORA_FILE
    save_file(state, str(path))
    model = ACEStepTransformer(load_config(TINY / "config.json"))
    with pytest.raises(InputError) as info:
        load_lora(model, tmp_path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_lora_rank_must_match_settings():
    model = ACEStepTransformer(load_config(TINY / "config.json"))
    with pytest.raises(InputError, match="rank \\[4\\] but the LoRA config says r=8"):
        load_lora(model, TINY / "lora_transformer_only", settings=LoraSettings(8, 1.0, True))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(1)
    config = load_config(TINY / "config.json")
    x = dict(hidden_states=torch.randn(1, 8, 16, 5), attention_mask=torch.ones(1, 5),
             encoder_text_hidden_states=torch.randn(1, 2, 768), text_attention_mask=torch.ones(1, 2).long(),
             speaker_embeds=torch.randn(1, 512), lyric_token_idx=torch.tensor([[5, 9, 3]]),
             lyric_mask=torch.ones(1, 3).long(), timestep=torch.tensor([300.0]))
    state = ACEStepTransformer(config).state_dict()
    grads = []
    for checkpointing in (False, True):
        model = ACEStepTransformer(config)
        model.load_state_dict(state)
        model.train()
        model.lyric_encoder.eval()
        model.gradient_checkpointing = checkpointing
        model(**x).sample.square().mean().backward()
        grads.append(model.transformer_blocks[0].attn.to_q.weight.grad.clone())
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)
