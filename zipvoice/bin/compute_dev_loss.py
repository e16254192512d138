"""Dev-set loss of a trained ZipVoice / ZipVoiceDistill: the flow-matching loss, or the error after sampling.

With ``--num-step 0`` the loss is the training objective at upstream's deterministic
``t = arange(B) / B``; with ``--num-step N`` it is the mean squared error (model scale,
0.1·log-mel) of the features the model generates for a hidden 70-100 % span of every
dev utterance in N Euler steps (see zipvoice/distill/sampling_loss.py). The hidden
spans and the noise come from ``--seed``, so models evaluated with the same seed and
manifest on the same kind of ``--device`` are compared on identical inputs, e.g. a 4-step distilled student against
its 16-step teacher:

    python -m zipvoice.bin.compute_dev_loss --model-dir exp/zipvoice_ja --checkpoint-name epoch-12-avg-4.pt \\
        --dev-manifest data/fbank/mini_cuts_dev_tokens.jsonl.gz --num-step 16 --output teacher16.json
    python -m zipvoice.bin.compute_dev_loss --model-dir exp/zipvoice_ja_distill --checkpoint-name iter-200-avg-2.pt \\
        --model-name zipvoice_distill --num-step 4 --dev-manifest ... --output student4.json
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

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m zipvoice.bin.compute_dev_loss", description=__doc__)
    p.add_argument("--model-dir", type=Path, required=True, help="directory with model.json, tokens.txt (required)")
    p.add_argument("--checkpoint-name", default="model.pt", help="weights file in --model-dir")
    p.add_argument("--model-name", choices=("zipvoice", "zipvoice_distill"), default="zipvoice", help="model type")
    p.add_argument("--token-file", type=Path, default=None, help="token table (default: MODEL_DIR/tokens.txt)")
    p.add_argument("--dev-manifest", type=Path, required=True,
                   help="CutSet with features and stored tokens (required)")
    p.add_argument("--num-step", type=int, default=0,
                   help="0: flow-matching loss; N > 0: error of the features sampled in N Euler steps")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="guidance when sampling (default: 1.0 for zipvoice, 3.0 for zipvoice_distill)")
    p.add_argument("--t-shift", type=float, default=0.5, help="time-grid shift of the sampler")
    p.add_argument("--feat-scale", type=float, default=0.1, help="model-space scale of the features")
    p.add_argument("--batch-size", type=int, default=8, help="cuts per batch (in manifest order)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hidden spans and the noise")
    p.add_argument("--output", type=Path, default=None, help="write the result as JSON here (default: not written)")
    p.add_argument("--label", default=None, help="name stored in the JSON (default: model dir/checkpoint@steps)")
    add_trust_checkpoint_argument(p)
    add_num_threads_argument(p)
    add_device_argument(p)
    add_verbose_argument(p)
    return p


def batches_of(cuts: CutSet, dataset, batch_size: int):
    cuts = sorted(cuts, key=lambda c: c.id)
    for i in range(0, len(cuts), batch_size):
        yield dataset[CutSet.from_cuts(cuts[i:i + batch_size])]


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(max(1, args.num_threads))
    if args.num_step < 0 or args.batch_size < 1:
        raise InputError("--num-step must be >= 0 and --batch-size >= 1")
    device = resolve_device(args.device)
    from zipvoice.dataset import TokenMapper, ZipVoiceDataset, load_cuts
    from zipvoice.distill import dev_flow_matching_loss, dev_sampling_loss
    from zipvoice.models import SAMPLING_DEFAULTS, load_model

    token_file = args.token_file or args.model_dir / "tokens.txt"
    model = load_model(args.model_dir, args.checkpoint_name, args.model_name, trust=args.trust_checkpoint,
                       device=device, token_file=token_file)
    cuts = load_cuts(args.dev_manifest, "dev")
    dataset = ZipVoiceDataset(TokenMapper(token_file))
    batches = batches_of(cuts, dataset, args.batch_size)
    w = SAMPLING_DEFAULTS[args.model_name]["guidance_scale"] if args.guidance_scale is None else args.guidance_scale
    if args.num_step == 0:
        result = dev_flow_matching_loss(model, batches, args.feat_scale, args.seed, device=device)
        w = None
    else:
        result = dev_sampling_loss(model, batches, args.num_step, w, args.t_shift, args.feat_scale, args.seed,
                                   device=device)
    result.update(
        label=args.label or f"{args.model_dir.name}/{args.checkpoint_name}@{args.num_step}",
        model_dir=str(args.model_dir), checkpoint=args.checkpoint_name, model_name=args.model_name,
        num_step=args.num_step, guidance_scale=w, t_shift=args.t_shift, seed=args.seed,
        dev_manifest=str(args.dev_manifest),
    )
    kind = "flow-matching loss" if args.num_step == 0 else f"sampling loss ({args.num_step} steps, w={w:g})"
    logger.info("%s: dev %s %.5f over %d frames of %d utterances", result["label"], kind, result["loss"],
                result["frames"], result["utterances"])
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{result['loss']:.6f}")
    return 0


if __name__ == "__main__":
    run_main(main)
