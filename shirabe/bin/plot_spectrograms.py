#!/usr/bin/env python3
"""Log-mel spectrograms of wavs one above the other, as a PNG (shared colour scale).

    python -m shirabe.bin.plot_spectrograms --wav rec.wav --label recording --wav out.wav --label synthesis \\
        --title "hts_05_0002" --output exp/spectrogram.png

Give one ``--label`` per ``--wav`` (in the same order), or none to label each panel with its file name.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m shirabe.bin.plot_spectrograms", description=__doc__)
    p.add_argument("--wav", type=Path, action="append", required=True, help="a wav to plot (repeat; required)")
    p.add_argument("--label", action="append", default=None, help="its panel's title (repeat; default: file name)")
    p.add_argument("--title", default="", help="title above the panels (default: none)")
    p.add_argument("--output", type=Path, required=True, help="PNG to write (required)")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    labels = args.label or [w.name for w in args.wav]
    if len(labels) != len(args.wav):
        raise InputError(f"--label given {len(labels)} times for {len(args.wav)} --wav")
    for w in args.wav:
        if not w.is_file():
            raise InputError(f"{w}: no such file")
    from shirabe.eval.spectrogram import spectrogram_png

    out = spectrogram_png(args.wav, labels, args.output, args.title)
    logger.info("wrote %s (%d panels)", out, len(args.wav))
    return 0


if __name__ == "__main__":
    run_main(main)
