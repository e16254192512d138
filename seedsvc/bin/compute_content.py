"""Add content features to SeedSVC cuts with a content extractor.

Reads ``--cuts``, runs the extractor on each cut's audio and writes
``--output`` with a ``content`` array per cut at the mel frame rate (as many frames
as the cut's ``mel``), stored with lhotse's NumpyFilesWriter under
``<output dir>/storage/content_<name>/``:

* ``phone``: (T, D) float32 posteriors;
* ``astral``: (T,) int64 token ids in [0, codebook size) (2048 for
  ``bsq2048_light.pth``), from the cut's audio at its own sampling rate; needs
  ``--ssl-model`` (a local ``facebook/hubert-large-ll60k`` directory).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.features.io import NumpyFilesWriter
from tqdm import tqdm

from seedsvc.audio import FRAME_RATE
from seedsvc.content import EXTRACTORS, PhoneContentExtractor, fit_frames, load_content_extractor
from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging

logger = logging.getLogger("seedsvc.compute_content")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.compute_content", description=__doc__)
    p.add_argument("--cuts", type=Path, required=True, help="input cuts (required)")
    p.add_argument("--output", type=Path, required=True, help="output cuts (required)")
    p.add_argument("--content-extractor", choices=EXTRACTORS, default="phone", help="content extractor")
    p.add_argument("--content-checkpoint", required=True,
                   help="the extractor's weights: phone classifier, or ASTRAL bsq2048_light.pth (required)")
    p.add_argument("--ssl-model", type=Path, default=None,
                   help="HuBERT directory (facebook/hubert-large-ll60k) for --content-extractor astral")
    p.add_argument("--device", default="cpu", help="torch device for the extractor")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.output.is_file():
        logger.info("%s exists; nothing to do", args.output)
        return 0
    if not args.cuts.is_file():
        raise InputError(f"{args.cuts}: no such cuts file")
    extractor = load_content_extractor(args.content_extractor, args.content_checkpoint, args.device, args.ssl_model)
    cuts = CutSet.from_file(args.cuts)
    out = []
    storage = args.output.parent / "storage" / f"content_{args.output.name.split('.')[0]}"
    storage.mkdir(parents=True, exist_ok=True)
    with NumpyFilesWriter(storage) as writer:
        for cut in tqdm(cuts, desc="content", unit="utt"):
            mel = cut.load_custom("mel")
            try:
                if isinstance(extractor, PhoneContentExtractor):  # from the stored mel, no audio needed
                    feats = extractor.from_mel(torch.from_numpy(mel).t())
                else:
                    feats = extractor.extract(cut.load_audio()[0], cut.sampling_rate, num_frames=mel.shape[0])
            except InputError as e:
                raise InputError(f"cut {cut.id}: {e}") from e
            feats = fit_frames(feats.numpy(), mel.shape[0])
            arr = writer.store_array(f"{cut.id}_content", feats, frame_shift=1.0 / FRAME_RATE, temporal_dim=0)
            out.append(cut.with_custom("content", arr))
    CutSet.from_cuts(out).to_file(args.output)
    if extractor.discrete:
        logger.info("wrote %s (%d cuts, content: (T,) int64 token ids, codebook %d)", args.output, len(out),
                    extractor.codebook_size)
    else:
        logger.info("wrote %s (%d cuts, content dim %d)", args.output, len(out), extractor.dim)
    return 0


if __name__ == "__main__":
    run_main(main)
