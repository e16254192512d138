"""Convert a song to another singer's voice with a trained SeedSVC model.

One conversion (--source, --reference, --output) or many from --jobs, a TSV with
a header naming the columns source, reference, output and optionally
semitone_shift and source_f0 (a .npy F0 track at 100 frames/s to use instead
of extracting one). Relative paths in it are relative to the TSV.

Inputs must be readable audio at 8-192 kHz, not silent. A reference longer than
the model's prompt window (inference.max_prompt_frames in the model's
config.yaml) is trimmed to its beginning, with a warning. Long sources are
converted in chunks joined by cross-fades. In --jobs mode a bad file is
reported with its name and the remaining jobs still run; the exit status is 2
when any job failed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from seedsvc.content import EXTRACTORS
from seedsvc.inference import Converter, ConvertOptions, read_input_audio
from seedsvc.style import STYLE_ENCODERS
from shirabe.audio import save_audio
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from shirabe.pitch import METHODS

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.convert", description=__doc__)
    p.add_argument("--source", type=Path, default=None, help="song to convert (default: none, use --jobs)")
    p.add_argument("--reference", type=Path, default=None,
                   help="recording of the target singer (default: none, use --jobs)")
    p.add_argument("--output", type=Path, default=None,
                   help="where the converted song goes (.wav/.flac/.mp3) (default: none, use --jobs)")
    p.add_argument("--jobs", type=Path, default=None,
                   help="TSV of conversions, instead of the three above (default: none)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="directory for relative output paths in --jobs (default: the TSV's directory)")
    p.add_argument("--model-dir", type=Path, required=True, help="experiment dir with config.yaml and model.pth (required)")
    p.add_argument("--checkpoint", type=Path, default=None, help="weights (default: <model-dir>/model.pth)")
    p.add_argument("--semitone-shift", type=float, default=0.0, help="transpose the source F0 by N semitones")
    add_bool_argument(p, "--auto-f0-adjust", False, "move the source's median F0 to the reference's first")
    p.add_argument("--diffusion-steps", type=int, default=None, help="Euler steps (default: the config's)")
    p.add_argument("--cfg-rate", type=float, nargs=2, metavar=("A", "B"), default=None,
                   help="guidance [intelligibility, similarity] (default: the config's)")
    p.add_argument("--f0-method", choices=METHODS, default="harvest", help="F0 tracker")
    p.add_argument("--rmvpe-model", default=None, help="rmvpe.pt for --f0-method rmvpe (default: none)")
    add_bool_argument(p, "--no-f0", False, "do not condition on F0 (the model then acts as V2)")
    p.add_argument("--content-extractor", choices=EXTRACTORS, default="phone", help="content extractor")
    p.add_argument("--content-checkpoint", required=True,
                   help="content extractor weights: phone classifier, or ASTRAL bsq2048_light.pth (required)")
    p.add_argument("--ssl-model", type=Path, default=None,
                   help="HuBERT directory (facebook/hubert-large-ll60k) for --content-extractor astral "
                        "(default: none)")
    p.add_argument("--style-encoder", choices=STYLE_ENCODERS, default="campplus", help="style vector kind")
    p.add_argument("--style-checkpoint", default=None, help="CAM++ weights (default: the installed file)")
    p.add_argument("--vocoder-path", default=None, help="BigVGAN-v2 22 kHz directory (default: Griffin-Lim)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    add_device_argument(p, "the model, the extractors and the vocoder")
    add_trust_checkpoint_argument(p)
    add_verbose_argument(p)
    return p


def read_jobs(path: Path, output_dir: Path | None = None) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: no such jobs file")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in ("source", "reference", "output") if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: header lacks {', '.join(missing)}")
        jobs = []
        for n, row in enumerate(reader, 2):
            def rel(v, base=path.parent):
                return None if not v else (Path(v) if Path(v).is_absolute() else base / v)
            try:
                shift = float(row.get("semitone_shift") or 0.0)
            except ValueError:
                raise InputError(f"{path}:{n}: semitone_shift is not a number") from None
            jobs.append({"source": rel(row["source"]), "reference": rel(row["reference"]),
                         "output": rel(row["output"], output_dir or path.parent), "shift": shift, "source_f0": rel(row.get("source_f0"))})
    return jobs


def run_job(conv: Converter, job: dict, args) -> None:
    src = read_input_audio(job["source"], "source")
    ref = read_input_audio(job["reference"], "reference")
    f0 = None
    if job.get("source_f0"):
        try:
            f0 = np.load(job["source_f0"], allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{job['source_f0']}: not a readable F0 track ({e})") from e
    opts = ConvertOptions(job["shift"], args.auto_f0_adjust, args.diffusion_steps,
                          tuple(args.cfg_rate) if args.cfg_rate else None, args.f0_method, args.rmvpe_model,
                          not args.no_f0, args.seed)
    try:
        wav = conv.convert(src, ref, opts, f0, reference_name=str(job["reference"]))
    except InputError:
        raise
    except Exception as e:  # report which file failed, not a bare traceback
        raise InputError(f"{job['source']}: conversion failed ({type(e).__name__}: {e})") from e
    save_audio(job["output"], wav, conv.sample_rate)
    logger.info("wrote %s (%.1f s, shift %+g st)", job["output"], len(wav) / conv.sample_rate, job["shift"])


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.jobs is not None:
        jobs = read_jobs(args.jobs, args.output_dir)
    else:
        if not (args.source and args.reference and args.output):
            raise InputError("give --source, --reference and --output (or --jobs)")
        jobs = [{"source": args.source, "reference": args.reference, "output": args.output,
                 "shift": args.semitone_shift, "source_f0": None}]
    for job in jobs:  # check inputs before loading the model
        for key in ("source", "reference"):
            if not Path(job[key]).is_file():
                if len(jobs) == 1:
                    raise InputError(f"{job[key]}: no such {key} file")
    conv = Converter(args.model_dir, args.checkpoint, args.content_extractor, args.content_checkpoint,
                     args.style_encoder, args.style_checkpoint, args.vocoder_path, resolve_device(args.device),
                     args.trust_checkpoint,
                     ssl_model=args.ssl_model)
    if len(jobs) == 1:
        run_job(conv, jobs[0], args)
        return 0
    failed = 0
    for job in jobs:
        try:
            run_job(conv, job, args)
        except InputError as e:
            failed += 1
            logger.error("%s", str(e).splitlines()[0])
    if failed:
        logger.error("%d of %d conversions failed", failed, len(jobs))
        return 2
    return 0


if __name__ == "__main__":
    run_main(main)
