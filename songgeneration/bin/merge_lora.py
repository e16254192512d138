"""Fold a LoRA adapter into its base LeLM: a full checkpoint folder in upstream's format.

The base is ``paths.base_model_path`` of ``train_config.yaml`` (``--config``), the adapter the
folder ``songgeneration.bin.train`` wrote (``adapter_model.safetensors`` + ``adapter_config.json``;
default ``<paths.output_dir>/lora``). ``--output-dir`` gets the base's ``config.yaml`` and
``model.pt`` (``audiolm.*`` keys) with the merged weights, which ``songgeneration.models.load_lelm``
and generation load like a released checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from shirabe.cli import ArgumentParser, InputError, add_verbose_argument, get_logger, run_main
from songgeneration.train_config import load_train_config

logger = get_logger("songgeneration.bin.merge_lora")
CONFIG_NAME = "config.yaml"
SAVE_DTYPES = {"float16": torch.float16, "bf16": torch.bfloat16, "float32": torch.float32}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.merge_lora", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="train_config.yaml of the LoRA run (required)")
    p.add_argument("--adapter", type=Path, default=None,
                   help="adapter folder (default: <paths.output_dir>/lora of the config)")
    p.add_argument("--output-dir", type=Path, required=True, help="folder for config.yaml + model.pt (required)")
    p.add_argument("--save-dtype", choices=list(SAVE_DTYPES), default="float16",
                   help="precision of model.pt (the releases are float16)")
    add_verbose_argument(p)
    return p


def merge(base_dir: Path, adapter: Path, output_dir: Path, dtype: torch.dtype = torch.float16) -> Path:
    from songgeneration.models import load_lelm, save_lelm
    from songgeneration.training.lora import load_adapted, merge_adapter

    base = load_lelm(base_dir, dtype=torch.float32, tokenizer_dir=None)
    merged = merge_adapter(load_adapted(base, adapter))
    output_dir = Path(output_dir)
    tmp = output_dir.with_name(f".tmp.{output_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(base_dir / CONFIG_NAME, tmp / CONFIG_NAME)
    save_lelm(merged, tmp, dtype=dtype)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    tmp.rename(output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    config = load_train_config(args.config)
    base_dir = config.resolve(config.paths.base_model_path)
    if args.output_dir.exists() and any(f.name not in (CONFIG_NAME, "model.pt") for f in args.output_dir.iterdir()):
        raise InputError(f"{args.output_dir}: exists and holds other files than config.yaml and model.pt; "
                         "choose a new --output-dir")
    if not (base_dir / "model.pt").is_file():
        raise InputError(f"{config.source}: paths.base_model_path: no model.pt in {base_dir}")
    adapter = args.adapter if args.adapter is not None else config.resolve(config.paths.output_dir) / "lora"
    if not adapter.is_dir():
        raise InputError(f"{adapter}: adapter folder not found")
    out = merge(base_dir, adapter, args.output_dir, SAVE_DTYPES[args.save_dtype])
    logger.info("wrote %s (config.yaml + model.pt)", out)
    return 0


if __name__ == "__main__":
    run_main(main)
