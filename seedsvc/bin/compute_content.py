"""Add content features to SeedSVC cuts with a content extractor.

Reads ``--cuts``, runs the extractor on each cut's audio and writes
``--output`` with a ``content`` array per cut at the mel frame rate (as many frames
as the cut's ``mel``), stored with lhotse's NumpyFilesWriter under
``<output dir>/storage/content_<name>/``:

* ``phone``: (T, D) float32 posteriors;
* ``astral``: (T,) int64 token ids in [0, codebook size) (2048 for
  ``bsq2048_light.pth``), from the cut's audio at its own sampling rate; needs
  ``--ssl-model`` (a local ``facebook/hubert-large-ll60k`` directory).

Cuts whose stored mel cannot be read (``phone``), or whose audio is missing, empty,
unreadable or silent (``astral``; audio at another rate is resampled), are left out,
counted in the log and listed in ``<output>.rejects.tsv`` (``id, path, reason``). The
output is written under a temporary name and renamed; a run whose output exists does nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.features.io import NumpyFilesWriter
from tqdm import tqdm

from seedsvc.audio import FRAME_RATE
from seedsvc.content import EXTRACTORS, PhoneContentExtractor, fit_frames, load_content_extractor
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
from shirabe.data.manifests import audio_path_of, cut_audio_problem, read_cuts
from shirabe.data.rejects import Rejects, reason_of, rejects_path

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.compute_content", description=__doc__)
    p.add_argument("--cuts", type=Path, required=True, help="input cuts (required)")
    p.add_argument("--output", type=Path, required=True, help="output cuts (required)")
    p.add_argument("--content-extractor", choices=EXTRACTORS, default="phone", help="content extractor")
    p.add_argument("--content-checkpoint", required=True,
                   help="the extractor's weights: phone classifier, or ASTRAL bsq2048_light.pth (required)")
    p.add_argument("--ssl-model", type=Path, default=None,
                   help="HuBERT directory (facebook/hubert-large-ll60k) for --content-extractor astral "
                        "(default: none)")
    add_device_argument(p, "the extractor")
    add_verbose_argument(p)
    return p


def _array_path(cut, key: str) -> str:
    array = cut.custom.get(key) if cut.custom else None
    array = getattr(array, "array", array)  # a TemporalArray wraps an Array
    return str(getattr(array, "storage_path", "") or "")


def cut_content(cut, extractor):
    """The cut's content, (T, D) or (T,) at its mel frames; or ``(path, reason)`` when the cut
    cannot be used (its stored mel or its audio is missing, unreadable or silent)."""
    try:
        mel = cut.load_custom("mel")
    except Exception as e:  # noqa: BLE001 - lhotse/lilcom/numpy raise many kinds for a bad array file
        return _array_path(cut, "mel"), f"unreadable mel: {reason_of(e, _array_path(cut, 'mel'))}"
    try:
        if isinstance(extractor, PhoneContentExtractor):  # from the stored mel, no audio needed
            feats = extractor.from_mel(torch.from_numpy(mel).t())
        else:
            problem = cut_audio_problem(cut)
            if problem is not None:
                return audio_path_of(cut), problem
            feats = extractor.extract(cut.load_audio()[0], cut.sampling_rate, num_frames=mel.shape[0])
    except InputError as e:
        return audio_path_of(cut), reason_of(e, audio_path_of(cut))
    return fit_frames(feats.numpy(), mel.shape[0])


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.output.is_file():
        logger.info("%s exists; nothing to do", args.output)
        return 0
    cuts = read_cuts(args.cuts)
    extractor = load_content_extractor(args.content_extractor, args.content_checkpoint,
                                       resolve_device(args.device), args.ssl_model)
    out, rejects = [], Rejects()
    storage = args.output.parent / "storage" / f"content_{args.output.name.split('.')[0]}"
    storage.mkdir(parents=True, exist_ok=True)
    with NumpyFilesWriter(storage) as writer:
        for cut in tqdm(cuts, desc="content", unit="utt"):
            result = cut_content(cut, extractor)
            if isinstance(result, tuple):
                rejects.add(cut.id, *result)
                logger.warning("skipping cut %s: %s: %s", cut.id, *result)
                continue
            arr = writer.store_array(f"{cut.id}_content", result, frame_shift=1.0 / FRAME_RATE, temporal_dim=0)
            out.append(cut.with_custom("content", arr))
    rejects_file = rejects.write(rejects_path(args.output))
    if not out:
        raise InputError(f"{args.cuts}: no cut could be used ({rejects.summary()} rejected; see {rejects_file})")
    tmp = args.output.with_name(f".tmp.{args.output.name}")  # an output that exists is complete
    CutSet.from_cuts(out).to_file(tmp)
    tmp.replace(args.output)
    logger.info("%s rejected -> %s", rejects.summary(), rejects_file)
    if extractor.discrete:
        logger.info("wrote %s (%d cuts, content: (T,) int64 token ids, codebook %d)", args.output, len(out),
                    extractor.codebook_size)
    else:
        logger.info("wrote %s (%d cuts, content dim %d)", args.output, len(out), extractor.dim)
    return 0


if __name__ == "__main__":
    run_main(main)
