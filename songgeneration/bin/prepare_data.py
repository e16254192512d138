#!/usr/bin/env python3
"""Prepare a song corpus for training: metadata.jsonl → token tensors, prompts and manifests.

    python -m songgeneration.bin.prepare_data --config train_config.yaml

Reads ``paths.metadata_path`` (one JSON object per line: ``path``, ``gt_lyric``,
``descriptions``, ``idx``), takes each song's vocal and accompaniment stems from
``NAME_vocal.*`` / ``NAME_inst.*`` beside the song (or ``KEY_vocal`` / ``KEY_inst`` for
``KEY_mix.*``) or separates them with the local demucs model of ``data.separator_checkpoint``,
encodes the three streams with the audio tokenizer of ``paths.tokenizer`` /
``paths.audio_tokenizer_path`` and writes ``paths.prepared_data_dir``: ``manifest.jsonl``,
``tokens/<idx>.npy`` ([3, T] int64), ``prompt/<idx>.npy`` ([3, 250] for 10 s), ``rejects.tsv`` and
lhotse ``recordings.jsonl.gz`` / ``supervisions.jsonl.gz``. Lyrics are checked against the tags
of ``paths.base_model_path``/config.yaml and written in the model's format. Songs that cannot be
prepared are skipped and listed with the reason; a rerun keeps the songs already prepared.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.prepare_data", description=__doc__)
    p.add_argument("--config", type=Path, required=True, help="train_config.yaml (required)")
    p.add_argument("--num-workers", type=int, default=0, metavar="N",
                   help="threads that read, resample and separate audio ahead of the tokenizer (0: none)")
    add_bool_argument(p, "--progress", True, "show a progress bar")
    add_device_argument(p, "the audio tokenizer and the separator")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    import torch

    from songgeneration.data.prepare import prepare_data
    from songgeneration.train_config import load_train_config

    torch.set_num_threads(args.num_threads)
    config = load_train_config(args.config)
    prepare_data(config, resolve_device(args.device), max(0, args.num_workers), args.progress)
    return 0


if __name__ == "__main__":
    run_main(main)
