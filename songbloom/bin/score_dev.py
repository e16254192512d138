"""Teacher-forced scores of a SongBloom model on held-out songs: sketch accuracy, CE and flow loss.

Every song of ``--cuts`` (feature cuts: latents, sketch ids, prompt latents,
lyric symbols) goes through the training forward with its real sketch ids and
latents, the flow times and noise drawn from a generator seeded by the song ids
(so two runs agree): ``sketch_accuracy`` is the share of sketch targets the
LM's argmax predicts, ``ce`` the mean cross-entropy per target, ``flow_loss``
the DiT's flow-matching MSE, ``loss`` = ce + λ·flow_loss. Written as JSON
(``--output``) for ``songbloom.bin.evaluate --dev-metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lhotse import CutSet

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_device_argument,
    add_num_threads_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from songbloom.models import load_model
from songbloom.training.data import fixed_batches, load_examples
from songbloom.training.loss import FLOW_WEIGHT, compute_loss

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.score_dev", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="the model's YAML config (required)")
    p.add_argument("--checkpoint", type=Path, default=None, help="the .pt (default: the config's pretrained_path)")
    p.add_argument("--cuts", type=Path, required=True, help="held-out feature cuts (required)")
    p.add_argument("--output", type=Path, required=True, help="JSON to write (required)")
    p.add_argument("--max-tokens", type=int, default=10240, help="LM positions per batch")
    p.add_argument("--flow-weight", type=float, default=FLOW_WEIGHT, help="λ in loss = ce + λ·flow_loss")
    add_device_argument(p)
    add_num_threads_argument(p)
    add_trust_checkpoint_argument(p)
    add_verbose_argument(p)
    return p


@torch.no_grad()
def score(song, examples, max_tokens: int, device, flow_weight: float) -> dict:
    m = song.config.model
    total = None
    for batch in fixed_batches(examples, max_tokens, m.block_size, m.prefix_len + 1, m.eos_id):
        _, metrics = compute_loss(song.model, batch, False, config=song.config, device=device, flow_weight=flow_weight)
        total = metrics if total is None else total + metrics
    n = total["frames"]
    return {"sketch_accuracy": total["sketch_acc"] / n, "ce": total["ce"] / n, "flow_loss": total["flow"] / n,
            "loss": total["loss"] / n, "dev_songs": int(total["utterances"]), "dev_targets": int(n)}


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    song = load_model(args.config, args.checkpoint, device=device, trust=args.trust_checkpoint)
    if not args.cuts.is_file():
        raise InputError(f"{args.cuts}: no such cuts file")
    m = song.config.model
    examples = load_examples(CutSet.from_file(args.cuts), m.vocab, m.block_size, int(song.config.max_dur * 25),
                             m.max_sentence_per_structure, m.num_pitch)
    result = score(song, examples, args.max_tokens, device, args.flow_weight)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("%s: sketch accuracy %.1f %%, ce %.3f, flow loss %.4f on %d songs (%d targets)", args.output,
                100 * result["sketch_accuracy"], result["ce"], result["flow_loss"], result["dev_songs"], result["dev_targets"])
    return 0


if __name__ == "__main__":
    run_main(main)
