"""Merge a LoRA adapter (``adapter.pt`` from ``songbloom.bin.train --mode lora``) into its base model.

Writes a plain ``.pt`` in upstream's layout (``vae.vae.*`` + ``model.*``) whose
outputs equal those of the base model with the adapter, so any SongBloom
loader (ours, upstream's) uses it without peft.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from songbloom.inference import apply_adapter
from songbloom.models import load_model
from songbloom.training.release import save_release

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.merge_lora", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="the model's YAML config (required)")
    p.add_argument("--config-dir", type=Path, default=None, help="what '???' stands for (default: the config's folder)")
    p.add_argument("--checkpoint", type=Path, required=True, help="the base model's .pt (required)")
    p.add_argument("--adapter", type=Path, required=True, help="adapter.pt written by the LoRA training (required)")
    p.add_argument("--output", type=Path, required=True, help="merged .pt to write (required)")
    add_trust_checkpoint_argument(p)
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    song = load_model(args.config, args.checkpoint, trust=args.trust_checkpoint, local_dir=args.config_dir)
    merged = apply_adapter(song, args.adapter, trust=args.trust_checkpoint).model
    state = {f"vae.vae.{k}": v for k, v in (song.vae.vae.state_dict().items() if song.vae is not None else [])}
    state.update({f"model.{k}": v.detach().cpu() for k, v in merged.state_dict().items()})
    save_release(args.output, state)
    logger.info("wrote %s: %s with %s merged in", args.output, args.checkpoint, args.adapter)
    return 0


if __name__ == "__main__":
    run_main(main)
