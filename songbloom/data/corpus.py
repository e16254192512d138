"""Check songs and write a SongBloom corpus: 48 kHz audio, lyrics, phonemes, style prompts, splits.

Every song (a :class:`SongSource`: audio plus a score or lyric text) goes
through :func:`process_song`; the checks, in order, each a reason in
``rejects.tsv`` when it fails:

========================  ======================================================
reason                    when
========================  ======================================================
(listing problems)        missing song directory / lyrics file, bad JSONL line, duplicate id
missing audio file        the song's audio is not there
missing MusicXML file     no score of the kind asked for
broken MusicXML           the XML does not parse (with line and column)
unreadable MusicXML       not a score, a bad ``.mxl``, a note without duration ...
no lead part              no part named as the lead and none with lyrics
no lyrics in lead part    the lead part has no lyric syllables
no lyrics                 a lyric text with nothing to sing
no Japanese lyrics        ``--clean-japanese`` left no kana or kanji (scat only)
unknown lyric symbols     the G2P met symbols SongBloom's vocabulary lacks
                          (unless ``--allow-unknown``; then they are counted)
unreadable lyrics         the G2P cannot read the text
empty/unreadable audio    the audio file is empty or cannot be decoded
too short                 shorter than the prompt or ``--min-duration``
silent audio              the audio peaks below -80 dBFS
========================  ======================================================

A kept song's audio is used where it lies when it is a 48 kHz wav/flac; any
other rate or format is resampled to 48 kHz (channels kept: mono stays mono)
into ``audio/<id>.wav``. Its style prompt (:mod:`songbloom.data.prompt`, or
the first ``prompt_sec`` of a given prompt file) goes to ``prompts/<id>.wav``
(48 kHz).

Each song's outcome is saved in ``cache/<id>.json`` as soon as it is known,
with a fingerprint of its inputs (files' sizes and times, options, the G2P's
code); a re-run reuses it, so an interrupted run resumes and a finished song is
never redone. The corpus files are rewritten from all outcomes at the end,
each atomically and only when its bytes change, so a re-run gives identical
output.

Output (``<prefix>`` = ``--prefix``), for each split ``train``, ``dev``, ``test``:

* ``<prefix>_recordings_<split>.jsonl.gz``, ``<prefix>_supervisions_<split>.jsonl.gz``:
  lhotse manifests, one recording and one supervision per song; the
  supervision's ``text`` is the lyrics, ``language`` ``ja``, custom fields
  ``phonemes`` (SongBloom symbols), ``structure`` (``{tag, start, end}`` per
  tag written, seconds from a score or null), ``prompt_wav``, ``prompt_start``
  and ``subset``;
* ``<prefix>_<split>.jsonl``: SongBloom's inference input, ``{"idx", "lyrics", "prompt_wav"}``
  (a split without songs has none of these files: lhotse cannot read an empty manifest);

and ``songs.tsv`` (one row per kept song: split, duration, phrases, phoneme
symbols, removed characters, unknown symbols, prompt start, source, notes) and
``rejects.tsv`` (``id, path, reason``).

Songs are split whole: ordered by a hash of ``seed:id``, the first
``test_songs`` go to test, the next ``dev_songs`` to dev, the rest to train
(at least one song always stays in train).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from shirabe.audio import resample, save_audio
from shirabe.audio.io import is_silent
from shirabe.cli import InputError
from shirabe.data.rejects import Rejects, one_line, reason_of
from songbloom.data.japanese import describe_removed
from songbloom.data.lead import LeadError
from songbloom.data.lyrics import (
    Section,
    clean_sections,
    count_phrases,
    format_lyrics,
    lyrics_have_japanese,
    parse_lyrics,
    structure_of,
)
from songbloom.data.musicxml import ScoreError, read_score
from songbloom.data.phrases import lyrics_from_score
from songbloom.data.prompt import cut_prompt, prompt_start
from songbloom.data.structure import is_non_vocal

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000  # SongBloom's VAE rate
LANGUAGE = "ja"
SPLITS = ("train", "dev", "test")
DIRECT_FORMATS = (".wav", ".flac")
LYRIC_MAX_LEN = 600  # lyric symbols the released 150 s model's conditioner keeps
FORMAT_VERSION = 1  # bump when a song's outcome would change for the same inputs
SONG_COLUMNS = ("id", "split", "duration", "phrases", "symbols", "removed", "unknown", "prompt_start", "source",
                "notes")


@dataclass
class SongSource:
    """One song to prepare: its audio and either a score (``score``) or lyric text (``lyrics``).

    ``path`` is what ``rejects.tsv`` shows for problems of the song as a whole;
    ``problem`` is a reason found while listing (the song is rejected with it).
    """

    id: str
    path: str
    audio: Path | None = None
    score: Path | None = None
    lyrics: str | None = None
    lyrics_path: Path | None = None
    prompt_wav: Path | None = None
    subset: str = ""
    speaker: str | None = None
    title: str | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    prompt_sec: float = 10.0
    phrase_rest: float = 0.25
    sentence_rest: float = 1.0
    clean_japanese: bool = False
    allow_unknown: bool = False
    min_duration: float = 10.0

    def check(self) -> None:
        if self.prompt_sec <= 0:
            raise InputError(f"--prompt-sec must be positive, got {self.prompt_sec}")
        if not 0 < self.phrase_rest <= self.sentence_rest:
            raise InputError(f"need 0 < --phrase-rest <= --sentence-rest, got {self.phrase_rest} and "
                             f"{self.sentence_rest}")
        if self.min_duration < 0:
            raise InputError(f"--min-duration must not be negative, got {self.min_duration}")


def safe_id(name: str) -> str:
    """``name`` as a song id and file name: characters other than letters, digits, ``. _ -`` become ``_``."""
    return re.sub(r"[^\w.\-]+", "_", name).strip("_.") or "song"


class Rejected(Exception):
    """A song left out: ``reason`` (kind first) and the file it concerns."""

    def __init__(self, reason: str, path: str | Path | None = None):
        super().__init__(reason)
        self.reason = reason
        self.path = None if path is None else str(path)


# ---------------------------------------------------------------- one song


def _sections(src: SongSource, opts: Options, notes: list[str]) -> tuple[list[Section], Counter]:
    if src.score is not None:
        try:
            score = read_score(src.score)
            read = lyrics_from_score(score, opts.phrase_rest, opts.sentence_rest, opts.clean_japanese, src.id)
        except (ScoreError, LeadError) as e:
            raise Rejected(str(e), src.score) from None
        if read.verses > 1:
            notes.append(f"the lead carries {read.verses} lyric lines; the first is read")
        if score.repeats:
            notes.append("the score has repeats; it is read once through")
        notes.append(f"score {score.end:.1f} s")
        return read.sections, read.removed
    sections = parse_lyrics(src.lyrics or "")
    removed = clean_sections(sections) if opts.clean_japanese else Counter()
    # a vocal section that cleaning (or its writer) left without text has nothing to say
    return [s for s in sections if s.phrases or is_non_vocal(s.tag)], removed


def _lyrics(src: SongSource, opts: Options, notes: list[str]) -> tuple[list[Section], Counter]:
    sections, removed = _sections(src, opts, notes)
    where = src.score or src.lyrics_path or src.path
    if not count_phrases(sections):
        if opts.clean_japanese and removed:
            raise Rejected(f"no Japanese lyrics: nothing to sing after --clean-japanese "
                           f"(removed {describe_removed(removed)})", where)
        raise Rejected("no lyrics: nothing to sing in the lyrics", where)
    if opts.clean_japanese and not lyrics_have_japanese(sections):
        raise Rejected(f"no Japanese lyrics: no kana or kanji left after --clean-japanese "
                       f"(removed {describe_removed(removed)})", where)
    return sections, removed


def _phonemes(text: str, opts: Options, where: str):
    from songbloom.g2p import LyricError, lyrics_to_phonemes

    try:
        return lyrics_to_phonemes(text, allow_unknown=opts.allow_unknown)
    except LyricError as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        kind = "unknown lyric symbols" if "vocabulary" in message else "unreadable lyrics"
        raise Rejected(f"{kind}: {message}", where) from None


def _read_audio(path: Path, need: float, need_what: str) -> tuple[np.ndarray, int, str]:
    """(samples x channels float32, rate, subtype); rejects empty, unreadable, short or silent audio."""
    if path.stat().st_size == 0:
        raise Rejected("empty audio file: 0 bytes", path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises several kinds for undecodable files
        raise Rejected(f"unreadable audio: {reason_of(e, path)}", path) from None
    duration = info.frames / info.samplerate if info.samplerate else 0.0
    if duration < need:
        raise Rejected(f"too short: {duration:.2f} s, shorter than {need_what}", path)
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001
        raise Rejected(f"unreadable audio: {reason_of(e, path)}", path) from None
    if is_silent(wav):
        raise Rejected("silent audio: the peak is below -80 dBFS", path)
    return wav, int(sr), info.subtype


def _as_output(wav: np.ndarray) -> np.ndarray:
    return wav[:, 0] if wav.shape[1] == 1 else wav


def process_song(src: SongSource, opts: Options, out_dir: Path) -> dict:
    """The outcome of one song: ``{"id", "reject", "path"}`` or the kept song's record (module docstring)."""
    if src.problem:
        raise Rejected(src.problem, src.path)
    if src.audio is None or not src.audio.is_file():
        raise Rejected(f"missing audio file: {src.audio.name if src.audio else 'none given'}", src.audio or src.path)
    notes = list(src.notes)
    sections, removed = _lyrics(src, opts, notes)
    text = format_lyrics(sections)
    phonemes = _phonemes(text, opts, str(src.score or src.lyrics_path or src.path))
    if src.prompt_wav is None:
        need, what = max(opts.prompt_sec, opts.min_duration), (
            f"the {opts.prompt_sec:g} s prompt" if opts.prompt_sec >= opts.min_duration
            else f"--min-duration {opts.min_duration:g} s")
    else:
        need, what = opts.min_duration, f"--min-duration {opts.min_duration:g} s"
    wav, sr, subtype = _read_audio(src.audio, need, what)
    audio_path = src.audio.resolve()
    if sr != SAMPLE_RATE or src.audio.suffix.lower() not in DIRECT_FORMATS:
        wav = resample(wav, sr, SAMPLE_RATE)
        audio_path = (out_dir / "audio" / f"{src.id}.wav").resolve()
        save_audio(audio_path, _as_output(wav), SAMPLE_RATE,
                   subtype="PCM_24" if subtype in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE") else "PCM_16")
        notes.append(f"resampled from {sr} Hz {src.audio.suffix.lstrip('.')}")
    prompt_path = (out_dir / "prompts" / f"{src.id}.wav").resolve()
    if src.prompt_wav is None:
        start = prompt_start(wav, SAMPLE_RATE, opts.prompt_sec)
        prompt = cut_prompt(wav, SAMPLE_RATE, start, opts.prompt_sec)
    else:
        if not src.prompt_wav.is_file():
            raise Rejected(f"missing prompt file: {src.prompt_wav.name}", src.prompt_wav)
        try:
            pwav, psr = sf.read(str(src.prompt_wav), dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001
            raise Rejected(f"unreadable prompt audio: {reason_of(e, src.prompt_wav)}", src.prompt_wav) from None
        if is_silent(pwav):
            raise Rejected("silent prompt audio: the peak is below -80 dBFS", src.prompt_wav)
        start = None
        prompt = cut_prompt(resample(pwav, psr, SAMPLE_RATE), SAMPLE_RATE, 0.0, opts.prompt_sec)
        if len(prompt) < int(round(opts.prompt_sec * SAMPLE_RATE)):
            notes.append(f"the given prompt lasts {len(prompt) / SAMPLE_RATE:.2f} s")
    save_audio(prompt_path, _as_output(prompt), SAMPLE_RATE)
    symbols = len(phonemes.text.split()) if phonemes.text else 0
    if symbols > LYRIC_MAX_LEN:
        notes.append(f"{symbols} phoneme symbols: the released 150 s model reads the first {LYRIC_MAX_LEN}")
    if removed:
        logger.info("%s: --clean-japanese removed %s", src.id, describe_removed(removed))
    if phonemes.unknown:
        logger.warning("%s: kept with unknown lyric symbols %s", src.id, dict(phonemes.unknown))
    return {
        "id": src.id,
        "audio": str(audio_path),
        "channels": int(wav.shape[1]),
        "duration": round(len(wav) / SAMPLE_RATE, 6),
        "lyrics": text,
        "phonemes": phonemes.text,
        "symbols": symbols,
        "unknown": dict(sorted(phonemes.unknown.items())),
        "structure": structure_of(sections),
        "phrases": count_phrases(sections),
        "removed": dict(sorted(removed.items())),
        "prompt_wav": str(prompt_path),
        "prompt_start": start,
        "subset": src.subset,
        "speaker": src.speaker,
        "title": src.title,
        "source": str(src.score or src.lyrics_path or src.audio),
        "notes": notes,
    }


# ---------------------------------------------------------------- resume


def _file_stamp(path: Path | None):
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def code_stamp() -> str:
    """A hash of this package's and the G2P's code and vocabulary: a change redoes every song."""
    import songbloom.data
    import songbloom.g2p

    h = hashlib.sha1(str(FORMAT_VERSION).encode())
    for package in (songbloom.data, songbloom.g2p):
        folder = Path(package.__file__).parent
        for f in sorted(folder.glob("*.py")) + sorted(folder.glob("*.yaml")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def fingerprint(src: SongSource, opts: Options, code: str) -> str:
    fields = asdict(src)
    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()}
    stamps = [_file_stamp(p) for p in (src.audio, src.score, src.lyrics_path, src.prompt_wav)]
    blob = json.dumps([fields, asdict(opts), stamps, code], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def _cache_path(out_dir: Path, song_id: str) -> Path:
    return out_dir / "cache" / f"{song_id}.json"


def _cached(out_dir: Path, song_id: str, fp: str) -> dict | None:
    path = _cache_path(out_dir, song_id)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") != fp or not isinstance(saved.get("outcome"), dict):
        return None
    outcome = saved["outcome"]
    if "reject" not in outcome and not all(Path(outcome.get(k, "")).is_file() for k in ("audio", "prompt_wav")):
        return None
    return outcome


def write_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` already holds exactly it; True when written."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp.{os.getpid()}.{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _run_one(job: tuple[SongSource, Options, Path, str]) -> dict:
    """Process one song and save its outcome (in the worker, so a finished song survives a crash)."""
    src, opts, out_dir, code = job
    fp = fingerprint(src, opts, code)
    try:
        outcome = process_song(src, opts, out_dir)
    except Rejected as r:
        outcome = {"id": src.id, "reject": one_line(r.reason), "path": r.path or src.path}
    except Exception as e:  # noqa: BLE001 - one bad song must not stop the corpus
        logger.exception("%s: unexpected error", src.id)
        outcome = {"id": src.id, "reject": f"error: {type(e).__name__}: {reason_of(e)}", "path": src.path}
    payload = json.dumps({"fingerprint": fp, "outcome": outcome}, ensure_ascii=False, indent=1)
    write_bytes(_cache_path(out_dir, src.id), payload.encode("utf-8"))
    return outcome


# ---------------------------------------------------------------- corpus


def split_songs(ids: list[str], dev_songs: int, test_songs: int, seed: int) -> dict[str, str]:
    """id -> split (module docstring); at least one song stays in train."""
    order = sorted(ids, key=lambda i: (hashlib.sha1(f"{seed}:{i}".encode()).hexdigest(), i))
    n_test = min(test_songs, max(0, len(order) - 1))
    n_dev = min(dev_songs, max(0, len(order) - 1 - n_test))
    if (n_test, n_dev) != (test_songs, dev_songs) and order:
        logger.warning("only %d songs kept: %d for test and %d for dev (asked %d and %d)", len(order), n_test,
                       n_dev, test_songs, dev_songs)
    return {i: ("test" if k < n_test else "dev" if k < n_test + n_dev else "train") for k, i in enumerate(order)}


def _gzip_jsonl(items) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        for item in items:
            gz.write((json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))
    return buf.getvalue()


def _manifest_items(record: dict):
    from lhotse import Recording, SupervisionSegment

    recording = Recording.from_file(record["audio"], recording_id=record["id"])
    channels = recording.channel_ids
    custom = {"phonemes": record["phonemes"], "structure": record["structure"], "prompt_wav": record["prompt_wav"],
              "prompt_start": record["prompt_start"], "subset": record["subset"]}
    if record.get("title"):
        custom["title"] = record["title"]
    supervision = SupervisionSegment(
        id=record["id"], recording_id=record["id"], start=0.0, duration=recording.duration,
        channel=channels[0] if len(channels) == 1 else channels, text=record["lyrics"], language=LANGUAGE,
        speaker=record.get("speaker"), custom=custom,
    )
    return recording.to_dict(), supervision.to_dict()


def _tsv(columns, rows) -> bytes:
    lines = ["\t".join(columns)] + ["\t".join(one_line(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _describe_counter(counter: dict) -> str:
    return ", ".join(f"{k} x{v}" for k, v in counter.items()) if counter else ""


def split_paths(out_dir: Path, prefix: str, split: str) -> dict[str, Path]:
    """The files of one split: ``recordings``, ``supervisions`` (lhotse) and ``jsonl`` (inference input)."""
    return {
        "recordings": out_dir / f"{prefix}_recordings_{split}.jsonl.gz",
        "supervisions": out_dir / f"{prefix}_supervisions_{split}.jsonl.gz",
        "jsonl": out_dir / f"{prefix}_{split}.jsonl",
    }


def write_corpus(kept: list[dict], rejects: Rejects, out_dir: Path, splits: dict[str, str], prefix: str) -> None:
    """Write the manifests, inference JSONL and reports (module docstring)."""
    for split in SPLITS:
        records = [r for r in kept if splits[r["id"]] == split]
        paths = split_paths(out_dir, prefix, split)
        if not records:  # lhotse cannot read an empty manifest: an empty split has no files
            for path in paths.values():
                path.unlink(missing_ok=True)
            continue
        items = [_manifest_items(r) for r in records]
        write_bytes(paths["recordings"], _gzip_jsonl(rec for rec, _ in items))
        write_bytes(paths["supervisions"], _gzip_jsonl(sup for _, sup in items))
        lines = [json.dumps({"idx": r["id"], "lyrics": r["lyrics"], "prompt_wav": r["prompt_wav"]},
                            ensure_ascii=False) + "\n" for r in records]
        write_bytes(paths["jsonl"], "".join(lines).encode("utf-8"))
    rows = [
        (r["id"], splits[r["id"]], f"{r['duration']:.2f}", r["phrases"], r["symbols"],
         describe_removed(Counter(r["removed"])), _describe_counter(r["unknown"]),
         "" if r["prompt_start"] is None else f"{r['prompt_start']:.2f}", r["source"], "; ".join(r["notes"]))
        for r in kept
    ]
    write_bytes(out_dir / "songs.tsv", _tsv(SONG_COLUMNS, rows))
    write_bytes(out_dir / "rejects.tsv", _tsv(rejects.columns, rejects.rows))


def prepare_corpus(sources: list[SongSource], out_dir: str | Path, opts: Options, dev_songs: int = 2,
                   test_songs: int = 3, seed: int = 0, num_jobs: int = 1, prefix: str = "songs") -> dict:
    """Process (or reuse) every song and write the corpus; returns a summary dict."""
    opts.check()
    if dev_songs < 0 or test_songs < 0:
        raise InputError(f"--dev-songs and --test-songs must not be negative, got {dev_songs} and {test_songs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    code = code_stamp()
    seen: dict[str, str] = {}
    for src in sources:
        if src.id in seen and not src.problem:
            src.problem = f"duplicate id: {src.id} is also {seen[src.id]}"
        seen.setdefault(src.id, src.path)
    outcomes: dict[int, dict] = {}
    todo = []
    for k, src in enumerate(sources):
        hit = None if src.problem else _cached(out_dir, src.id, fingerprint(src, opts, code))
        if hit is not None:
            outcomes[k] = hit
        else:
            todo.append(k)
    if todo:
        logger.info("%d songs to prepare (%d done before)", len(todo), len(sources) - len(todo))
    jobs = [(sources[k], opts, out_dir, code) for k in todo]
    workers = max(1, min(num_jobs, len(jobs)))
    if workers == 1:
        results = [_run_one(j) if not j[0].problem else _listing_reject(j[0]) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_run_or_list, jobs))
    outcomes.update(zip(todo, results))
    kept, rejects = [], Rejects()
    for k in range(len(sources)):
        outcome = outcomes[k]
        if "reject" in outcome:
            rejects.add(outcome["id"], outcome["path"], outcome["reject"])
            logger.info("%s: left out: %s", outcome["id"], outcome["reject"])
        else:
            kept.append(outcome)
    splits = split_songs([r["id"] for r in kept], dev_songs, test_songs, seed)
    write_corpus(kept, rejects, out_dir, splits, prefix)
    counts = Counter(splits.values())
    logger.info("kept %d of %d songs (train %d, dev %d, test %d); left out %s -> %s", len(kept), len(sources),
                counts["train"], counts["dev"], counts["test"], rejects.summary(), out_dir)
    if not kept:
        raise InputError(f"no song could be prepared: {rejects.summary()} (see {out_dir / 'rejects.tsv'})")
    return {"songs": len(sources), "kept": len(kept), "splits": dict(counts), "rejects": dict(rejects.kinds())}


def _listing_reject(src: SongSource) -> dict:
    """A song rejected while listing (duplicate id, bad JSONL line): not cached, its id may not be unique."""
    return {"id": src.id, "reject": one_line(src.problem), "path": src.path}


def _run_or_list(job) -> dict:
    return _listing_reject(job[0]) if job[0].problem else _run_one(job)
