"""Small stand-ins shared by the ACE-Step tests: a tiny UMT5 directory in the released layout."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_UMT5_DIM = 768  # the transformer's genre_embedder expects umt5-base's width


def make_tiny_umt5(folder: Path, seed: int = 0, num_layers: int = 2) -> Path:
    """A random-weight UMT5 encoder (d_model 768, few small layers) + a word-level fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = ("pop rock jazz piano guitar drums female male vocal bass synth upbeat sad happy electronic "
             "acoustic japanese anime city folk ballad energetic calm strings orchestral lofi").split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}, ",": len(words) + 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(folder))
    config = UMT5Config(vocab_size=len(vocab), d_model=TINY_UMT5_DIM, d_kv=16, d_ff=64, num_layers=num_layers,
                        num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    UMT5EncoderModel(config).save_pretrained(str(folder))
    return folder


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_TRANSFORMER = dict(num_layers=2, attention_head_dim=16, num_attention_heads=4, ssl_encoder_depths=(1, 1),
                        ssl_latent_dims=(32, 24), lyric_hidden_size=32, lyric_encoder_vocab_size=6693)


def make_tiny_transformer(folder: Path, seed: int = 0, **overrides):
    """A random-weight transformer folder (released layout) that takes the real lyric vocabulary's ids."""
    from acestep.models import ACEStepTransformer, TransformerConfig, save_transformer
    from acestep.models.config import LyricEncoderConfig

    values = dict(TINY_TRANSFORMER)
    values.update(overrides)
    hidden = values["lyric_hidden_size"]
    config = TransformerConfig(**values, lyric_encoder=LyricEncoderConfig(hidden, 2, 2 * hidden, 1))
    torch.manual_seed(seed)
    model = ACEStepTransformer(config)
    with torch.no_grad():  # make the gates and the timestep matter, as a trained model's do
        for block in model.transformer_blocks:
            block.scale_shift_table.mul_(3.0)
    return save_transformer(model, folder)


def make_tiny_checkpoint(root: Path, seed: int = 0) -> Path:
    """A checkpoint folder in the released layout: ``ace_step_transformer/``, ``music_dcae_f8c8/``,
    ``music_vocoder/`` (the tiny DCAE fixture) and ``umt5-base/`` (tiny)."""
    import shutil

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    make_tiny_transformer(root / "ace_step_transformer", seed)
    for name in ("music_dcae_f8c8", "music_vocoder"):
        shutil.copytree(FIXTURES / "acestep_dcae_tiny" / name, root / name, dirs_exist_ok=True)
        for p in (root / name).iterdir():
            p.chmod(0o644)
    make_tiny_umt5(root / "umt5-base", seed)
    return root
