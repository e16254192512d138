#!/usr/bin/env python3
"""Write SongGeneration's metadata.jsonl for a folder of ``{key}_mix/_vocal/_inst.wav`` pairs.

Writes ``metadata_train.jsonl`` and ``metadata_test.jsonl`` (the last ``--num-test`` keys) into
``--output-dir``, one line per key with a mix: ``path`` (the mix; its stems lie beside it), ``gt_lyric`` (from
``{key}_lyrics.txt``; the mini corpus's ``[intro]``/``[outro]``/``[inst]`` become the model's
``[intro-short]``/``[outro-short]``/``[inst-short]``), ``descriptions`` (``{key}_prompt.txt``),
``idx``; and ``test.jsonl``, the held-out songs as upstream's generation JSONL with the song itself as
``prompt_audio_path`` (generation encodes its first 10 s).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

TAG_MAP = {"[intro]": "[intro-short]", "[outro]": "[outro-short]", "[inst]": "[inst-short]"}


def lyric_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8") if path.is_file() else "[inst-short]"
    return re.sub(r"\[[^\]]*\]", lambda m: TAG_MAP.get(m.group(0), m.group(0)), text).strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs-dir", type=Path, required=True, help="folder of {key}_mix.wav + stems + texts")
    p.add_argument("--output-dir", type=Path, required=True, help="where the three JSONL files go")
    p.add_argument("--num-test", type=int, default=1, help="held-out songs (default: 1)")
    args = p.parse_args()
    mixes = sorted(args.pairs_dir.glob("*_mix.wav"))
    if len(mixes) <= args.num_test:
        raise SystemExit(f"{args.pairs_dir}: {len(mixes)} songs, need more than --num-test {args.num_test}")
    rows = []
    for mix in mixes:
        key = mix.name[: -len("_mix.wav")]
        prompt = args.pairs_dir / f"{key}_prompt.txt"
        rows.append({"path": str(mix.resolve()), "gt_lyric": lyric_of(args.pairs_dir / f"{key}_lyrics.txt"),
                     "descriptions": prompt.read_text(encoding="utf-8").strip() if prompt.is_file() else "",
                     "idx": key})
    train, test = rows[: len(rows) - args.num_test], rows[len(rows) - args.num_test:]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("metadata_train.jsonl", train), ("metadata_test.jsonl", test)):
        (args.output_dir / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
                                            encoding="utf-8")
    (args.output_dir / "test.jsonl").write_text("".join(json.dumps({"idx": r["idx"], "gt_lyric": r["gt_lyric"],
                                                    "descriptions": r["descriptions"],
                                                    "prompt_audio_path": r["path"]}, ensure_ascii=False) + "\n"
                                        for r in test), encoding="utf-8")
    print(f"{len(train)} training songs, {len(test)} held out -> {args.output_dir}")


if __name__ == "__main__":
    main()
