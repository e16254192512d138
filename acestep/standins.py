"""Small random-weight stand-ins for a released ACE-Step checkpoint folder.

:func:`make_standin_checkpoint` writes the released layout (``ace_step_transformer/``,
``music_dcae_f8c8/``, ``music_vocoder/``, ``umt5-base/``) with tiny random networks, so that
every binary and recipe runs end to end on a CPU without the 3.5 B download. Their latents and
audio mean nothing: they prove the pipeline, not the music. The transformer takes the real lyric
vocabulary's ids (6693 rows); the UMT5 stand-in has umt5-base's width (768) and a word-level
tokenizer over a few dozen tag words (others become ``<unk>``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

TINY_TRANSFORMER = dict(num_layers=2, attention_head_dim=16, num_attention_heads=4, ssl_encoder_depths=(1, 1),
                        ssl_latent_dims=(32, 24), lyric_hidden_size=32, lyric_encoder_vocab_size=6693)
TINY_DCAE = {
    "_class_name": "AutoencoderDC", "_diffusers_version": "0.32.2", "attention_head_dim": 8,
    "decoder_act_fns": "silu", "decoder_block_out_channels": [16, 32, 32, 32],
    "decoder_block_types": ["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"],
    "decoder_layers_per_block": [1, 1, 2, 2], "decoder_norm_types": "rms_norm",
    "decoder_qkv_multiscales": [[], [], [5], [5]], "downsample_block_type": "Conv",
    "encoder_block_out_channels": [16, 32, 32, 32],
    "encoder_block_types": ["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"],
    "encoder_layers_per_block": [1, 1, 2, 2], "encoder_qkv_multiscales": [[], [], [5], [5]],
    "in_channels": 2, "latent_channels": 8, "scaling_factor": 0.41407, "upsample_block_type": "interpolate",
}
TINY_VOCODER = dict(depths=[1, 1, 2, 1], dims=[16, 24, 32, 40], num_mels=40, upsample_initial_channel=128,
                    resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]])
UMT5_DIM = 768
TAG_WORDS = ("pop rock jazz piano guitar drums female male vocal bass synth upbeat sad happy electronic acoustic "
             "japanese anime city folk ballad energetic calm strings orchestral lofi organ brass band bpm key "
             "major minor ensemble accompaniment instrumental").split()


def _save_safetensors(state: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


def _write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_transformer(folder: Path, seed: int = 0, **overrides) -> Path:
    from acestep.models import ACEStepTransformer, TransformerConfig, save_transformer
    from acestep.models.config import LyricEncoderConfig

    values = dict(TINY_TRANSFORMER)
    values.update(overrides)
    hidden = values["lyric_hidden_size"]
    config = TransformerConfig(**values, lyric_encoder=LyricEncoderConfig(hidden, 2, 2 * hidden, 1))
    torch.manual_seed(seed)
    model = ACEStepTransformer(config)
    with torch.no_grad():  # gates and timestep that matter, as in a trained model
        for block in model.transformer_blocks:
            block.scale_shift_table.mul_(3.0)
    return save_transformer(model, folder)


def write_dcae(folder: Path, seed: int = 0) -> Path:
    from acestep.dcae import build_dcae

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_dcae({k: v for k, v in TINY_DCAE.items() if not k.startswith("_")})
    _save_safetensors(model.state_dict(), folder / "diffusion_pytorch_model.safetensors")
    _write_json(TINY_DCAE, folder / "config.json")
    return folder


def write_vocoder(folder: Path, seed: int = 0) -> Path:
    from acestep.dcae import VocoderConfig, build_vocoder

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = VocoderConfig(**TINY_VOCODER)
    model = build_vocoder(config)
    _save_safetensors(model.state_dict(), folder / "diffusion_pytorch_model.safetensors")
    _write_json({"_class_name": "ADaMoSHiFiGANV1", "_diffusers_version": "0.32.2", **config.to_dict()},
                folder / "config.json")
    return folder


def write_umt5(folder: Path, seed: int = 0, num_layers: int = 2) -> Path:
    """A random-weight UMT5 encoder (d_model 768, small layers) + a word-level fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(TAG_WORDS)}}
    vocab[","] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(folder))
    config = UMT5Config(vocab_size=len(vocab), d_model=UMT5_DIM, d_kv=16, d_ff=64, num_layers=num_layers,
                        num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    UMT5EncoderModel(config).save_pretrained(str(folder))
    return folder


def make_standin_checkpoint(root: str | Path, seed: int = 0) -> Path:
    """The released folder layout with tiny random networks (see the module docstring)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_transformer(root / "ace_step_transformer", seed)
    write_dcae(root / "music_dcae_f8c8", seed + 1)
    write_vocoder(root / "music_vocoder", seed + 2)
    write_umt5(root / "umt5-base", seed + 3)
    return root
