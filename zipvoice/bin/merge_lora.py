"""Merge LoRA/DoRA adapters from a fine-tuning checkpoint into a plain ZipVoice model.

Reads the base model directory (model.json, tokens.txt and the weights) and an
adapter checkpoint written by the trainer in LoRA/DoRA mode (adapter tensors
under "model" or "model_avg", settings under "finetune"), folds the adapters
into the base weights, and writes a model directory that
``zipvoice.models.load_model`` loads strictly:

  OUT/model.pt     {"model": state_dict} (written atomically)
  OUT/model.json   copied from the base model directory
  OUT/tokens.txt   --token-file if given (extended table), else the base tokens.txt

If the run extended the token table, pass the table it trained with as
--token-file; its trained embedding is taken from the adapter checkpoint.

Example:
  python -m zipvoice.bin.merge_lora --model-dir download/zipvoice \\
      --adapter-checkpoint exp/zipvoice_ja_lora/epoch-10-avg-3.pt \\
      --token-file data/tokens_emilia_ja.txt --output-dir exp/zipvoice_ja_merged
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.train.checkpoint import atomic_save
from zipvoice.finetune.adapters import (
    apply_adapters,
    load_trainable_state_dict,
    merge_adapters,
    read_adapter_checkpoint,
    split_adapter_state,
)
from zipvoice.finetune.strategies import load_init_checkpoint
from zipvoice.models import MODEL_CLASSES, build_model, load_model, read_config
from zipvoice.tokenizer.token_table import vocab_info

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="zipvoice.bin.merge_lora", description=__doc__)
    p.add_argument("--model-dir", type=Path, required=True,
                   help="base model directory with model.json, tokens.txt and the weights (required)")
    p.add_argument("--checkpoint-name", default="model.pt", help="weights file inside --model-dir")
    p.add_argument("--model-name", choices=tuple(MODEL_CLASSES), default="zipvoice", help="model class")
    p.add_argument("--adapter-checkpoint", type=Path, required=True,
                   help="LoRA/DoRA checkpoint of a fine-tuning run, e.g. exp/epoch-10.pt (required)")
    p.add_argument("--checkpoint-key", choices=("model", "model_avg"), default="model",
                   help="which stored weights to merge: the last ones or the running average")
    p.add_argument("--token-file", type=Path, default=None,
                   help="the token table the run trained with, when it extended the base table "
                        "(default: the base model's tokens.txt)")
    p.add_argument("--output-dir", type=Path, required=True, help="directory to write (required)")
    add_trust_checkpoint_argument(p)
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    model_dir: Path = args.model_dir
    for name in ("model.json", "tokens.txt", args.checkpoint_name):
        if not (model_dir / name).is_file():
            raise InputError(f"{model_dir / name}: no such file (--model-dir must hold model.json, "
                             f"tokens.txt and {args.checkpoint_name})")
    if not args.adapter_checkpoint.is_file():
        raise InputError(f"{args.adapter_checkpoint}: no such checkpoint file")
    if args.token_file is not None and not args.token_file.is_file():
        raise InputError(f"{args.token_file}: no such token file")
    if args.output_dir.resolve() == model_dir.resolve():
        raise InputError(f"{args.output_dir}: --output-dir must differ from --model-dir")

    opts, state = read_adapter_checkpoint(args.adapter_checkpoint, key=args.checkpoint_key,
                                          trust=args.trust_checkpoint)
    _, embed = split_adapter_state(state)
    config = read_config(model_dir / "model.json")
    token_file = args.token_file or model_dir / "tokens.txt"
    vocab_size, pad_id = vocab_info(token_file)
    base_vocab, _ = vocab_info(model_dir / "tokens.txt")
    if vocab_size != base_vocab and embed is None:
        raise InputError(f"{args.adapter_checkpoint}: holds no trained embedding, but {token_file} has "
                         f"{vocab_size} tokens and the base table {base_vocab}")
    if embed is not None and embed.shape[0] != vocab_size:
        raise InputError(f"{args.adapter_checkpoint}: its embedding has {embed.shape[0]} rows but {token_file} "
                         f"has {vocab_size} tokens (pass the token file the run trained with as --token-file)")

    model = build_model(config["model"], vocab_size, pad_id, args.model_name)
    load_init_checkpoint(model, model_dir / args.checkpoint_name, base_token_file=model_dir / "tokens.txt",
                         token_file=token_file, trust=args.trust_checkpoint)
    peft_model = apply_adapters(model, opts, train_embed=embed is not None)
    load_trainable_state_dict(peft_model, state, source=str(args.adapter_checkpoint))
    merged = merge_adapters(peft_model.eval())

    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_save({"model": merged.state_dict()}, out / "model.pt")
    shutil.copyfile(model_dir / "model.json", out / "model.json")
    if token_file.resolve() != (out / "tokens.txt").resolve():
        shutil.copyfile(token_file, out / "tokens.txt")
    load_model(out, "model.pt", args.model_name)  # strict check of what was written
    logger.info("merged %s adapters (%s, rank %d) from %s into %s (model.pt, model.json, tokens.txt; %d tokens)",
                "DoRA" if opts.use_dora else "LoRA", args.checkpoint_key, opts.lora_rank, args.adapter_checkpoint, out, vocab_size)
    return 0


if __name__ == "__main__":
    run_main(main)
