#!/usr/bin/env python3
"""moe-speech-plus -> train/dev/test TSVs for the ZipVoice recipes.

The corpus (see local/README.md) comes as one zip per character, ``<name>.zip``,
each holding the character's clips as ``.wav`` files with a ``.json`` beside
every clip (``anime_whisper_transcription``, ``parakeet_jp_transcription``,
``duration``, ``speechMOS``). Zips are unpacked once into --extract-dir (a
``<name>.complete`` marker tells a finished unpack from an interrupted one,
which is redone); already-unpacked character directories are used as they are.

Writes to --output-dir:
  train.tsv, dev.tsv, test.tsv  ``{utt_id}\\t{text}\\t{wav}`` (utt_id = ``{speaker}_{clip}``)
  speakers.tsv                  speaker, split, clips kept, minutes
  rejects.tsv                   clips left out and why

--num-test-speakers characters are held out entirely (zero-shot evaluation);
of every other character, --dev-ratio of the clips go to dev. Both choices
hash the names, so they do not change when characters are added. Clips are
left out when their JSON is unreadable or incomplete, the transcript is empty,
the duration is outside [--min-duration, --max-duration], the two ASR
transcripts disagree by more than --max-cer (character error rate after NFKC
normalisation) or the speechMOS is below --min-mos.

Example:
  local/prepare_moe_speech_plus.py --corpus-dir download/moe-speech-plus --output-dir data/moe_speech_plus
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging  # noqa: E402

logger = logging.getLogger("prepare_moe_speech_plus")
TRANSCRIPTS = {"anime_whisper": "anime_whisper_transcription", "parakeet": "parakeet_jp_transcription"}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="prepare_moe_speech_plus.py", description=__doc__)
    p.add_argument("--corpus-dir", type=Path, required=True, help="directory with <name>.zip files and/or <name>/ dirs")
    p.add_argument("--output-dir", type=Path, required=True, help="where the TSVs go")
    p.add_argument("--extract-dir", type=Path, default=None, help="where zips are unpacked (default: CORPUS_DIR/extracted)")
    p.add_argument("--dev-ratio", type=float, default=0.05, help="share of each training speaker's clips for dev")
    p.add_argument("--num-test-speakers", type=int, default=5, help="speakers held out for zero-shot tests")
    p.add_argument("--transcript", choices=sorted(TRANSCRIPTS), default="anime_whisper", help="which ASR transcript is the text")
    p.add_argument("--max-cer", type=float, default=None, help="drop clips whose two transcripts disagree more (default: keep all)")
    p.add_argument("--min-mos", type=float, default=None, help="drop clips with a lower speechMOS (default: keep all)")
    p.add_argument("--min-duration", type=float, default=0.5, help="shortest clip kept (seconds)")
    p.add_argument("--max-duration", type=float, default=20.0, help="longest clip kept (seconds)")
    return p


def normalize(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def cer(ref: str, hyp: str) -> float:
    """Character error rate of ``hyp`` against ``ref`` (Levenshtein distance / len(ref))."""
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def bucket(name: str) -> float:
    """A stable number in [0, 1) for a name."""
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def unpack(zip_path: Path, extract_dir: Path) -> Path:
    out, marker = extract_dir / zip_path.stem, extract_dir / f"{zip_path.stem}.complete"
    if marker.is_file() and out.is_dir():
        return out
    if out.exists():
        logger.info("%s: unpacking again (the last unpack did not finish)", zip_path.name)
        shutil.rmtree(out)
    extract_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(zip_path) as z:
            z.extractall(out)
    except zipfile.BadZipFile as e:
        raise InputError(f"{zip_path}: not a readable zip ({e})") from e
    marker.write_text("", encoding="utf-8")
    return out


def speaker_dirs(corpus: Path, extract_dir: Path) -> dict[str, Path]:
    if not corpus.is_dir():
        raise InputError(f"{corpus}: no such directory")
    dirs = {}
    for z in sorted(corpus.glob("*.zip")):
        dirs[z.stem] = unpack(z, extract_dir)
    for d in sorted(p for p in corpus.iterdir() if p.is_dir() and p != extract_dir and not p.name.startswith(".")):
        dirs.setdefault(d.name, d)
    if not dirs:
        raise InputError(f"{corpus}: no <name>.zip files or speaker directories")
    return dirs


def read_clip(js: Path, args) -> tuple[dict | None, str]:
    """The clip's row, or None and the reason it is left out."""
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, "unreadable json"
    if not isinstance(meta, dict):
        return None, "json is not an object"
    wav = js.with_suffix(".wav")
    if not wav.is_file():
        return None, "no wav beside the json"
    text = meta.get(TRANSCRIPTS[args.transcript])
    duration = meta.get("duration")
    if not isinstance(text, str) or not normalize(text):
        return None, "empty transcript"
    if not isinstance(duration, (int, float)):
        return None, "no duration"
    if not args.min_duration <= duration <= args.max_duration:
        return None, "duration out of range"
    if args.max_cer is not None:
        other = [v for k, v in TRANSCRIPTS.items() if k != args.transcript][0]
        if cer(normalize(text), normalize(str(meta.get(other) or ""))) > args.max_cer:
            return None, "transcripts disagree"
    if args.min_mos is not None and not (isinstance(meta.get("speechMOS"), (int, float)) and meta["speechMOS"] >= args.min_mos):
        return None, "low speechMOS"
    return {"text": " ".join(text.split()), "wav": wav.resolve(), "duration": float(duration)}, ""


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    if not 0 <= args.dev_ratio < 1:
        raise InputError(f"--dev-ratio must be in [0, 1), got {args.dev_ratio}")
    extract_dir = args.extract_dir or args.corpus_dir / "extracted"
    dirs = speaker_dirs(args.corpus_dir, extract_dir)
    names = sorted(dirs, key=lambda n: (bucket("test:" + n), n))
    if args.num_test_speakers >= len(names):
        raise InputError(f"--num-test-speakers {args.num_test_speakers}: only {len(names)} speakers found")
    test_speakers = set(names[: args.num_test_speakers])
    splits = {"train": [], "dev": [], "test": []}
    rejects, reasons, speakers = [], Counter(), []
    for name in sorted(dirs):
        kept, minutes = 0, 0.0
        for js in sorted(dirs[name].rglob("*.json")):
            row, why = read_clip(js, args)
            if row is None:
                rejects.append((name, str(js), why))
                reasons[why] += 1
                continue
            utt = f"{name}_{js.stem.replace('_', '-')}"
            split = "test" if name in test_speakers else ("dev" if bucket(utt) < args.dev_ratio else "train")
            splits[split].append((utt, row["text"], row["wav"]))
            kept += 1
            minutes += row["duration"] / 60
        speakers.append((name, "test" if name in test_speakers else "train/dev", kept, minutes))
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)

    def write(path: Path, lines) -> None:
        tmp = path.with_name(".tmp." + path.name)
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines("\t".join(map(str, line)) + "\n" for line in lines)
        os.replace(tmp, path)

    for split, rows in splits.items():
        write(out / f"{split}.tsv", rows)
    write(out / "speakers.tsv", [("speaker", "split", "clips", "minutes")] + [(n, s, k, f"{m:.1f}") for n, s, k, m in speakers])
    write(out / "rejects.tsv", [("speaker", "json", "reason")] + rejects)
    if not splits["train"]:
        raise InputError(f"{args.corpus_dir}: no usable clips (see {out / 'rejects.tsv'})")
    logger.info("%d speakers (%d held out for test): train %d, dev %d, test %d clips; left out %d (%s) -> %s",
                len(dirs), len(test_speakers), len(splits["train"]), len(splits["dev"]), len(splits["test"]),
                len(rejects), ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none", out)
    return 0


if __name__ == "__main__":
    run_main(main)
