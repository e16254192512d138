"""Write a blind listening page that compares accompaniment systems sample by sample.

``--systems name=DIR ...`` names each system's output folder; a sample is an audio file
``<key>.<ext>`` or ``<key><suffix>.<ext>`` (wav, flac, mp3, ogg). Without ``--system-suffix`` the
key is the file name without one of the suffixes ``_vocal``, ``_inst``, ``_mix``,
``_accompaniment``; a folder that holds two files for one key (``song1_accompaniment.wav`` and
``song1_mix.wav``) needs ``--system-suffix`` to choose. The page shows every key that all
systems have, with the vocal of ``--vocals`` (``<key>_vocal.<ext>`` or ``<key>.<ext>``) when there.

The samples and, per sample, the systems are shuffled with ``--seed`` under the labels A, B, ...;
the audio is copied to ``OUT/audio/`` under anonymous names and the page is ``OUT/index.html``.
Raters rate each system on five axes (1-5) and export a JSON sheet; ``python -m
acestep.bin.rating_stats`` un-blinds and tests the sheets.
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


def system_spec(value: str) -> tuple[str, Path]:
    import argparse

    name, sep, folder = value.partition("=")
    if not sep or not name.strip() or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {value!r}")
    return name.strip(), Path(folder)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m acestep.bin.compare", description=__doc__)
    p.add_argument("--systems", type=system_spec, nargs="+", required=True, metavar="NAME=DIR",
                   help="two or more systems: a name and its output folder (required)")
    p.add_argument("--vocals", type=Path, required=True, help="folder of the input vocals (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where index.html and audio/ go (required)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and system order")
    p.add_argument("--system-suffix", default="",
                   help="take only system files <key><suffix>.<ext> (e.g. _accompaniment or _mix); "
                        "default: empty = any, known suffixes stripped")
    p.add_argument("--vocal-suffix", default="",
                   help="take only vocal files <key><suffix>.<ext>; default: empty = any, known suffixes stripped")
    p.add_argument("--title", default="Accompaniment listening test", help="the page's title")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from acestep.accompaniment.compare import blind_order, collect, find_audio, write_page

    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    names = [name for name, _ in args.systems]
    if len(names) < 2:
        raise InputError("--systems: give at least two systems to compare")
    if len(set(names)) != len(names):
        raise InputError(f"--systems: a name is given twice ({', '.join(names)})")
    systems = {name: find_audio(folder, args.system_suffix, f"system {name!r} folder")
               for name, folder in args.systems}
    vocals = find_audio(args.vocals, args.vocal_suffix, "--vocals folder")
    keys, partial = collect(systems)
    if partial:
        logger.warning("%d sample(s) left out: not made by every system (%s)", len(partial),
                       ", ".join(partial[:10]) + (" ..." if len(partial) > 10 else ""))
    if not keys:
        raise InputError("--systems: no sample key is shared by all systems")
    missing = [k for k in keys if k not in vocals]
    if missing:
        logger.warning("%d sample(s) without a vocal in %s (%s)", len(missing), args.vocals, ", ".join(missing[:10]))
    samples = blind_order(systems, vocals, keys, args.seed)
    index = write_page(args.output_dir, samples, args.seed, args.title)
    logger.info("wrote %s: %d samples x %d systems", index, len(samples), len(systems))
    print(index)
    return 0


if __name__ == "__main__":
    run_main(main)
