"""Compute and cache SeedSVC features (mel, F0, style, phone labels) with lhotse.

Reads an utterance list (TSV with a header: utt_id, speaker, wav, and optional
f0, phones, song columns) and writes ``<output-dir>/cuts_<subset>.jsonl.gz`` whose
cuts carry the arrays (stored under ``<output-dir>/storage/<subset>``). Rows whose
audio is missing, unreadable, silent or too short are skipped and listed in
``<output-dir>/rejects_<subset>.tsv`` (``id, path, reason``; audio at another rate is
resampled to 22.05 kHz and kept). Existing output is kept unless --overwrite true.

``--pitch-shifts -12,12`` adds, for every utterance, WORLD re-pitched copies
(same singer, timbre and timing, F0 moved by that many semitones; audio under
``storage/<subset>/audio``) as cuts ``<utt_id>_ps<shift>`` of the same speaker, unless the copy's median F0
would leave ``--copy-f0-range`` (a bass an octave lower, a soprano an octave higher). With
``training.cross_prompt_prob`` they teach the model to sing outside the register
of its prompt.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from pathlib import Path

from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.features.io import LilcomChunkyWriter, NumpyFilesWriter
from tqdm import tqdm

from seedsvc.audio import FRAME_RATE, SAMPLE_RATE
from seedsvc.features import COPY_F0_RANGE, read_list, read_phone_table, utterance_features
from seedsvc.style import STYLE_ENCODERS, StyleEncoder
from shirabe.audio import save_audio
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from shirabe.data.rejects import Rejects, reason_of
from shirabe.pitch import METHODS

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.compute_features", description=__doc__)
    p.add_argument("--input", type=Path, required=True, help="utterance list TSV (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where cuts and storage go (required)")
    p.add_argument("--subset", dest="name", default="train", help="name of this subset (cuts_<subset>.jsonl.gz)")
    p.add_argument("--f0-method", choices=METHODS, default="harvest", help="F0 tracker for rows without an f0 file")
    p.add_argument("--rmvpe-model", default=None, help="rmvpe.pt for --f0-method rmvpe (default: none)")
    p.add_argument("--style-encoder", choices=STYLE_ENCODERS, default="campplus", help="style vector kind")
    p.add_argument("--style-checkpoint", default=None, help="CAM++ weights (default: the installed campplus_cn_common.bin)")
    p.add_argument("--phone-table", type=Path, default=None,
                   help="phones.txt ('<phone> <id>') for phone labels (default: no labels)")
    p.add_argument("--pitch-shifts", type=parse_shifts, default="",
                   help="comma-separated semitone shifts of added re-pitched copies; write --pitch-shifts=-12,12 "
                        "(with '=') when the list starts with a minus; empty: no copies")
    p.add_argument("--copy-f0-range", type=parse_range, default="{:g},{:g}".format(*COPY_F0_RANGE),
                   help="LOW,HIGH Hz: re-pitched copies whose median F0 falls outside are not made")
    add_bool_argument(p, "--overwrite", False, "recompute even if the cuts file exists")
    add_device_argument(p, "the CAM++ style encoder")
    add_verbose_argument(p)
    return p


def parse_shifts(text: str) -> tuple[float, ...]:
    try:
        shifts = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ArgumentTypeError(f"expected comma-separated semitones, got '{text}'") from None
    if any(s == 0 or abs(s) > 24 for s in shifts):
        raise ArgumentTypeError(f"shifts must be non-zero and within ±24 semitones, got '{text}'")
    return shifts


def parse_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ArgumentTypeError(f"expected LOW,HIGH in Hz, got '{text}'") from None
    if not 0 < low < high:
        raise ArgumentTypeError(f"expected 0 < LOW < HIGH, got '{text}'")
    return low, high


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    out_cuts = args.output_dir / f"cuts_{args.name}.jsonl.gz"
    if out_cuts.is_file() and not args.overwrite:
        logger.info("%s exists; nothing to do (--overwrite true recomputes)", out_cuts)
        return 0
    utts = read_list(args.input)
    if not utts:
        raise InputError(f"{args.input}: no utterances")
    table = read_phone_table(args.phone_table) if args.phone_table else None
    style = StyleEncoder(args.style_encoder, args.style_checkpoint, resolve_device(args.device))
    storage = args.output_dir / "storage" / args.name
    storage.mkdir(parents=True, exist_ok=True)
    cuts, rejects, skipped_copies = [], Rejects(), 0
    shift = 1.0 / FRAME_RATE
    with LilcomChunkyWriter(storage / "mel") as mel_w, NumpyFilesWriter(storage / "arrays") as arr_w:
        for utt in tqdm(utts, desc=f"features {args.name}", unit="utt"):
            try:
                variants = utterance_features(utt, style, args.f0_method, table, args.rmvpe_model,
                                              args.pitch_shifts, args.copy_f0_range)
            except InputError as e:
                rejects.add(utt.utt_id, utt.wav, reason_of(e, utt.wav))
                logger.warning("skipping %s: %s", utt.utt_id, e)
                continue
            for semitones, feats in variants.items():
                if feats is None:
                    skipped_copies += 1
                    continue
                cut_id = utt.utt_id if not semitones else f"{utt.utt_id}_ps{semitones:+g}"
                wav = utt.wav if "wav" not in feats else save_audio(storage / "audio" / f"{cut_id}.flac",
                                                                     feats["wav"], SAMPLE_RATE)
                rec = Recording.from_file(wav, recording_id=cut_id)
                cut = MonoCut(id=cut_id, start=0.0, duration=rec.duration, channel=0, recording=rec,
                              supervisions=[SupervisionSegment(id=cut_id, recording_id=cut_id, start=0.0,
                                                               duration=rec.duration, speaker=utt.speaker)])
                cut = cut.with_custom("mel", mel_w.store_array(cut_id, feats["mel"], frame_shift=shift,
                                                               temporal_dim=0))
                cut = cut.with_custom("f0", arr_w.store_array(f"{cut_id}_f0", feats["f0"], frame_shift=shift,
                                                              temporal_dim=0))
                cut = cut.with_custom("style", arr_w.store_array(f"{cut_id}_style", feats["style"]))
                if "phone_ids" in feats:
                    cut = cut.with_custom("phone_ids", arr_w.store_array(f"{cut_id}_phones", feats["phone_ids"],
                                                                         frame_shift=shift, temporal_dim=0))
                cut = cut.with_custom("song", utt.song)
                if semitones:
                    cut = cut.with_custom("pitch_shift", semitones)
                cuts.append(cut)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rejects.write(args.output_dir / f"rejects_{args.name}.tsv")
    if not cuts:
        raise InputError(f"{args.input}: every utterance was rejected (see rejects_{args.name}.tsv)")
    tmp = out_cuts.with_name(f".tmp.{out_cuts.name}")  # a cuts file that exists is complete
    CutSet.from_cuts(cuts).to_file(tmp)
    tmp.replace(out_cuts)
    copies = sum(1 for c in cuts if c.custom.get("pitch_shift"))
    logger.info("wrote %s: %d cuts (%d re-pitched copies; %d copies outside %g-%g Hz not made), %s rejected",
                out_cuts, len(cuts), copies, skipped_copies, *args.copy_f0_range, rejects.summary())
    return 0


if __name__ == "__main__":
    run_main(main)
