#!/usr/bin/env python3
"""Speed of the Japanese text frontend against OpenJTalk's own label extraction.

Generates ``--num-sentences`` sentences (deterministically, by combining a
built-in list of phrases) and times, in one process on the torch-free path:

* ``pyopenjtalk.extract_fullcontext`` on every sentence (the floor: OpenJTalk
  itself, including pyopenjtalk-plus's reading corrections),
* ``JapaneseFrontend`` (normalisation + OpenJTalk + label parsing + scheme) for
  each ``--schemes`` entry,
* ``shirabe.text.batch.tokenize_texts`` with ``--num-jobs`` processes
  (includes starting the workers).

The single-process measurements are interleaved block by block (so that load
from other processes falls on all of them alike); each is the best total of
``--repeats`` passes after a warm-up. Overhead = frontend time /
extract_fullcontext time − 1.

    python bench/text_frontend.py                              # print a markdown table
    python bench/text_frontend.py --update docs/benchmarks.md

``--update`` writes the section "## Japanese text frontend" into the file,
replacing an earlier copy of that section and keeping every other one.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyopenjtalk  # noqa: E402
from report import cpu_name, update_doc  # noqa: E402

from shirabe.text import JapaneseFrontend  # noqa: E402
from shirabe.text.batch import tokenize_texts  # noqa: E402

SECTION = "## Japanese text frontend"

SUBJECTS = [
    "今日は", "明日の朝は", "私の兄は", "駅前の本屋で", "東京の空は", "先生が", "子どもたちは", "この町の人々は",
    "昨日の会議で", "新しい携帯電話は", "山田さんは", "雨の日には", "猫が", "図書館の窓から", "春になると",
    "3月21日に", "午後3時15分から", "1,500円の弁当を", "AIの研究者が", "NHKのニュースで",
]
MIDDLES = [
    "少しだけ", "とても静かに", "いつものように", "思ったより早く", "友だちと一緒に", "ゆっくりと", "急いで",
    "久しぶりに", "何度も", "こっそり", "まっすぐ", "一生懸命に", "のんびり", "朝から晩まで", "きっと",
]
PREDICATES = [
    "散歩に出かけました。", "橋を渡りました。", "箸で食べました。", "雨が降っています。", "飴を買いました。",
    "柿を食べましたか？", "牡蠣が好きです。", "居間で休んでいます。", "手紙を書いています。", "歌を歌いました！",
    "電車に乗りますか？", "本を読んでいました。", "窓を開けてください。", "空を見上げました…", "写真を撮りました。",
    "新聞を読みました。", "切手を貼りました。", "学校へ行きました。", "コーヒーを飲みました。", "花が咲いていますね。",
]


def make_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences ``subject + middle + predicate``, shuffled with a fixed seed."""
    combos = list(itertools.product(SUBJECTS, MIDDLES, PREDICATES))
    random.Random(seed).shuffle(combos)
    return ["".join(c) for c in itertools.islice(itertools.cycle(combos), n)]




def interleaved_times(fns: dict, texts: list[str], repeats: int, block: int = 250) -> dict[str, float]:
    """Time every function on the same texts, block by block in rotating order, so that
    load from other processes falls on all of them alike. Returns each function's best
    total over ``repeats`` passes (after a warm-up on the first 200 texts)."""
    for fn in fns.values():
        for t in texts[:200]:
            fn(t)
    names = list(fns)
    best = dict.fromkeys(names, float("inf"))
    for _ in range(repeats):
        total = dict.fromkeys(names, 0.0)
        for b, start in enumerate(range(0, len(texts), block)):
            chunk = texts[start : start + block]
            order = names[b % len(names):] + names[: b % len(names)]
            for name in order:
                fn = fns[name]
                t0 = time.perf_counter()
                for t in chunk:
                    fn(t)
                total[name] += time.perf_counter() - t0
        for name in names:
            best[name] = min(best[name], total[name])
    return best


def render(args, n: int, base: float, rows: list[tuple[str, float]], batch_row) -> str:
    def line(name: str, sec: float, overhead: str) -> str:
        return f"| {name} | {sec:.2f} | {n / sec:.0f} | {1000 * sec / n:.3f} | {overhead} |"

    lines = [
        SECTION,
        "",
        f"`python bench/text_frontend.py --num-sentences {n} --repeats {args.repeats} --num-jobs {args.num_jobs}`"
        f" — {n} generated sentences (phrase combinations, {sum(map(len, make_sentences(n))) / n:.1f} characters"
        " on average), torch-free path, one process unless stated. The single-process rows are timed"
        f" interleaved (blocks of 250 sentences, rotating order) and each is the best of {args.repeats} passes"
        " after a 200-sentence warm-up.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()}-core CPU as seen by the OS; "
        f"{'torch-free path (torch never imported)' if 'torch' not in sys.modules else 'torch was imported'}; "
        f"pyopenjtalk-plus {pyopenjtalk.__version__}; Python {platform.python_version()}; "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| what | time (s) | sentences/s | ms/sentence | overhead vs extract_fullcontext |",
        "|---|---:|---:|---:|---:|",
        line("`pyopenjtalk.extract_fullcontext`", base, "—"),
    ]
    for name, sec in rows:
        lines.append(line(f"`JapaneseFrontend` scheme `{name}`", sec, f"{100 * (sec / base - 1):+.1f}%"))
    if batch_row is not None:
        jobs, sec = batch_row
        lines.append(line(f"`tokenize_texts` (prosody, {jobs} processes, incl. start-up)", sec,
                          f"{base / sec:.2f}× the 1-process `extract_fullcontext` rate"))
    lines += ["", "Target: frontend overhead ≤ 20% on top of `extract_fullcontext`."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-sentences", type=int, default=10000, help="sentences to tokenise (default: 10000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per measurement (default: 2)")
    parser.add_argument("--schemes", nargs="+", default=["prosody", "hl"],
                        help="frontend schemes to time (default: prosody hl)")
    parser.add_argument("--num-jobs", type=int, default=2,
                        help="processes for the batch measurement; 0 skips it (default: 2)")
    parser.add_argument("--update", type=Path, default=None,
                        help="markdown file to write the section into (default: print only)")
    parser.add_argument("--note", default="", help="extra line under the table, e.g. machine load (default: none)")
    args = parser.parse_args()

    texts = make_sentences(args.num_sentences)
    fns = {"extract_fullcontext": pyopenjtalk.extract_fullcontext}
    fns.update({name: JapaneseFrontend(name) for name in args.schemes})
    times = interleaved_times(fns, texts, args.repeats)
    base = times.pop("extract_fullcontext")
    print(f"extract_fullcontext: {base:.2f}s", file=sys.stderr)
    rows = list(times.items())
    for name, sec in rows:
        print(f"{name}: {sec:.2f}s ({100 * (sec / base - 1):+.1f}%)", file=sys.stderr)
    batch_row = None
    if args.num_jobs > 0:
        t0 = time.perf_counter()
        result = tokenize_texts(texts, "prosody", num_jobs=args.num_jobs)
        batch_row = (args.num_jobs, time.perf_counter() - t0)
        if result.failures:
            print(f"warning: {len(result.failures)} sentences failed", file=sys.stderr)
        print(f"batch x{args.num_jobs}: {batch_row[1]:.2f}s", file=sys.stderr)
    section = render(args, len(texts), base, rows, batch_row)
    print(section, end="")
    if args.update is not None:
        update_doc(args.update, SECTION, section)


if __name__ == "__main__":
    main()
