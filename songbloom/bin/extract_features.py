"""Extract SongBloom training features: VAE latents, sketch ids and prompt latents, stored through lhotse.

For every song of ``--manifest`` (one part of it with ``--part J --num-parts N``,
as ``$cmd JOB=1:$nj`` runs it) this computes (see :mod:`songbloom.features`):

* ``latent``: the VAE posterior mean, (D, T) at the VAE frame rate (25 Hz);
* ``sketch``: sketch ids (T,), from MuQ and ``--codebook`` (left out without one);
* ``prompt_latent``: the VAE mean of the song's style prompt (the supervision's
  ``prompt_wav``), (D, Tp);

aligned by the documented length rule, and writes
``<output-dir>/cuts_<subset>[.<part>].jsonl.gz`` whose cuts reference the
arrays (lhotse ``NumpyFilesWriter`` under ``<output-dir>/storage_<subset>/``)
and keep the songs' supervisions (lyrics and their SongBloom symbols).
Songs that cannot be read, are silent or shorter than ``--min-duration`` are
skipped and listed in ``rejects_<subset>[.<part>].tsv`` (a part whose songs
are all rejected writes an empty cuts file and says so). Finished songs are
recorded as they are done, so an interrupted run resumes where it stopped; a
part whose cuts file exists is skipped (``--overwrite true`` redoes it).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from lhotse.array import Array, TemporalArray
from lhotse.features.io import NumpyFilesWriter
from tqdm import tqdm

from shirabe.audio import load_audio
from shirabe.audio.io import is_silent
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from shirabe.codec import load_vae
from shirabe.data.rejects import Rejects, reason_of
from songbloom.features import FeatureExtractor
from songbloom.manifests import load_song_cuts
from songbloom.sketch import Codebook

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.extract_features", description=__doc__)
    p.add_argument("--manifest", type=Path, required=True, help="songs: a lhotse CutSet or RecordingSet (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where cuts, arrays and rejects go (required)")
    p.add_argument("--subset", default="train", help="name of this subset (cuts_<subset>.jsonl.gz)")
    p.add_argument("--vae-config", type=Path, required=True, help="stable-audio VAE json (required)")
    p.add_argument("--vae-ckpt", type=Path, required=True,
                   help="VAE checkpoint ({'state_dict': ...}, or a SongBloom .pt with --vae-prefix) (required)")
    p.add_argument("--vae-prefix", default="", help="key prefix of the VAE inside the checkpoint ('vae.vae.' for a "
                                                    "SongBloom .pt); empty: none")
    p.add_argument("--muq-dir", type=Path, default=None, help="local MuQ directory (needed with --codebook) (default: none)")
    p.add_argument("--codebook", type=Path, default=None,
                   help="sketch codebook (train_vq or recover_codebook) (default: none, no sketch ids)")
    p.add_argument("--part", type=int, default=1, help="which part of the manifest to do (1-based, $JOB)")
    p.add_argument("--num-parts", type=int, default=1, help="how many parts the manifest is split into ($nj)")
    p.add_argument("--min-duration", type=float, default=1.28,
                   help="songs shorter than this many seconds are skipped (1.28 s = two 16-frame patches)")
    p.add_argument("--chunk-seconds", type=float, default=30.0, help="VAE encode window for long songs")
    add_bool_argument(p, "--overwrite", False, "redo a part whose cuts file exists")
    add_bool_argument(p, "--progress", True, "progress bar")
    add_device_argument(p, "the VAE and MuQ")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def prompt_path(cut) -> Path | None:
    for source in [*(s.custom or {} for s in cut.supervisions), cut.custom or {}]:
        if source.get("prompt_wav"):
            return Path(source["prompt_wav"])
    return None


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(args.num_threads)
    if not 1 <= args.part <= args.num_parts:
        raise InputError(f"--part {args.part} is outside 1..{args.num_parts}")
    if args.codebook is not None and args.muq_dir is None:
        raise InputError("--codebook needs --muq-dir (sketch ids are MuQ frames quantised by the codebook)")
    suffix = f".{args.part}" if args.num_parts > 1 else ""
    out_cuts = args.output_dir / f"cuts_{args.subset}{suffix}.jsonl.gz"
    if out_cuts.is_file() and not args.overwrite:
        logger.info("%s exists; nothing to do (--overwrite true recomputes)", out_cuts)
        return 0
    cuts = load_song_cuts(args.manifest)
    total = len(cuts)
    cuts = [c for i, c in enumerate(cuts) if i % args.num_parts == args.part - 1]
    if not cuts:
        raise InputError(f"{args.manifest}: part {args.part} of {args.num_parts} has no songs (the manifest has "
                         f"{total}); use at most {total} parts")
    device = resolve_device(args.device)
    vae = load_vae(args.vae_config, args.vae_ckpt, device=device, prefix=args.vae_prefix)
    muq = codebook = None
    if args.codebook is not None:
        from shirabe.ssl import load_muq

        codebook = Codebook.load(args.codebook)
        muq = load_muq(args.muq_dir, device=device)
    extractor = FeatureExtractor(vae, muq, codebook, chunk_seconds=args.chunk_seconds)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    partial = args.output_dir / f".cuts_{args.subset}{suffix}.partial.jsonl"
    done: dict[str, dict] = {}
    if partial.is_file() and not args.overwrite:
        for line in partial.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                done[item["id"]] = item
        logger.info("resuming: %d songs of this part were already done", len(done))
    elif partial.is_file():
        partial.unlink()
    rejects = Rejects()
    shift = 1.0 / extractor.latent_rate
    with NumpyFilesWriter(args.output_dir / f"storage_{args.subset}") as writer, \
            partial.open("a", encoding="utf-8") as log:
        for cut in tqdm(cuts, desc=f"features {args.subset}{suffix}", unit="song", disable=not args.progress):
            if cut.id in done:
                continue
            source = cut.recording.sources[0].source if cut.has_recording else cut.id
            try:
                if cut.duration < args.min_duration:
                    raise InputError(f"too short: {cut.duration:.2f} s (--min-duration {args.min_duration})")
                audio = np.asarray(cut.load_audio(), dtype=np.float32)
                if is_silent(audio):
                    raise InputError("silent audio")
                prompt, prompt_sr = None, None
                if (pp := prompt_path(cut)) is not None:
                    prompt, prompt_sr = load_audio(pp, mono=False)
                feats = extractor(audio, cut.sampling_rate, prompt, prompt_sr)
            except (InputError, ValueError, OSError, RuntimeError) as e:
                rejects.add(cut.id, source, reason_of(e, source))
                logger.warning("skipping %s: %s", cut.id, reason_of(e, source))
                continue
            custom = {"latent": writer.store_array(f"{cut.id}_latent", feats.latent, frame_shift=shift,
                                                   temporal_dim=1).to_dict()}
            if feats.sketch is not None:
                custom["sketch"] = writer.store_array(f"{cut.id}_sketch", feats.sketch, frame_shift=shift,
                                                      temporal_dim=0).to_dict()
            if feats.prompt_latent is not None:
                custom["prompt_latent"] = writer.store_array(f"{cut.id}_prompt", feats.prompt_latent,
                                                             frame_shift=shift, temporal_dim=1).to_dict()
            custom["frames"] = feats.frames
            log.write(json.dumps({"id": cut.id, "custom": custom}) + "\n")
            log.flush()
            done[cut.id] = {"id": cut.id, "custom": custom}
    out = []
    for cut in cuts:
        if cut.id not in done:
            continue
        for key, value in done[cut.id]["custom"].items():
            if isinstance(value, dict):
                value = TemporalArray.from_dict(value) if "temporal_dim" in value else Array.from_dict(value)
            cut = cut.with_custom(key, value)
        out.append(cut)
    rejects.write(args.output_dir / f"rejects_{args.subset}{suffix}.tsv")
    if not out:
        logger.warning("every song of part %d was rejected (see rejects_%s%s.tsv)", args.part, args.subset, suffix)
    tmp = out_cuts.with_name(f".tmp.{out_cuts.name}")
    if out:
        CutSet.from_cuts(out).to_file(tmp)
    else:  # an empty manifest (lhotse writes nothing for an empty set)
        with gzip.open(tmp, "wb"):
            pass
    tmp.replace(out_cuts)
    partial.unlink()
    frames = sum(c.custom["frames"] for c in out)
    logger.info("wrote %s: %d songs, %d frames (%.1f min at %g Hz)%s, %s rejected", out_cuts, len(out), frames,
                frames * shift / 60, extractor.latent_rate, "" if codebook else ", no sketch ids (no --codebook)",
                rejects.summary())
    return 0


if __name__ == "__main__":
    run_main(main)
