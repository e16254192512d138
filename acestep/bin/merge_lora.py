"""Fold an ACE-Step LoRA adapter into the transformer: a checkpoint folder that needs no adapter.

Writes ``OUT/ace_step_transformer/`` (``config.json`` + ``diffusion_pytorch_model.safetensors``)
with ``W += scale · B @ A`` for every adapted layer, and makes ``OUT`` a whole checkpoint folder:
the other subfolders of ``--checkpoint-dir`` (``music_dcae_f8c8/``, ``music_vocoder/``,
``umt5-base/``, ...) are linked (symbolic links to their absolute paths) or, with
``--copy-others true``, copied. ``acestep.bin.generate --checkpoint-dir OUT`` then runs the
merged model.

The scale: without ``--lora-config`` it is ``--lora-weight`` (the released pipeline's view: it
loads adapters with alpha = r); with the LoRA config the adapter was trained with it is
``--lora-weight × lora_alpha / sqrt(r)`` (rslora) or ``× lora_alpha / r``, the scale training
used (``acestep.bin.train`` writes it to ``EXP/lora/lora_config.json``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from acestep.models.lora import load_lora, read_lora_config
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)
TRANSFORMER_DIR = "ace_step_transformer"
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.merge_lora", description=__doc__)
    p.add_argument("--checkpoint-dir", type=Path, required=True, help="released checkpoint folder (required)")
    p.add_argument("--lora-path", type=Path, required=True,
                   help="adapter: a folder holding pytorch_lora_weights.safetensors, or the file (required)")
    p.add_argument("--lora-weight", type=float, default=1.0, help="multiplier of the adapter's update")
    p.add_argument("--lora-config", type=Path, default=None,
                   help="the LoRA config JSON the adapter was trained with: merge at the training scale "
                        "(default: none = the released pipeline's scale, lora_weight alone)")
    p.add_argument("--output-dir", type=Path, required=True, help="the merged checkpoint folder (required)")
    p.add_argument("--save-dtype", choices=list(DTYPES), default="float32",
                   help="precision of the merged weights, and of the model while merging (bf16 halves the memory "
                        "merging needs; the released transformer is 16-bit)")
    add_bool_argument(p, "--copy-others", False, "copy the checkpoint's other subfolders instead of linking them")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from acestep.models import load_transformer, save_transformer

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    source = args.checkpoint_dir / TRANSFORMER_DIR
    if not source.is_dir():
        raise InputError(f"{source}: no transformer folder in --checkpoint-dir")
    out = args.output_dir
    if out.resolve() == args.checkpoint_dir.resolve():
        raise InputError(f"{out}: --output-dir must differ from --checkpoint-dir")
    settings = read_lora_config(args.lora_config) if args.lora_config is not None else None
    model = load_transformer(source, dtype=DTYPES[args.save_dtype])  # the update itself is computed in float32
    merged = load_lora(model, args.lora_path, args.lora_weight, settings)
    scale = args.lora_weight * (settings.scaling if settings is not None else 1.0)
    logger.info("merged %d adapted layers of %s at scale %g", len(merged), args.lora_path, scale)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".tmp.{TRANSFORMER_DIR}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_transformer(model, tmp, dtype=DTYPES[args.save_dtype])
    target = out / TRANSFORMER_DIR
    if target.exists() or target.is_symlink():
        if target.is_symlink() or target.is_file():
            target.unlink()
        else:
            shutil.rmtree(target)
    tmp.rename(target)
    others = []
    for sub in sorted(args.checkpoint_dir.iterdir()):
        if sub.name == TRANSFORMER_DIR or sub.name.startswith("."):
            continue
        dst = out / sub.name
        if dst.exists() or dst.is_symlink():
            continue
        if args.copy_others:
            (shutil.copytree if sub.is_dir() else shutil.copy2)(sub, dst)
        else:
            os.symlink(sub.resolve(), dst, target_is_directory=sub.is_dir())
        others.append(sub.name)
    logger.info("wrote %s (%s); %s from %s: %s", target, args.save_dtype,
                "copied" if args.copy_others else "linked", args.checkpoint_dir, ", ".join(others) or "nothing")
    return 0


if __name__ == "__main__":
    run_main(main)
