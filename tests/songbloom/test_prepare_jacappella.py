"""local/prepare_jacappella.py on the mini corpus songs part (jaCappella-shaped, 2 songs built once per
module) and on a jaCappella tree with broken songs made from it."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet

from shirabe.cli import run_main
from shirabe.minicorpus.score import INTRO_BARS, PHRASE_BARS, STEPS_PER_BAR, generate_song

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))
import prepare_jacappella  # noqa: E402

SCRIPT = ROOT / "local" / "prepare_jacappella.py"
NUM_SONGS = 2
# the mini songs last 21-23 s, the lead entering after a one-bar introduction (2.1-3.3 s)
PROMPT_SEC = 5.0


@pytest.fixture(scope="module")
def mini_songs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mini")
    subprocess.run([sys.executable, str(ROOT / "local" / "make_mini_corpus.py"), "--output-dir", str(out),
                    "--parts", "songs", "--num-songs", str(NUM_SONGS), "--no-progress", "true"],
                   check=True, capture_output=True)
    return out / "songs"


def _songs(part_dir: Path) -> dict[str, tuple]:
    """title -> (song, folder) for the songs of the part (their score, from the generator)."""
    out = {}
    for index in range(NUM_SONGS):
        song = generate_song(0, index)
        out[song.title] = (song, part_dir / song.subset / song.title)
    return out


def _expected_lyrics(song) -> str:
    """The lead's sung syllables, one phrase per two-bar phrase: the rests between phrases are one or
    two eighths (0.27-0.42 s at the mini songs' 72-112 BPM), so ' , ' between them and ' .' at the end."""
    phrases: dict[int, str] = {}
    for note in song.parts["lead_vocal"]:
        if note.pitch is not None:
            k = (note.start - INTRO_BARS * STEPS_PER_BAR) // (PHRASE_BARS * STEPS_PER_BAR)
            phrases[k] = phrases.get(k, "") + note.sung
    return "[verse] " + " , ".join(phrases[k] for k in sorted(phrases)) + " ."


def _tree_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_prepares_the_mini_songs(mini_songs, tmp_path):
    out = tmp_path / "out"
    assert prepare_jacappella.main(["--corpus-dir", str(mini_songs), "--output-dir", str(out),
                                    "--prompt-sec", str(PROMPT_SEC), "--dev-songs", "0", "--test-songs", "1"]) == 0
    songs = _songs(mini_songs)
    assert _read_tsv(out / "rejects.tsv") == []
    report = {row["id"]: row for row in _read_tsv(out / "songs.tsv")}
    assert set(report) == set(songs)
    assert sorted(row["split"] for row in report.values()) == ["test", "train"]
    assert not (out / "jacappella_recordings_dev.jsonl.gz").exists()  # an empty split has no files

    seen = {}
    for split in ("train", "test"):
        recordings = RecordingSet.from_file(out / f"jacappella_recordings_{split}.jsonl.gz")
        supervisions = SupervisionSet.from_file(out / f"jacappella_supervisions_{split}.jsonl.gz")
        lines = [json.loads(line) for line in (out / f"jacappella_{split}.jsonl").read_text("utf-8").splitlines()]
        assert len(recordings) == len(supervisions) == len(lines) == 1
        rec, sup, line = recordings[0], supervisions[0], lines[0]
        assert set(line) == {"idx", "lyrics", "prompt_wav"}
        assert line["idx"] == rec.id == sup.recording_id and report[rec.id]["split"] == split
        seen[rec.id] = (rec, sup, line)

    for title, (song, folder) in songs.items():
        rec, sup, line = seen[title]
        lead = folder / "lead_vocal.wav"
        wav, sr = sf.read(lead, dtype="float32")
        assert Path(rec.sources[0].source) == lead.resolve()
        assert (rec.sampling_rate, rec.num_samples) == (48000, len(wav))
        assert sup.text == line["lyrics"] == _expected_lyrics(song)
        assert sup.language == "ja" and sup.speaker  # the lead singer from meta.csv
        assert sup.custom["subset"] == song.subset and sup.custom["title"] == song.title_ja
        assert sup.custom["phonemes"].startswith("[verse] ") and sup.custom["phonemes"].endswith(" .")
        assert sup.custom["structure"] == [{"tag": "[verse]", "start": 0.0, "end": round(song.seconds, 3)}]
        assert int(report[title]["phrases"]) == 4 and report[title]["removed"] == "0"
        # the prompt: 5 s at 48 kHz cut from the song, after the lead's silent introduction
        prompt = Path(sup.custom["prompt_wav"])
        assert prompt == Path(line["prompt_wav"]) == (out / "prompts" / f"{title}.wav").resolve()
        info = sf.info(prompt)
        assert (info.samplerate, info.channels, info.frames) == (48000, 1, PROMPT_SEC * 48000)
        start = sup.custom["prompt_start"]
        assert start >= INTRO_BARS * STEPS_PER_BAR * song.step_seconds
        a = round(start * 48000)
        assert np.array_equal(sf.read(prompt, dtype="float32")[0], wav[a: a + info.frames])


def _copy_song(src: Path, dst: Path, title: str) -> Path:
    """The lead wav and the scores of a mini song, renamed to ``title``."""
    dst.mkdir(parents=True)
    shutil.copy(src / "lead_vocal.wav", dst / "lead_vocal.wav")
    for name, suffix in ((f"{src.name}_SVS.musicxml", "_SVS.musicxml"), (f"{src.name}.musicxml", ".musicxml")):
        shutil.copy(src / name, dst / f"{title}{suffix}")
    return dst


def _lead_section(text: str) -> tuple[int, int]:
    """Where the Lead Vocal part's notes are in a mini score's text."""
    part_id = text.split("<part-name>Lead Vocal</part-name>")[0].rsplit('id="', 1)[1].split('"')[0]
    start = text.index(f'<part id="{part_id}">')
    return start, text.index("</part>", start)


@pytest.fixture(scope="module")
def bad_tree(mini_songs, tmp_path_factory) -> tuple[Path, int]:
    """A jaCappella tree without meta.csv: two good songs and one of each problem; returns (root, broken line)."""
    root = tmp_path_factory.mktemp("tree") / "jaCappella"
    (song_a, dir_a), (song_b, dir_b) = _songs(mini_songs).values()
    _copy_song(dir_a, root / "popular" / "good_a", "good_a")
    _copy_song(dir_b, root / "jazz" / "good_b", "good_b")

    broken = _copy_song(dir_a, root / "popular" / "brokenxml", "brokenxml") / "brokenxml_SVS.musicxml"
    lines = broken.read_text(encoding="utf-8").splitlines()
    k = next(i for i, line in enumerate(lines) if "<note>" in line)
    lines[k] = lines[k].replace("<note>", "<note><oops></note>")  # a mismatched tag on line k + 1
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")

    scat = _copy_song(dir_b, root / "jazz" / "scatonly", "scatonly") / "scatonly_SVS.musicxml"
    text = scat.read_text(encoding="utf-8")
    a, b = _lead_section(text)
    lead = text[a:b]
    for i, chunk in enumerate(lead.split("<text>")[1:]):
        syllable = chunk.split("</text>")[0]
        lead = lead.replace(f"<text>{syllable}</text>", f"<text>{('LA', 'BA', 'DA')[i % 3]}</text>", 1)
    scat.write_text(text[:a] + lead + text[b:], encoding="utf-8")

    (_copy_song(dir_a, root / "popular" / "nolead", "nolead") / "lead_vocal.wav").unlink()

    short = _copy_song(dir_b, root / "jazz" / "tooshort", "tooshort") / "lead_vocal.wav"
    wav, sr = sf.read(short, dtype="int16")
    sf.write(short, wav[: 3 * sr], sr, subtype="PCM_16")

    silent = _copy_song(dir_a, root / "popular" / "silent", "silent") / "lead_vocal.wav"
    wav, sr = sf.read(silent, dtype="int16")
    sf.write(silent, np.zeros_like(wav), sr, subtype="PCM_16")
    return root, k + 1


TREE_ARGS = ["--prompt-sec", str(PROMPT_SEC), "--min-duration", "4", "--clean-japanese", "true",
             "--dev-songs", "0", "--test-songs", "1"]


def test_bad_songs_are_listed_with_their_reasons(bad_tree, tmp_path):
    root, broken_line = bad_tree
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--corpus-dir", str(root), "--output-dir", str(out), *TREE_ARGS]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "kept 2 of 7 songs" in first.stderr
    assert {row["id"] for row in _read_tsv(out / "songs.tsv")} == {"good_a", "good_b"}
    rejects = {row["id"]: row for row in _read_tsv(out / "rejects.tsv")}
    assert set(rejects) == {"brokenxml", "scatonly", "nolead", "tooshort", "silent"}
    assert rejects["brokenxml"]["reason"].startswith(f"broken MusicXML: line {broken_line}, column ")
    assert rejects["brokenxml"]["path"].endswith("brokenxml_SVS.musicxml")
    assert rejects["scatonly"]["reason"].startswith("no Japanese lyrics")
    assert "A x" in rejects["scatonly"]["reason"]  # what cleaning removed
    assert rejects["nolead"]["reason"] == "missing audio file: lead_vocal.wav"
    assert rejects["tooshort"]["reason"].startswith("too short: 3.00 s")
    assert rejects["silent"]["reason"].startswith("silent audio")
    for split in ("train", "test"):
        assert len(SupervisionSet.from_file(out / f"jacappella_supervisions_{split}.jsonl.gz")) == 1

    # a re-run changes nothing, not even a file's time
    before = _tree_bytes(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "songs to prepare" not in second.stderr  # every outcome came from cache/
    assert _tree_bytes(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # a lost prompt is made again, the same
    (out / "prompts" / "good_b.wav").unlink()
    assert prepare_jacappella.main(["--corpus-dir", str(root), "--output-dir", str(out), *TREE_ARGS]) == 0
    assert _tree_bytes(out) == before


def test_missing_corpus_dir_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(prepare_jacappella.main, ["--corpus-dir", str(tmp_path / "nothing"), "--output-dir",
                                           str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"error: {tmp_path / 'nothing'}: no such corpus directory")


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        prepare_jacappella.get_parser().parse_args(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--corpus-dir", "--output-dir", "--audio-type", "--musicxml-type", "--prompt-sec", "--phrase-rest",
                   "--sentence-rest", "--clean-japanese", "--dev-songs", "--test-songs", "--seed", "--allow-unknown",
                   "--min-duration", "--nj", "--prefix", "--verbose"):
        assert option in text
    assert "(default: 0.25)" in text and "(default: true)" in text
