"""Accompaniment configs: templates, LoRA presets, one-line errors, Optuna search space and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch

from acestep.bin import validate_config
from acestep.config import (
    LORA_PRESETS,
    AccompanimentConfig,
    LoRAConfig,
    OptunaConfig,
    TrainingConfig,
    apply_overrides,
    load_config,
    lora_preset,
    make_pruner,
    suggest,
)
from acestep.models import ACEStepTransformer, TransformerConfig
from acestep.models.config import LyricEncoderConfig
from shirabe.cli import InputError, run_main

CONF = Path(__file__).resolve().parents[2] / "egs" / "acestep_accompaniment" / "conf"


def write(tmp_path: Path, data, name: str = "conf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def error_of(tmp_path: Path, data, kind: str = "training", num_layers: int = 24) -> str:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as info:
        load_config(path, kind, num_layers=num_layers)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    return text[len(f"{path}: "):]


def test_templates_validate():
    i2i = load_config(CONF / "image2image_base.json")
    assert i2i.accompaniment.mode == "image2image" and i2i.accompaniment.reference_strength == 0.5
    assert i2i.lora.r == 128 and "genre_embedder" in i2i.lora.target_modules
    cn = load_config(CONF / "controlnet_base.json")
    assert cn.accompaniment.mode == "controlnet" and cn.accompaniment.injection_layers == [0, 2, 4, 6, 8]
    search = load_config(CONF / "optuna_search.json", "auto")
    assert isinstance(search, OptunaConfig) and search.pruner_type == "median"
    assert search.search_space["learning_rate"].log is True  # "loguniform"
    assert search.search_space["control_encoder_dim"].choices == [1024, 1536, 2048]


def test_presets_are_the_plans_layouts():
    attention = ["to_q", "to_k", "to_v", "to_out.0"]
    assert lora_preset("structure").target_modules == [*attention, "lyric_proj"]
    assert lora_preset("structure").r == 128
    assert lora_preset("style").target_modules == [*attention, "genre_embedder"]
    assert lora_preset("style").r == 256
    assert lora_preset("balance").target_modules == [*attention, "genre_embedder", "lyric_proj"]
    assert lora_preset("balance").r == 192
    assert lora_preset("minimal").target_modules == ["genre_embedder"]
    assert lora_preset("minimal").r == 64
    with pytest.raises(InputError, match="allowed: structure, style, balance, minimal"):
        lora_preset("huge")


def test_preset_in_a_file_fills_only_what_the_file_leaves_out(tmp_path):
    config = load_config(write(tmp_path, {"lora": {"preset": "balance", "lora_alpha": 64}}))
    assert config.lora.r == 192 and config.lora.lora_alpha == 64
    assert config.lora.target_modules == ["to_q", "to_k", "to_v", "to_out.0", "genre_embedder", "lyric_proj"]
    config = load_config(write(tmp_path, {"lora": {"preset": "minimal", "r": 8}}))
    assert config.lora.r == 8 and config.lora.target_modules == ["genre_embedder"]


def tiny_model_linears() -> list[str]:
    config = TransformerConfig(num_layers=3, attention_head_dim=8, num_attention_heads=2, ssl_encoder_depths=(1, 2),
                               ssl_latent_dims=(8, 8), lyric_hidden_size=16, lyric_encoder_vocab_size=10,
                               lyric_encoder=LyricEncoderConfig(16, 2, 16, 2))
    with torch.device("meta"):
        model = ACEStepTransformer(config)
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def test_every_preset_module_exists_in_the_transformer():
    linears = tiny_model_linears()

    def matches(target):  # peft's rule: the module path equals the name or ends with "." + name
        return [n for n in linears if n == target or n.endswith("." + target)]

    for preset in LORA_PRESETS.values():
        for target in preset["target_modules"]:
            assert matches(target), target
    assert len(matches("to_q")) == 2 * 3  # self- and cross-attention of 3 blocks
    assert matches("to_out.0") and matches("linear_q") and matches("speaker_embedder")


def test_unknown_module_is_named_with_the_valid_ones(tmp_path):
    message = error_of(tmp_path, {"lora": {"target_modules": ["to_q", "to_query"]}})
    assert message.startswith("lora.target_modules: unknown module 'to_query'")
    assert "to_q" in message and "genre_embedder" in message and "linear_q" in message
    # longer dotted suffixes of real paths are accepted, as peft matches them
    assert LoRAConfig(target_modules=["cross_attn.to_q", "timestep_embedder.linear_1"]).r == 256


@pytest.mark.parametrize("data, expected", [
    ({"lora": {"r": 0}}, "lora.r: Input should be greater than or equal to 1 (allowed: [1, 1024])"),
    ({"accompaniment": {"reference_strength": 1.0}},
     "accompaniment.reference_strength: Input should be less than 1 (allowed: [0.0, 1.0))"),
    ({"accompaniment": {"mode": "img2img"}},
     "accompaniment.mode: Input should be 'image2image' or 'controlnet' (allowed: image2image, controlnet)"),
    ({"learning_rate": -1}, "learning_rate: Input should be greater than 0 (allowed: (0.0, inf))"),
    ({"batch_size": "two"}, "batch_size: Input should be a valid integer, unable to parse string as an integer "
                            "(allowed: [1, inf))"),
])
def test_invalid_field_gives_one_line_with_the_allowed_range(tmp_path, data, expected):
    assert error_of(tmp_path, data) == expected


def test_unknown_field_lists_the_known_ones(tmp_path):
    message = error_of(tmp_path, {"lora": {"rank": 8}})
    assert message.startswith("lora.rank: unknown field 'rank' (allowed: preset, r, lora_alpha, target_modules")
    assert error_of(tmp_path, {"learning_rat": 1e-4}).startswith("learning_rat: unknown field")


def test_layers_are_checked_against_the_model_depth(tmp_path):
    controlnet = {"accompaniment": {"mode": "controlnet", "injection_layers": [0, 2]}, "ssl_depths": [1, 1]}
    assert load_config(write(tmp_path, controlnet), num_layers=3).accompaniment.injection_layers == [0, 2]
    assert error_of(tmp_path, controlnet, num_layers=2) == (
        "accompaniment.injection_layers: layer 2 does not exist in a 2-layer transformer (allowed: 0..1)")
    # image2image does not use injection_layers: the default [0, 4, 8, 12] passes on a small model
    image2image = {"accompaniment": {"mode": "image2image"}, "ssl_depths": [1, 1]}
    assert load_config(write(tmp_path, image2image), num_layers=2).accompaniment.injection_layers == [0, 4, 8, 12]
    assert error_of(tmp_path, {"ssl_depths": [8, 8]}, num_layers=4).startswith("ssl_depths: layer 8 does not exist")


def test_unreadable_files(tmp_path):
    path = write(tmp_path, '{\n  "lora": {"r": 4,}\n}')
    with pytest.raises(InputError, match=r"conf.json:2: not valid JSON"):
        load_config(path)
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "missing.json")
    yaml_path = write(tmp_path, "lora:\n  preset: minimal\nmax_steps: 10\n", "conf.yaml")
    config = load_config(yaml_path)
    assert config.max_steps == 10 and config.lora.r == 64


def test_search_space_errors(tmp_path):
    assert error_of(tmp_path, {"search_space": {"lora_rank": {"type": "int", "low": 0, "high": 64}}}, "optuna") == (
        "search_space.lora_rank: 0 is not a valid lora.r: Input should be greater than or equal to 1 "
        "(allowed: [1, 1024])")
    assert error_of(tmp_path, {"search_space": {"dropout": {"type": "float", "low": 0, "high": 0.5}}},
                    "optuna").startswith("search_space.dropout: unknown parameter (allowed: lora_rank, ")
    assert error_of(tmp_path, {"search_space": {"shift": {"type": "float", "low": 3, "high": 1}}}, "optuna") == (
        "search_space.shift: low must be below high, got low=3.0, high=1.0")
    assert error_of(tmp_path, {"search_space": {"shift": {"type": "gauss", "low": 1, "high": 3}}},
                    "optuna").endswith("(allowed: float, int, categorical, loguniform)")
    assert error_of(tmp_path, {"pruner_type": "asha"}, "optuna").endswith(
        "(allowed: median, successive_halving, hyperband)")


def test_suggest_draws_within_the_space():
    space = load_config(CONF / "optuna_search.json", "optuna").search_space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = suggest(trial, space)
        assert set(params) == set(space)
        assert params["lora_rank"] in range(64, 513, 64)
        assert params["control_encoder_depth"] in (4, 6, 8, 10, 12)
        assert 1e-5 <= params["learning_rate"] <= 1e-3 and 0.1 <= params["reference_strength"] <= 0.9
        assert params["control_encoder_dim"] in (1024, 1536, 2048)
        assert trial.distributions["learning_rate"].log is True
        config = apply_overrides(TrainingConfig(), params)
        assert config.lora.r == params["lora_rank"]
        assert config.accompaniment.reference_strength == params["reference_strength"]
        assert config.learning_rate == params["learning_rate"]
        study.tell(trial, 0.0)
    # a raw dict search space works as well
    assert set(suggest(study.ask(), {"shift": {"type": "loguniform", "low": 1, "high": 5}})) == {"shift"}


def test_apply_overrides_revalidates():
    base = TrainingConfig()
    new = apply_overrides(base, {"lora.r": 16, "accompaniment.mode": "controlnet", "injection_layers": [23, 1]},
                          source="trial 3")
    assert (new.lora.r, new.accompaniment.mode, new.accompaniment.injection_layers) == (16, "controlnet", [1, 23])
    assert base.lora.r == 256  # the original is untouched
    with pytest.raises(InputError, match=r"^trial 3: accompaniment.reference_strength: .*\(allowed: \[0.0, 1.0\)\)$"):
        apply_overrides(base, {"reference_strength": 1.5}, source="trial 3")
    with pytest.raises(InputError, match=r"^trial 3: warmup: unknown parameter"):
        apply_overrides(base, {"warmup": 5}, source="trial 3")


def test_pruners():
    assert isinstance(make_pruner(OptunaConfig()), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(OptunaConfig(pruner_type="hyperband")), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner(OptunaConfig(pruner_type="successive_halving")),
                      optuna.pruners.SuccessiveHalvingPruner)


def test_defaults_match_the_plan():
    t = TrainingConfig()
    assert (t.learning_rate, t.max_steps, t.warmup_steps, t.weight_decay, t.ssl_coeff, t.ssl_depths, t.shift,
            t.structure_loss_weight) == (1e-4, 200000, 100, 0.01, 1.0, [8, 8], 3.0, 0.0)
    a = AccompanimentConfig()
    assert (a.mode, a.output_type, a.reference_strength, a.controlnet_scale) == ("image2image", "accompaniment",
                                                                                  0.5, 1.0)


def test_validate_config_binary(tmp_path, capsys):
    assert validate_config.main([str(CONF / "controlnet_base.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accompaniment"]["injection_layers"] == [0, 2, 4, 6, 8] and printed["lora"]["r"] == 256
    bad = write(tmp_path, {"accompaniment": {"mode": "controlnet", "injection_layers": [5]}, "ssl_depths": [1, 1]})
    with pytest.raises(SystemExit) as info:
        run_main(validate_config.main, [str(bad), "--num-layers", "4"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        f"{bad}: accompaniment.injection_layers: layer 5 does not exist in a 4-layer transformer (allowed: 0..3)")


def test_search_space_of_a_small_model_is_judged_on_the_searched_value_only(tmp_path):
    path = tmp_path / "optuna.json"
    path.write_text(json.dumps({"n_trials": 2, "search_space": {
        "reference_strength": {"type": "float", "low": 0.2, "high": 0.8}}}))
    assert load_config(path, "optuna", num_layers=2).search_space["reference_strength"].high == 0.8
    path.write_text(json.dumps({"n_trials": 2, "search_space": {
        "reference_strength": {"type": "float", "low": 0.2, "high": 1.5}}}))
    with pytest.raises(InputError, match="reference_strength"):
        load_config(path, "optuna", num_layers=2)
