"""Train the frame-level phone classifier used as the ``phone`` content extractor.

Needs cuts with ``mel`` and ``phone_ids`` (``seedsvc.bin.compute_features
--phone-table``). Cross-entropy on random crops of every singer's songs; the
frame accuracy on --dev-manifest is logged and stored in the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lhotse import CutSet
from tqdm import tqdm

from seedsvc.content.phone_classifier import PhoneClassifier, save_phone_classifier
from seedsvc.dataset import SegmentSampler
from seedsvc.features import read_phone_table
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_device_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.train_content", description=__doc__)
    p.add_argument("--cuts", type=Path, required=True, help="training cuts with mel and phone_ids (required)")
    p.add_argument("--dev-manifest", dest="valid_cuts", type=Path, default=None,
                   help="cuts to report frame accuracy on (default: none)")
    p.add_argument("--phone-table", type=Path, required=True, help="phones.txt (required)")
    p.add_argument("--output", type=Path, required=True, help="checkpoint to write (required)")
    p.add_argument("--num-iters", dest="num_steps", type=int, default=600, help="training steps")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step")
    p.add_argument("--segment-frames", type=int, default=256, help="crop length in mel frames")
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate")
    p.add_argument("--channels", type=int, default=128, help="conv channels")
    p.add_argument("--num-layers", type=int, default=4, help="conv layers")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_device_argument(p, "training")
    add_verbose_argument(p)
    return p


@torch.no_grad()
def frame_accuracy(model, cuts) -> float:
    model.eval()
    device = next(model.parameters()).device
    right = total = 0
    for cut in cuts:
        mel = torch.from_numpy(cut.load_custom("mel")).t()[None].to(device)
        ids = torch.from_numpy(cut.load_custom("phone_ids").astype("int64"))
        pred = model(mel)[0].argmax(0).cpu()
        right += int((pred == ids).sum())
        total += ids.numel()
    model.train()
    return right / max(total, 1)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.output.is_file():
        logger.info("%s exists; nothing to do", args.output)
        return 0
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    table = read_phone_table(args.phone_table)
    phones = [p for p, _ in sorted(table.items(), key=lambda kv: kv[1])]
    if not args.cuts.is_file():
        raise InputError(f"{args.cuts}: no such cuts file")
    sampler = SegmentSampler(CutSet.from_file(args.cuts), args.segment_frames, args.batch_size, seed=args.seed,
                             need=("mel", "phone_ids"))
    model = PhoneClassifier(len(phones), channels=args.channels, num_layers=args.num_layers).to(device)
    logger.info("phone classifier: %d phones, %d parameters, on %s", len(phones),
                sum(p.numel() for p in model.parameters()), device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.num_steps, pct_start=0.1)
    bar = tqdm(range(args.num_steps), desc="content model", unit="step")
    for step in bar:
        batch = sampler.batch()
        logits = model(batch["mel"].to(device))
        loss = F.cross_entropy(logits, batch["phone_ids"].to(device), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    extra = {}
    if args.valid_cuts is not None:
        acc = frame_accuracy(model, CutSet.from_file(args.valid_cuts))
        extra["valid_frame_accuracy"] = acc
        logger.info("frame accuracy on %s: %.3f", args.valid_cuts, acc)
    save_phone_classifier(args.output, model.cpu().eval(), phones, extra)
    logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    run_main(main)
