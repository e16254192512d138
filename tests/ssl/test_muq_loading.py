"""Strict loading of MuQ checkpoints, the config parser, eval mode and the full-size layout."""

import json
import shutil

import numpy as np
import pytest
import torch
from muq_testlib import MUQ_FIXTURE
from safetensors.torch import load_file, save_file

from shirabe.cli import InputError
from shirabe.ssl import MuQ, MuQConfig, is_training_only_key, load_muq

TRAINING_ONLY_IN_FIXTURE = {
    "model.linear.weight",
    "model.linear.bias",
    "model.cls_token",
    "model.quantizer_melspec_2048.random_projection",
    "model.quantizer_melspec_2048.codebook",
    "model.conformer.pos_conv_embed.conv.bias",
    "model.conformer.pos_conv_embed.conv.parametrizations.weight.original0",
    "model.conformer.pos_conv_embed.conv.parametrizations.weight.original1",
}


def _checkpoint(tmp_path, edit) -> str:
    """A copy of the fixture checkpoint whose state dict went through ``edit``."""
    out = tmp_path / "ckpt"
    out.mkdir()
    shutil.copy(MUQ_FIXTURE / "config.json", out / "config.json")
    state = load_file(str(MUQ_FIXTURE / "model.safetensors"))
    edit(state)
    save_file(state, str(out / "model.safetensors"))
    return str(out)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_fixture_keys_split_into_used_and_training_only():
    state = load_file(str(MUQ_FIXTURE / "model.safetensors"))
    assert len(state) == 123
    dropped = {k for k in state if is_training_only_key(k)}
    assert dropped == TRAINING_ONLY_IN_FIXTURE
    model = MuQ(MuQConfig.from_json(MUQ_FIXTURE / "config.json"))
    assert set(model.state_dict()) == set(state) - TRAINING_ONLY_IN_FIXTURE


def test_missing_key_is_a_one_line_error(tmp_path):
    path = _checkpoint(tmp_path, lambda s: s.pop("model.conformer.layers.1.self_attn.linear_k.bias"))
    with pytest.raises(InputError) as exc:
        load_muq(path)
    message = _one_line(exc)
    assert "model.safetensors" in message
    assert "missing key 'model.conformer.layers.1.self_attn.linear_k.bias'" in message


def test_unknown_key_is_a_one_line_error(tmp_path):
    path = _checkpoint(tmp_path, lambda s: s.update({"model.conformer.extra.weight": torch.zeros(3)}))
    with pytest.raises(InputError) as exc:
        load_muq(path)
    assert "unexpected key 'model.conformer.extra.weight'" in _one_line(exc)


def test_wrong_shape_is_a_one_line_error(tmp_path):
    path = _checkpoint(tmp_path, lambda s: s.update({"model.conv.linear.bias": torch.zeros(65)}))
    with pytest.raises(InputError) as exc:
        load_muq(path)
    message = _one_line(exc)
    assert "model.conv.linear.bias" in message and "(65,)" in message and "(64,)" in message


def test_training_only_tensors_are_optional_and_both_weight_norm_namings_load(tmp_path, cases):
    def edit(state):
        for key in ("model.linear.weight", "model.linear.bias", "model.cls_token"):
            state.pop(key)
        prefix = "model.conformer.pos_conv_embed.conv."
        state[prefix + "weight_g"] = state.pop(prefix + "parametrizations.weight.original0")
        state[prefix + "weight_v"] = state.pop(prefix + "parametrizations.weight.original1")

    model = load_muq(_checkpoint(tmp_path, edit))
    with torch.no_grad():
        out = model(torch.from_numpy(cases["wav_odd"]))
    np.testing.assert_allclose(out.last_hidden_state.numpy(), cases["last_hidden_state_odd"], atol=1e-4, rtol=1e-4)


def test_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such MuQ checkpoint directory"):
        load_muq(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="model.safetensors: missing"):
        load_muq(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError) as exc:
        load_muq(tmp_path)
    assert "not a readable safetensors file" in _one_line(exc)


def test_eval_mode_is_kept(muq, cases):
    assert not muq.training
    muq.train()
    assert not muq.training and not any(m.training for m in muq.modules())
    muq.train(True)
    assert not any(m.training for m in muq.modules())
    before = muq.model.conformer.layers[0].conv_module.batch_norm.running_mean.clone()
    # batch statistics would change the output and the running mean
    out = muq(torch.from_numpy(cases["wav"]))
    np.testing.assert_allclose(out.last_hidden_state.detach().numpy(), cases["last_hidden_state"],
                               atol=1e-4, rtol=1e-4)
    assert torch.equal(before, muq.model.conformer.layers[0].conv_module.batch_norm.running_mean)
    wrapper = torch.nn.Sequential(muq)
    wrapper.train()
    assert not muq.training


def test_config_from_fixture_json():
    config = MuQConfig.from_json(MUQ_FIXTURE / "config.json")
    assert (config.encoder_dim, config.encoder_depth, config.conv_dim) == (64, 2, 16)
    assert (config.num_attention_heads, config.intermediate_size, config.conv_depthwise_kernel_size) == (4, 128, 31)
    assert config.head_dim == 16 and config.rotary_embedding_base == 10000 and config.layer_norm_eps == 1e-5
    assert (config.mel_mean, config.mel_std) == (6.768444971712967, 18.417922652295623)


def test_config_overrides_and_ignores_training_fields(tmp_path):
    data = json.loads((MUQ_FIXTURE / "config.json").read_text())
    data["w2v2_config"]["hidden_size"] = 999  # overridden by encoder_dim
    data["w2v2_config"]["num_hidden_layers"] = 7  # overridden by encoder_depth
    data["some_future_training_option"] = {"x": 1}
    config = MuQConfig.from_dict(data, where="cfg")
    assert (config.encoder_dim, config.encoder_depth) == (64, 2)


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda d: d.update(encoder_dim="64"), "encoder_dim must be a positive integer"),
        (lambda d: d.update(encoder_dim=66), "not a multiple of num_attention_heads"),
        (lambda d: d.update(hop_length=320), "field 'hop_length'"),
        (lambda d: d.update(features=["melspec_2048", "encodec"]), "field 'features'"),
        (lambda d: d["w2v2_config"].update(position_embeddings_type="relative"), "position_embeddings_type"),
        (lambda d: d["w2v2_config"].update(hidden_act="gelu"), "hidden_act"),
        (lambda d: d["stat"].update(melspec_2048_std=0), "mel_std must be a positive number"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_file_and_field(tmp_path, edit, needle):
    data = json.loads((MUQ_FIXTURE / "config.json").read_text())
    edit(data)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        MuQConfig.from_json(path)
    message = _one_line(exc)
    assert str(path) in message and needle in message


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "encoder_dim": 64,\n  oops\n}')
    with pytest.raises(InputError, match=r"config.json:3: not valid JSON"):
        MuQConfig.from_json(path)


def test_full_size_layout_on_meta_device():
    """OpenMuQ/MuQ-large-msd-iter: 1024 wide, 12 layers, conv 512, 16 heads, FFN 4096, kernel 31."""
    with torch.device("meta"):
        model = MuQ(MuQConfig())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["model.conv.conv.0.conv1.weight"] == (512, 1, 3, 3)
    assert shapes["model.conv.conv.0.conv3.weight"] == (512, 1, 3, 3)
    assert shapes["model.conv.conv.1.conv2.weight"] == (512, 512, 3, 3)
    assert shapes["model.conv.linear.weight"] == (1024, 512 * 32)
    assert shapes["model.conformer.embed_positions.inv_freq"] == (32,)
    assert shapes["model.conformer.layer_norm.weight"] == (1024,)
    assert not any(k.startswith("model.conformer.layers.12.") for k in shapes)
    layer = "model.conformer.layers.11."
    assert shapes[layer + "ffn1.intermediate_dense.weight"] == (4096, 1024)
    assert shapes[layer + "ffn2.output_dense.weight"] == (1024, 4096)
    assert shapes[layer + "self_attn.linear_q.weight"] == (1024, 1024)
    assert shapes[layer + "self_attn.linear_out.bias"] == (1024,)
    assert shapes[layer + "conv_module.pointwise_conv1.weight"] == (2048, 1024, 1)
    assert shapes[layer + "conv_module.depthwise_conv.weight"] == (1024, 1, 31)
    assert shapes[layer + "conv_module.pointwise_conv2.weight"] == (1024, 1024, 1)
    assert shapes[layer + "conv_module.batch_norm.running_var"] == (1024,)
    # parameter count from the layout above, by hand
    c, d, i = 512, 1024, 4096
    subsampling = (c * 9 + c) * 2 + (c * c * 9 + c) * 4 + 6 * 2 * c + (c * 32 * d + d)
    layer_params = 2 * (d * i + i + i * d + d) + 5 * 2 * d + 4 * (d * d + d) + 3 * d * d + 31 * d + 2 * d
    expected = subsampling + 12 * layer_params + 2 * d
    assert expected == 316_343_296
    assert sum(p.numel() for p in model.parameters()) == expected


def test_rotary_buffer_is_checked_against_the_config(tmp_path):
    def edit(state):
        state["model.conformer.embed_positions.inv_freq"] = state["model.conformer.embed_positions.inv_freq"] * 1.01

    with pytest.raises(InputError) as exc:
        load_muq(_checkpoint(tmp_path, edit))
    assert "embed_positions.inv_freq' does not match rotary_embedding_base" in _one_line(exc)


def test_rotary_angles_stay_float32_in_a_half_precision_model(muq):
    half = load_muq(MUQ_FIXTURE, dtype=torch.bfloat16)
    assert half.model.conformer.embed_positions.inv_freq.dtype == torch.bfloat16
    cos, sin = half.model.conformer.embed_positions(750, torch.float32)
    ref_cos, ref_sin = muq.model.conformer.embed_positions(750, torch.float32)
    assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)
    # position 749 at the slowest frequency 10000 ** (-14 / 16), by hand
    angle = 749 * 10000.0 ** -0.875
    assert abs(float(cos[749, 0, 7]) - np.cos(angle)) < 1e-5
    assert abs(float(sin[749, 0, 15]) - np.sin(angle)) < 1e-5
