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

Each single-process measurement is the best of ``--repeats`` passes after a
warm-up; overhead = frontend time / extract_fullcontext time − 1.

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


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best_time(fn, texts: list[str], repeats: int) -> float:
    for t in texts[:200]:  # warm-up
        fn(t)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - t0)
    return best


def render(args, n: int, base: float, rows: list[tuple[str, float]], batch_row) -> str:
    def line(name: str, sec: float, overhead: str) -> str:
        return f"| {name} | {sec:.2f} | {n / sec:.0f} | {1000 * sec / n:.3f} | {overhead} |"

    lines = [
        SECTION,
        "",
        f"`python bench/text_frontend.py --num-sentences {n} --repeats {args.repeats} --num-jobs {args.num_jobs}`"
        f" — {n} generated sentences (phrase combinations, {sum(map(len, make_sentences(n))) / n:.1f} characters"
        " on average), torch-free path, best of"
        f" {args.repeats} passes after a 200-sentence warm-up, one process unless stated.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs (2-core CPU build machine); "
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
                          f"{sec / base:.2f}× of 1-process floor"))
    lines += ["", "Target: frontend overhead ≤ 20% on top of `extract_fullcontext`."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def update_doc(path: Path, section: str) -> None:
    """Replace ``SECTION`` (up to the next ``## `` heading) or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


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
    base = best_time(pyopenjtalk.extract_fullcontext, texts, args.repeats)
    print(f"extract_fullcontext: {base:.2f}s", file=sys.stderr)
    rows = []
    for name in args.schemes:
        sec = best_time(JapaneseFrontend(name), texts, args.repeats)
        rows.append((name, sec))
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
        update_doc(args.update, section)


if __name__ == "__main__":
    main()
