#!/usr/bin/env python3
"""Split a corpus for the fine-tuning study: pretraining speakers, fine-tuning speakers, unseen speakers.

Inputs are corpus TSVs (``{utt_id}\\t{text}\\t{wav}``; the speaker is the utterance id before
its last ``_``): ``--pool`` (train and dev of the corpus, every speaker that may be trained
on) and ``--test`` (speakers never trained on). Of the pool's speakers, ``--num-finetune-speakers``
are held out of pretraining and used for fine-tuning: the ones named by
``--finetune-speakers``, or else the last ones of the pool, taken alternately from each
voice source listed in ``--speakers-tsv`` (the mini corpus's ``speakers.tsv``), so that the
two fine-tuning speakers of the mini corpus are a kokoro voice and an HTS voice.

Writes into ``--out-dir``:

- ``pretrain_train.tsv``, ``pretrain_dev.tsv``: the other pool speakers (the pool's own
  dev lines stay dev; a speaker without any gets its last utterance moved to dev);
- ``finetune_train.tsv``, ``finetune_dev.tsv``, ``finetune_eval.tsv``: per fine-tuning
  speaker, the last ``--eval-per-speaker`` utterances are kept for evaluation (never
  trained on), the one before them for dev, the rest for training;
- ``zero_shot.tsv``: the first ``--eval-per-speaker`` utterances of every test speaker;
- ``split.json``: the speaker sets and counts.

Example:
  local/study_split.py --pool data/mini/train.tsv data/mini/dev.tsv --test data/mini/test.tsv \\
      --speakers-tsv data/mini/speech/speakers.tsv --out-dir exp/study/lists
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.data.tsv import parse_tsv


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="study_split.py", description=__doc__)
    p.add_argument("--pool", type=Path, nargs="+", required=True,
                   help="corpus TSVs of the speakers that may be trained on; files named dev.tsv give dev lines "
                        "(required)")
    p.add_argument("--test", type=Path, required=True, help="corpus TSV of the unseen (zero-shot) speakers (required)")
    p.add_argument("--out-dir", type=Path, required=True, help="where the lists go (required)")
    p.add_argument("--speakers-tsv", type=Path, default=None,
                   help="speaker table with 'speaker' and 'source' columns, to alternate voice sources")
    p.add_argument("--finetune-speakers", default="",
                   help="comma-separated fine-tuning speakers (default: chosen as described above)")
    p.add_argument("--num-finetune-speakers", type=int, default=2, help="speakers held out for fine-tuning")
    p.add_argument("--eval-per-speaker", type=int, default=3,
                   help="evaluation utterances per fine-tuning speaker and per unseen speaker")
    p.add_argument("--speaker-sep", default="_", help="the speaker is the utterance id before the last SEP")
    return p


def read_rows(path: Path):
    rows, rejects = parse_tsv(path)
    if rejects:
        raise InputError(f"{path}:{rejects[0].line_no}: {rejects[0].reason}")
    return rows


def by_speaker(rows, sep: str) -> OrderedDict:
    out: OrderedDict = OrderedDict()
    for r in rows:
        out.setdefault(r.utt_id.rsplit(sep, 1)[0], []).append(r)
    return out


def read_sources(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if "speaker" not in header or "source" not in header:
        raise InputError(f"{path}: expected a header with 'speaker' and 'source' columns")
    s, k = header.index("speaker"), header.index("source")
    return {f[s]: f[k] for f in (line.split("\t") for line in lines[1:]) if len(f) > max(s, k)}


def choose_finetune_speakers(speakers: list[str], sources: dict[str, str], n: int) -> list[str]:
    """The last ``n`` speakers, alternating between voice sources (last speaker's source first)."""
    if n > len(speakers) - 1:
        raise InputError(f"{len(speakers)} trainable speakers: cannot hold out {n} for fine-tuning and still pretrain")
    pools: OrderedDict[str, list[str]] = OrderedDict()
    for spk in reversed(speakers):
        pools.setdefault(sources.get(spk, ""), []).append(spk)
    kinds, chosen, turn = list(pools), [], 0
    while len(chosen) < n:
        kind = kinds[turn % len(kinds)]
        if pools[kind]:
            chosen.append(pools[kind].pop(0))
        turn += 1
    return chosen


def write_tsv(path: Path, rows) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(f"{r.utt_id}\t{r.text}\t{r.wav}\n")
    return len(rows)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    if args.eval_per_speaker < 1 or args.num_finetune_speakers < 1:
        raise InputError("--eval-per-speaker and --num-finetune-speakers must be >= 1")
    train_rows, dev_ids = [], set()
    for path in args.pool:
        rows = read_rows(path)
        if path.name.startswith("dev"):
            dev_ids.update(r.utt_id for r in rows)
        train_rows += rows
    pool = by_speaker(train_rows, args.speaker_sep)
    test = by_speaker(read_rows(args.test), args.speaker_sep)
    overlap = set(pool) & set(test)
    if overlap:
        raise InputError(f"{args.test}: speaker(s) {', '.join(sorted(overlap))} also occur in --pool")
    if args.finetune_speakers:
        ft = [s.strip() for s in args.finetune_speakers.split(",") if s.strip()]
        unknown = [s for s in ft if s not in pool]
        if unknown:
            raise InputError(f"--finetune-speakers: {', '.join(unknown)} not in --pool")
    else:
        ft = choose_finetune_speakers(list(pool), read_sources(args.speakers_tsv), args.num_finetune_speakers)
    need = args.eval_per_speaker + 2
    for spk in ft:
        if len(pool[spk]) < need:
            raise InputError(f"fine-tuning speaker {spk} has {len(pool[spk])} utterances; needs at least {need} "
                             f"(--eval-per-speaker {args.eval_per_speaker} + dev + train)")

    pre_train, pre_dev, ft_train, ft_dev, ft_eval, zero_shot = [], [], [], [], [], []
    for spk, rows in pool.items():
        if spk in ft:
            k = args.eval_per_speaker
            ft_eval += rows[-k:]
            ft_dev.append(rows[-k - 1])
            ft_train += rows[:-k - 1]
            continue
        dev = [r for r in rows if r.utt_id in dev_ids] or rows[-1:]
        pre_dev += dev
        pre_train += [r for r in rows if r not in dev]
    for rows in test.values():
        zero_shot += rows[: args.eval_per_speaker]
    if not pre_train:
        raise InputError("no pretraining utterances left")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in (("pretrain_train", pre_train), ("pretrain_dev", pre_dev), ("finetune_train", ft_train),
                       ("finetune_dev", ft_dev), ("finetune_eval", ft_eval), ("zero_shot", zero_shot)):
        counts[name] = write_tsv(args.out_dir / f"{name}.tsv", rows)
    split = {
        "pretrain_speakers": [s for s in pool if s not in ft],
        "finetune_speakers": ft,
        "zero_shot_speakers": list(test),
        "utterances": counts,
    }
    (args.out_dir / "split.json").write_text(json.dumps(split, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out_dir}: pretraining {len(split['pretrain_speakers'])} speakers ({counts['pretrain_train']} utts), "
          f"fine-tuning {', '.join(ft)} ({counts['finetune_train']} utts), "
          f"zero-shot {', '.join(test)} ({counts['zero_shot']} utts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
