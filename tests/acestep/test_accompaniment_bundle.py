"""The accompaniment model bundle (round trip, strict one-line errors, trained LoRA scaling), latent
blending by rows and frequency bands, and the loudness helpers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from acestep.accompaniment.blend import blend_latents, parse_bands, row_edges_hz
from acestep.accompaniment.bundle import load_bundle, save_bundle
from acestep.accompaniment.controlnet import ControlEncoder
from acestep.accompaniment.loudness import mix_matched, normalize_loudness, remove_dc
from acestep.config import TrainingConfig
from shirabe.cli import InputError

WIDTH = 64  # inner width of a tiny transformer (4 heads x 16)


def controlnet_config(**acc) -> TrainingConfig:
    return TrainingConfig.model_validate({
        "lora": {"r": 4, "lora_alpha": 8, "use_rslora": True, "target_modules": ["to_q", "to_v"]},
        "accompaniment": {"mode": "controlnet", "control_encoder_dim": 32, "control_encoder_depth": 1,
                          "injection_layers": [0, 1], "controlnet_scale": 0.7, **acc}})


def encoder(seed: int = 0) -> ControlEncoder:
    torch.manual_seed(seed)
    enc = ControlEncoder(WIDTH, [0, 1], dim=32, depth=1, heads=4)
    for layer in enc.injections.values():
        torch.nn.init.normal_(layer.weight, std=0.05)
    return enc


def adapter(rank: int = 4) -> dict:
    g = torch.Generator().manual_seed(3)
    return {f"transformer_blocks.{i}.attn.to_q": (torch.randn(rank, WIDTH, generator=g),
                                                  torch.randn(WIDTH, rank, generator=g)) for i in range(2)}


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_round_trip_keeps_config_adapter_and_control_encoder(tmp_path):
    config, enc, lora = controlnet_config(), encoder(), adapter()
    save_bundle(tmp_path / "b", config, adapter=lora, control_encoder=enc)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "accompaniment_config.json", "control_encoder.json", "control_encoder.safetensors", "lora_config.json",
        "pytorch_lora_weights.safetensors"]
    assert json.loads((tmp_path / "b" / "lora_config.json").read_text()) == {
        "r": 4, "lora_alpha": 8.0, "use_rslora": True, "target_modules": ["to_q", "to_v"], "lora_dropout": 0.0}
    assert json.loads((tmp_path / "b" / "control_encoder.json").read_text()) == {
        "out_dim": WIDTH, "injection_layers": [0, 1], "dim": 32, "depth": 1, "heads": 4}
    bundle = load_bundle(tmp_path / "b")
    assert bundle.config == config and bundle.mode == "controlnet"
    assert bundle.lora_settings.scaling == pytest.approx(8 / 2)  # alpha / sqrt(r) = 8 / 2
    assert set(bundle.adapter) == set(lora)
    for name, (a, b) in lora.items():
        assert torch.equal(bundle.adapter[name][0], a) and torch.equal(bundle.adapter[name][1], b)
    loaded = bundle.control_encoder.state_dict()
    original = enc.state_dict()
    assert set(loaded) == set(original)
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    assert any(loaded[f"injections.{i}.weight"].abs().sum() > 0 for i in (0, 1))


def test_merge_uses_the_trained_scaling_times_the_weight(tmp_path):
    from acestep.models import ACEStepTransformer, TransformerConfig
    from acestep.models.config import LyricEncoderConfig

    config = TrainingConfig.model_validate({"lora": {"r": 4, "lora_alpha": 8, "use_rslora": False}})
    save_bundle(tmp_path / "b", config, adapter=adapter())
    bundle = load_bundle(tmp_path / "b")
    torch.manual_seed(0)
    model = ACEStepTransformer(TransformerConfig(
        num_layers=2, attention_head_dim=16, num_attention_heads=4, ssl_encoder_depths=(1, 1),
        ssl_latent_dims=(8, 8), lyric_hidden_size=16, lyric_encoder_vocab_size=10,
        lyric_encoder=LyricEncoderConfig(16, 2, 32, 1)))
    before = model.transformer_blocks[1].attn.to_q.weight.detach().clone()
    assert bundle.merge_lora(model, 0.5) == list(adapter())
    a, b = adapter()["transformer_blocks.1.attn.to_q"]
    # alpha / r = 2 (no rslora), times lora_weight 0.5
    torch.testing.assert_close(model.transformer_blocks[1].attn.to_q.weight, before + 1.0 * (b @ a))


def test_image2image_bundle_has_only_its_config_and_resaving_drops_stale_files(tmp_path):
    save_bundle(tmp_path / "b", controlnet_config(), adapter=adapter(), control_encoder=encoder())
    config = TrainingConfig.model_validate({"accompaniment": {"reference_strength": 0.3}})
    save_bundle(tmp_path / "b", config)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["accompaniment_config.json"]
    bundle = load_bundle(tmp_path / "b")
    assert bundle.mode == "image2image" and bundle.adapter is None and bundle.control_encoder is None
    assert bundle.config.accompaniment.reference_strength == 0.3


def test_save_refuses_a_bundle_that_contradicts_its_config(tmp_path):
    with pytest.raises(ValueError, match="needs its control encoder"):
        save_bundle(tmp_path / "b", controlnet_config())
    with pytest.raises(ValueError, match="no control encoder"):
        save_bundle(tmp_path / "b", TrainingConfig(), control_encoder=encoder())
    with pytest.raises(ValueError, match="rank"):
        save_bundle(tmp_path / "b", TrainingConfig.model_validate({"lora": {"r": 8}}), adapter=adapter(4))


@pytest.mark.parametrize("damage, file, words", [
    ("no_config", "accompaniment_config.json", "not found"),
    ("no_lora_config", "lora_config.json", "needs both"),
    ("no_control_weights", "control_encoder.safetensors", "not found"),
    ("depth", "control_encoder.json", "depth is 2"),
    ("missing_tensor", "control_encoder.safetensors", "missing"),
    ("rank", "pytorch_lora_weights.safetensors", "r=8"),
    ("image2image_with_encoder", "control_encoder", "image2image bundle"),
    ("bad_config", "accompaniment_config.json", "reference_strength"),
])
def test_damaged_bundles_are_one_line_errors_naming_the_file(tmp_path, damage, file, words):
    from safetensors.torch import load_file, save_file

    folder = save_bundle(tmp_path / "b", controlnet_config(), adapter=adapter(), control_encoder=encoder())
    if damage == "no_config":
        (folder / "accompaniment_config.json").unlink()
    elif damage == "no_lora_config":
        (folder / "lora_config.json").unlink()
    elif damage == "no_control_weights":
        (folder / "control_encoder.safetensors").unlink()
    elif damage == "depth":
        args = json.loads((folder / "control_encoder.json").read_text())
        (folder / "control_encoder.json").write_text(json.dumps({**args, "depth": 2}))
    elif damage == "missing_tensor":
        state = load_file(str(folder / "control_encoder.safetensors"))
        del state["out_proj.weight"]
        save_file(state, str(folder / "control_encoder.safetensors"))
    elif damage == "rank":
        data = json.loads((folder / "lora_config.json").read_text())
        (folder / "lora_config.json").write_text(json.dumps({**data, "r": 8}))
    elif damage == "image2image_with_encoder":
        data = json.loads((folder / "accompaniment_config.json").read_text())
        data["accompaniment"]["mode"] = "image2image"
        (folder / "accompaniment_config.json").write_text(json.dumps(data))
    elif damage == "bad_config":
        data = json.loads((folder / "accompaniment_config.json").read_text())
        data["accompaniment"]["reference_strength"] = 1.5
        (folder / "accompaniment_config.json").write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        load_bundle(folder)
    text = one_line(exc)
    assert file in text and words in text, text


# ---- blending ---------------------------------------------------------------------------------

def test_ratio_one_in_rows_0_to_2_copies_the_reference_there_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    generated = torch.randn(1, 8, 16, 10, generator=g)
    reference = torch.randn(1, 8, 16, 12, generator=g)  # longer: cut to the generated length
    out = blend_latents(generated, reference, 1.0, parse_bands("0-2"))
    assert torch.equal(out[:, :, :3], reference[:, :, :3, :10])
    assert torch.equal(out[:, :, 3:], generated[:, :, 3:])
    mixed = blend_latents(generated, reference, 0.3, [5])
    torch.testing.assert_close(mixed[:, :, 5], 0.7 * generated[:, :, 5] + 0.3 * reference[:, :, 5, :10])
    assert torch.equal(mixed[:, :, :5], generated[:, :, :5])
    short = blend_latents(generated, reference[..., :4], 1.0)  # frames past the reference stay generated
    assert torch.equal(short[..., :4], reference[..., :4]) and torch.equal(short[..., 4:], generated[..., 4:])


def test_band_lists_by_rows_and_by_hz():
    # Slaney mel: 200/3 Hz per mel below 1 kHz. 40 Hz = 0.6 mel, 16 kHz = 15 + ln 16 / (ln 6.4 / 27) mel;
    # 130 points -> step; the boundary of rows 0|1 is at bin 7.5's centre, i.e. lo + 8.5 steps.
    lo, hi = 0.6, 15 + math.log(16) / (math.log(6.4) / 27)
    step = (hi - lo) / 129
    edges = row_edges_hz()
    assert edges[0] == 40.0 and edges[-1] == 16000.0 and len(edges) == 17
    assert edges[1] == pytest.approx((lo + 8.5 * step) * 200 / 3)        # ~280 Hz
    assert edges[3] == pytest.approx((lo + 24.5 * step) * 200 / 3)       # ~733 Hz
    assert parse_bands("0-2") == [0, 1, 2]
    assert parse_bands("4, 0,5-6") == [0, 4, 5, 6]
    assert parse_bands("40-250Hz") == [0]
    assert parse_bands("250-300hz") == [0, 1]
    assert parse_bands("12k-16kHz") == [14, 15]
    for bad in ("2-1", "16", "x", "0-2,", "300-200Hz", "20000-30000Hz"):
        with pytest.raises(ValueError):
            parse_bands(bad)


# ---- loudness ---------------------------------------------------------------------------------

def tone(freq: float, amp: float, seconds: float = 2.0, sr: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return np.stack([amp * np.sin(2 * np.pi * freq * t)] * 2, axis=1).astype(np.float32)


def lufs(wav: np.ndarray, sr: int = 48000) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(sr).integrated_loudness(wav.astype(np.float64))


def test_normalize_to_minus_14_lufs_and_silence_untouched():
    out, gain = normalize_loudness(tone(440, 0.05), 48000)
    assert lufs(out) == pytest.approx(-14.0, abs=0.05)
    assert np.allclose(out, tone(440, 0.05) * gain)
    silent = np.zeros((48000, 2), np.float32)
    out, gain = normalize_loudness(silent, 48000)
    assert gain == 1.0 and not out.any()
    short, _ = normalize_loudness(tone(440, 0.05, seconds=0.2), 48000)  # shorter than one 400 ms block
    assert np.abs(short).max() > 0.05


def test_mix_puts_the_accompaniment_3_lu_under_the_vocal_and_limits_the_peak():
    vocal, acc = tone(440, 0.1), tone(110, 0.4)
    mix, acc_gain, mix_gain = mix_matched(vocal, acc, 48000)
    assert mix_gain == 1.0
    assert lufs(acc * acc_gain) == pytest.approx(lufs(vocal) - 3.0, abs=0.05)
    np.testing.assert_allclose(mix, vocal + acc_gain * acc, atol=1e-6)
    loud, _, mix_gain = mix_matched(tone(440, 0.9), tone(220, 0.9), 48000)
    assert mix_gain < 1.0 and np.abs(loud).max() == pytest.approx(0.98, abs=1e-6)


def test_remove_dc_takes_out_each_channels_offset_only():
    t = np.arange(4800) / 48000
    tone = np.sin(2 * np.pi * 100 * t)  # ten whole periods: zero mean
    wav = np.stack([tone + 0.3, 0.5 * tone - 0.2], axis=1).astype(np.float32)
    out = remove_dc(wav)
    assert np.allclose(out[:, 0], tone, atol=1e-5) and np.allclose(out[:, 1], 0.5 * tone, atol=1e-5)
