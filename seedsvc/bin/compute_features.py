"""Compute and cache SeedSVC features (mel, F0, style, phone labels) with lhotse.

Reads an utterance list (TSV with a header: utt_id, speaker, wav, and optional
f0, phones, song columns) and writes ``<output-dir>/cuts_<name>.jsonl.gz`` whose
cuts carry the arrays (stored under ``<output-dir>/storage/<name>``). Rows whose
audio is missing, unreadable, silent or too short are skipped and listed in
``<output-dir>/rejects_<name>.tsv``. Existing output is kept unless --overwrite.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.features.io import LilcomChunkyWriter, NumpyFilesWriter
from tqdm import tqdm

from seedsvc.audio import FRAME_RATE
from seedsvc.features import read_list, read_phone_table, utterance_features
from seedsvc.style import STYLE_ENCODERS, StyleEncoder
from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.pitch import METHODS

logger = logging.getLogger("seedsvc.compute_features")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.compute_features", description=__doc__)
    p.add_argument("--input", type=Path, required=True, help="utterance list TSV (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where cuts and storage go (required)")
    p.add_argument("--name", default="train", help="name of this subset (cuts_<name>.jsonl.gz)")
    p.add_argument("--f0-method", choices=METHODS, default="harvest", help="F0 tracker for rows without an f0 file")
    p.add_argument("--rmvpe-model", default=None, help="rmvpe.pt for --f0-method rmvpe")
    p.add_argument("--style-encoder", choices=STYLE_ENCODERS, default="campplus", help="style vector kind")
    p.add_argument("--style-checkpoint", default=None, help="CAM++ weights (default: the installed campplus_cn_common.bin)")
    p.add_argument("--phone-table", type=Path, default=None, help="phones.txt ('<phone> <id>') for phone labels")
    p.add_argument("--overwrite", action="store_true", help="recompute even if the cuts file exists")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    out_cuts = args.output_dir / f"cuts_{args.name}.jsonl.gz"
    if out_cuts.is_file() and not args.overwrite:
        logger.info("%s exists; nothing to do (--overwrite recomputes)", out_cuts)
        return 0
    utts = read_list(args.input)
    if not utts:
        raise InputError(f"{args.input}: no utterances")
    table = read_phone_table(args.phone_table) if args.phone_table else None
    style = StyleEncoder(args.style_encoder, args.style_checkpoint)
    storage = args.output_dir / "storage" / args.name
    storage.mkdir(parents=True, exist_ok=True)
    cuts, rejects = [], []
    with LilcomChunkyWriter(storage / "mel") as mel_w, NumpyFilesWriter(storage / "arrays") as arr_w:
        for utt in tqdm(utts, desc=f"features {args.name}", unit="utt"):
            try:
                feats = utterance_features(utt, style, args.f0_method, table, args.rmvpe_model)
                rec = Recording.from_file(utt.wav, recording_id=utt.utt_id)
            except InputError as e:
                rejects.append(f"{utt.utt_id}\t{e}")
                logger.warning("skipping %s: %s", utt.utt_id, e)
                continue
            shift = 1.0 / FRAME_RATE
            cut = MonoCut(id=utt.utt_id, start=0.0, duration=rec.duration, channel=0, recording=rec,
                          supervisions=[SupervisionSegment(id=utt.utt_id, recording_id=utt.utt_id, start=0.0,
                                                           duration=rec.duration, speaker=utt.speaker)])
            cut = cut.with_custom("mel", mel_w.store_array(utt.utt_id, feats["mel"], frame_shift=shift, temporal_dim=0))
            cut = cut.with_custom("f0", arr_w.store_array(f"{utt.utt_id}_f0", feats["f0"], frame_shift=shift,
                                                          temporal_dim=0))
            cut = cut.with_custom("style", arr_w.store_array(f"{utt.utt_id}_style", feats["style"]))
            if "phone_ids" in feats:
                cut = cut.with_custom("phone_ids", arr_w.store_array(f"{utt.utt_id}_phones", feats["phone_ids"],
                                                                     frame_shift=shift, temporal_dim=0))
            cut = cut.with_custom("song", utt.song)
            cuts.append(cut)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"rejects_{args.name}.tsv").write_text("".join(r + "\n" for r in rejects), encoding="utf-8")
    if not cuts:
        raise InputError(f"{args.input}: every utterance was rejected (see rejects_{args.name}.tsv)")
    CutSet.from_cuts(cuts).to_file(out_cuts)
    logger.info("wrote %s: %d cuts, %d rejected", out_cuts, len(cuts), len(rejects))
    return 0


if __name__ == "__main__":
    run_main(main)
