"""acestep.bin.merge_lora: the adapter folded into the transformer at either scale, a whole checkpoint folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from acestep_testlib import make_tiny_transformer  # noqa: E402

from acestep.bin import merge_lora  # noqa: E402
from acestep.models import load_transformer  # noqa: E402
from acestep.models.lora import save_lora  # noqa: E402
from shirabe.cli import InputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")
LAYERS = ("transformer_blocks.0.attn.to_q", "transformer_blocks.1.cross_attn.to_out.0")
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("acestep_merge")
    ckpt = root / "ckpt"
    make_tiny_transformer(ckpt / "ace_step_transformer")
    (ckpt / "umt5-base").mkdir()
    (ckpt / "umt5-base" / "config.json").write_text("{}")
    base = load_file(str(ckpt / "ace_step_transformer" / WEIGHTS))
    gen = torch.Generator().manual_seed(0)
    adapter = {}
    for name in LAYERS:
        out_f, in_f = base[f"{name}.weight"].shape
        adapter[name] = (torch.randn(4, in_f, generator=gen), torch.randn(out_f, 4, generator=gen) * 0.1)
    save_lora(root / "adapter", adapter)
    config = root / "lora_config.json"
    config.write_text(json.dumps({"r": 4, "lora_alpha": 8, "use_rslora": True, "target_modules": ["to_q"]}))
    return ckpt, root / "adapter", config, base, adapter


def expected(base, adapter, scale):
    out = {k: v.double() for k, v in base.items()}
    for name, (a, b) in adapter.items():
        out[f"{name}.weight"] = out[f"{name}.weight"] + scale * (b.double() @ a.double())
    return out


@pytest.mark.parametrize("with_config", [False, True])
def test_merged_weights_are_base_plus_scaled_update(setup, tmp_path, with_config):
    ckpt, adapter_dir, config, base, adapter = setup
    out = tmp_path / "merged"
    argv = ["--checkpoint-dir", str(ckpt), "--lora-path", str(adapter_dir), "--lora-weight", "0.5",
            "--output-dir", str(out)]
    if with_config:
        argv += ["--lora-config", str(config)]
    assert merge_lora.main(argv) == 0
    scale = 0.5 * (8 / 4 ** 0.5 if with_config else 1.0)  # rslora: alpha / sqrt(r) = 4
    merged = load_file(str(out / "ace_step_transformer" / WEIGHTS))
    want = expected(base, adapter, scale)
    assert merged.keys() == base.keys()
    for key, value in merged.items():
        assert torch.allclose(value.double(), want[key], atol=1e-5), key
    changed = [k for k in merged if not torch.equal(merged[k], base[k])]
    assert sorted(changed) == sorted(f"{n}.weight" for n in LAYERS)
    assert (out / "umt5-base").is_symlink() and (out / "umt5-base" / "config.json").is_file()
    load_transformer(out / "ace_step_transformer")  # loads strictly


def test_copy_others_and_bad_inputs(setup, tmp_path):
    ckpt, adapter_dir, config, _, _ = setup
    out = tmp_path / "merged"
    assert merge_lora.main(["--checkpoint-dir", str(ckpt), "--lora-path", str(adapter_dir), "--output-dir", str(out),
                            "--copy-others", "true", "--save-dtype", "bf16"]) == 0
    assert (out / "umt5-base").is_dir() and not (out / "umt5-base").is_symlink()
    assert load_file(str(out / "ace_step_transformer" / WEIGHTS))[f"{LAYERS[0]}.weight"].dtype == torch.bfloat16
    with pytest.raises(InputError, match="LoRA file not found"):
        merge_lora.main(["--checkpoint-dir", str(ckpt), "--lora-path", str(tmp_path / "none"),
                         "--output-dir", str(tmp_path / "o2")])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"r": 8, "lora_alpha": 8}))
    with pytest.raises(InputError, match="rank"):
        merge_lora.main(["--checkpoint-dir", str(ckpt), "--lora-path", str(adapter_dir), "--lora-config", str(bad),
                         "--output-dir", str(tmp_path / "o3")])


def test_generation_plays_an_adapter_at_its_trained_scale_when_its_config_lies_beside_it(tmp_path):
    from acestep_testlib import make_tiny_checkpoint

    from acestep.models.lora import trained_settings_beside
    from acestep.pipeline import ACEStepPipeline

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt")
    base = load_file(str(ckpt / "ace_step_transformer" / WEIGHTS))
    name = LAYERS[0]
    out_f, in_f = base[f"{name}.weight"].shape
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, in_f, generator=gen), torch.randn(out_f, 4, generator=gen) * 0.1
    folder = tmp_path / "lora"
    save_lora(folder, {name: (a, b)})
    assert trained_settings_beside(folder) is None
    plain = ACEStepPipeline.from_checkpoint_dir(ckpt, lora_path=folder, lora_weight=0.5)
    weight = dict(plain.transformer.named_modules())[name].weight
    assert torch.allclose(weight, base[f"{name}.weight"] + 0.5 * b @ a, atol=1e-6)
    # r 4, alpha 16, rslora: the trainer scaled by 16 / sqrt(4) = 8
    (folder / "lora_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 16, "use_rslora": True,
                                                         "target_modules": ["to_q"]}))
    assert trained_settings_beside(folder / "pytorch_lora_weights.safetensors").scaling == 8.0
    trained = ACEStepPipeline.from_checkpoint_dir(ckpt, lora_path=folder, lora_weight=0.5)
    weight = dict(trained.transformer.named_modules())[name].weight
    assert torch.allclose(weight, base[f"{name}.weight"] + 4.0 * b @ a, atol=1e-5)
