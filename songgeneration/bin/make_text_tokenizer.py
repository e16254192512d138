"""Write a local Qwen2 text-tokenizer folder (vocab.json, merges.txt, tokenizer_config.json) from BPE ranks.

SongGeneration's lyric and description conditioners use the Qwen2-7B tokenizer. Its BPE is the
Qwen ``qwen.tiktoken`` rank file; ``tools/install.sh`` places one in ``<venv>/share/shirabe/``
(the default here). The folder is what ``config.yaml``'s ``token_path`` or ``--text-tokenizer-dir``
names; the structure tags are added by the conditioners when they load it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from songgeneration.models.text_tokenizer import write_qwen2_tokenizer_dir

logger = get_logger("songgeneration.bin.make_text_tokenizer")
DEFAULT_RANKS = Path(sys.prefix) / "share" / "shirabe" / "qwen.tiktoken"


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.make_text_tokenizer", description=__doc__)
    p.add_argument("--tiktoken", type=Path, default=DEFAULT_RANKS, help="the qwen.tiktoken rank file")
    p.add_argument("--output-dir", type=Path, required=True, help="tokenizer folder to write (required)")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if not args.tiktoken.is_file():
        raise InputError(f"{args.tiktoken}: no qwen.tiktoken rank file (tools/install.sh fetches it; or pass --tiktoken)")
    folder = write_qwen2_tokenizer_dir(args.tiktoken, args.output_dir)
    logger.info("wrote the Qwen2 tokenizer folder %s", folder)
    return 0


if __name__ == "__main__":
    run_main(main)
