"""Compute Vocos fbank features (ZipVoice's training features) for a cut manifest.

Reads ``{manifest_dir}/{dataset}_cuts_{subset}.jsonl.gz`` (from prepare_dataset),
stores 100-bin log-mel features (24 kHz, hop 256) with lilcom compression and
writes ``{output_dir}/{dataset}_cuts_{subset}.jsonl.gz`` whose cuts point at them.
Cuts at another sampling rate are resampled first. Cuts whose audio is missing,
empty, unreadable or silent are left out, counted in the log and listed in
``{dataset}_cuts_{subset}.rejects.tsv`` beside the output (``id, path, reason``).
Output is written under a temporary name and renamed, so a manifest that exists is complete; a re-run
whose output exists does nothing (remove it, or pass --overwrite true, to redo).

Large corpora are processed as parts, one job per part (``$cmd JOB=1:N``):

  python -m shirabe.bin.manifests split --num-parts 8 \\
      data/manifests/custom_cuts_train.jsonl.gz data/manifests/split8
  utils/run.pl JOB=1:8 exp/log/fbank.JOB.log \\
      python -m zipvoice.bin.compute_fbank --dataset custom --subset train --num-parts 8 --part JOB
  python -m shirabe.bin.manifests combine data/fbank/custom_cuts_train.jsonl.gz \\
      data/fbank/split8/custom_cuts_train.{1..8}.jsonl.gz

With --num-parts N --part J the input is ``{manifest_dir}/splitN/{dataset}_cuts_{subset}.J.jsonl.gz``
and the output ``{output_dir}/splitN/{dataset}_cuts_{subset}.J.jsonl.gz``.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="zipvoice.bin.compute_fbank", description=__doc__)
    p.add_argument("--manifest-dir", dest="source_dir", type=Path, default=Path("data/manifests"),
                   help="where the cut manifests are")
    p.add_argument("--output-dir", dest="dest_dir", type=Path, default=Path("data/fbank"),
                   help="where features and new manifests go")
    p.add_argument("--dataset", default="custom", help="dataset name: the prefix of the manifest names")
    p.add_argument("--subset", default="train", help="manifest subset")
    p.add_argument("--num-parts", type=int, default=0, help="the manifest was split into this many parts (0: not split)")
    p.add_argument("--part", type=int, default=0, help="which part (1-based) this job computes, with --num-parts")
    p.add_argument("--num-jobs", type=int, default=1, help="worker processes within this job (capped at the CPU count)")
    p.add_argument("--sampling-rate", type=int, default=24000, help="feature sampling rate; cuts are resampled to it")
    add_bool_argument(p, "--overwrite", False, "recompute even if the output manifest exists")
    add_verbose_argument(p)
    return p


def io_paths(args) -> tuple[Path, Path, Path]:
    """Input manifest, output manifest and feature storage path for these arguments."""
    stem = f"{args.dataset}_cuts_{args.subset}"
    feats = f"{args.dataset}_feats_{args.subset}"
    if args.num_parts:
        if not 1 <= args.part <= args.num_parts:
            raise InputError(f"--part must be in 1..{args.num_parts} with --num-parts {args.num_parts}, got {args.part}")
        split = f"split{args.num_parts}"
        return (args.source_dir / split / f"{stem}.{args.part}.jsonl.gz",
                args.dest_dir / split / f"{stem}.{args.part}.jsonl.gz",
                args.dest_dir / split / f"{feats}.{args.part}")
    if args.part:
        raise InputError("--part needs --num-parts")
    return args.source_dir / f"{stem}.jsonl.gz", args.dest_dir / f"{stem}.jsonl.gz", args.dest_dir / feats


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    src, dst, storage = io_paths(args)
    if not src.is_file():
        raise InputError(f"{src}: no such manifest (run prepare_dataset, or the split, first)")
    if dst.is_file() and not args.overwrite:
        logger.info("%s exists, skipping (pass --overwrite true to recompute)", dst)
        return 0

    import torch
    from lhotse import CutSet, LilcomChunkyWriter

    from shirabe.audio.fbank import VocosFbank, VocosFbankConfig
    from shirabe.data.manifests import audio_path_of, cut_audio_problems, read_cuts
    from shirabe.data.rejects import Rejects, rejects_path

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    num_jobs = max(1, min(args.num_jobs, os.cpu_count() or 1))
    cuts, rejects = [], Rejects()
    all_cuts = read_cuts(src)
    for cut, problem in zip(all_cuts, cut_audio_problems(all_cuts, num_jobs), strict=True):
        if problem is None:
            cuts.append(cut)
        else:
            rejects.add(cut.id, audio_path_of(cut), problem)
            logger.warning("skipping cut %s: %s", cut.id, problem)
    rejects_file = rejects.write(rejects_path(dst))
    if not cuts:
        raise InputError(f"{src}: no cut has usable audio ({rejects.summary()} rejected; see {rejects_file})")
    cuts = CutSet.from_cuts(cuts)
    resampled = 0

    def to_rate(cut):
        nonlocal resampled
        if cut.sampling_rate != args.sampling_rate:
            resampled += 1
            return cut.resample(args.sampling_rate)
        return cut

    cuts = cuts.map(to_rate)
    dst.parent.mkdir(parents=True, exist_ok=True)
    extractor = VocosFbank(VocosFbankConfig(sampling_rate=args.sampling_rate))
    logger.info("computing fbank for %s with %d process(es) -> %s", src, num_jobs, storage)
    with_feats = cuts.compute_and_store_features(
        extractor=extractor,
        storage_path=str(storage),
        num_jobs=num_jobs,
        storage_type=LilcomChunkyWriter,
    )
    tmp = dst.with_name(".tmp." + dst.name)
    with_feats.to_file(tmp)
    os.replace(tmp, dst)
    n = sum(1 for _ in CutSet.from_file(dst))
    frames = sum(c.num_frames for c in CutSet.from_file(dst))
    logger.info("wrote %s: %d cuts, %d frames (%.2f h)%s; rejected %s -> %s", dst, n, frames,
                frames * extractor.frame_shift / 3600, f"; {resampled} resampled" if resampled else "",
                rejects.summary(), rejects_file)
    return 0


if __name__ == "__main__":
    run_main(main)
