#!/usr/bin/env python3
"""Japanese lyrics for a folder of songs without them: <id>.txt, one line per Whisper chunk.

Every <id>.wav|flac|mp3 in --audio-dir is mixed to mono, cut into --chunk-sec
chunks and transcribed greedily in Japanese by a local Whisper model (a folder
in Hugging Face format, e.g. a Japanese fine-tune saved with save_pretrained;
nothing is downloaded). --output-dir/<id>.txt gets one line per chunk (empty
for a silent chunk). Existing <id>.txt files are kept, so an interrupted run
resumes. The output folder is the --lyrics-dir of prepare_song_corpus.py,
which reads the lines as one [verse] with ' . ' after each line.

Sung lyrics are harder for Whisper than speech: check the text, or separate
the vocals first for songs with accompaniment.

Example:
  local/transcribe_lyrics.py --model-dir models/whisper-large-v3-ja --audio-dir my_songs --output-dir data/my_lyrics
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shirabe.cli import (  # noqa: E402
    ArgumentParser,
    InputError,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from songbloom.data.transcribe import WHISPER_WINDOW, transcribe_folder  # noqa: E402

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="transcribe_lyrics.py", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model-dir", type=Path, required=True, help="local Whisper model folder (required)")
    p.add_argument("--audio-dir", type=Path, required=True, help="folder of <id>.wav|flac|mp3 (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where <id>.txt lyrics are written (required)")
    p.add_argument("--chunk-sec", type=float, default=WHISPER_WINDOW,
                   help=f"seconds of audio per Whisper call and per output line (at most {WHISPER_WINDOW:g})")
    p.add_argument("--max-new-tokens", type=int, default=224, help="longest text per chunk, in tokens")
    add_device_argument(p, "Whisper")
    add_num_threads_argument(p, default=1)
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if not 0 < args.chunk_sec <= WHISPER_WINDOW:
        raise InputError(f"--chunk-sec must be in (0, {WHISPER_WINDOW:g}] (Whisper's window), got {args.chunk_sec}")
    if not args.audio_dir.is_dir():
        raise InputError(f"{args.audio_dir}: no such audio directory")
    if not args.model_dir.is_dir():
        raise InputError(f"{args.model_dir}: no such Whisper model directory")
    import torch

    from shirabe.eval.asr import WhisperASR

    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    asr = WhisperASR(args.model_dir, language="ja", device=device, max_new_tokens=args.max_new_tokens)
    transcribe_folder(asr, args.audio_dir, args.output_dir, args.chunk_sec)
    return 0


if __name__ == "__main__":
    run_main(main)
