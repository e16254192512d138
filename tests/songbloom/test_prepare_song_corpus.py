"""local/prepare_song_corpus.py: a folder of <id>.wav|flac + <id>.txt and a JSONL, on synthetic audio."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet

from shirabe.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))
import prepare_song_corpus  # noqa: E402

ARGS = ["--prompt-sec", "2", "--min-duration", "1", "--dev-songs", "0", "--test-songs", "0"]


def _song(seconds: float, sr: int, channels: int = 1, lead_in: float = 1.0, seed: int = 0) -> np.ndarray:
    """``lead_in`` s of silence, then a 'voice' (a 220 Hz tone with some noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))
    wav[t < lead_in] = 0.0
    wav = wav.astype(np.float32)
    return np.stack([wav, 0.5 * wav], axis=1) if channels == 2 else wav


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture()
def folder(tmp_path) -> Path:
    d = tmp_path / "songs"
    d.mkdir()
    sf.write(d / "plain.wav", _song(6, 48000), 48000, subtype="PCM_16")
    (d / "plain.txt").write_text("かえるのうたが\n\nきこえてくるよ\n", encoding="utf-8")
    sf.write(d / "tagged.flac", _song(5, 44100, channels=2, seed=1), 44100, subtype="PCM_16")
    (d / "tagged.txt").write_text("[intro] [intro] , [verse] そらわ、あおく。\n[chorus] ひかる LA LA", encoding="utf-8")
    (d / "noaudio.txt").write_text("うた\n", encoding="utf-8")
    sf.write(d / "nolyrics.wav", _song(6, 48000), 48000)
    sf.write(d / "hook.wav", _song(6, 48000, seed=2), 48000)
    (d / "hook.txt").write_text("[hook] ららら\n", encoding="utf-8")
    sf.write(d / "silent.wav", np.zeros(6 * 48000, dtype=np.float32), 48000)
    (d / "silent.txt").write_text("しずか\n", encoding="utf-8")
    return d


def test_folder(folder, tmp_path):
    out = tmp_path / "out"
    assert prepare_song_corpus.main(["--audio-dir", str(folder), "--output-dir", str(out), *ARGS]) == 0
    rejects = {row["id"]: row["reason"] for row in _read_tsv(out / "rejects.tsv")}
    assert rejects["noaudio"] == "missing audio file: noaudio.wav"
    assert rejects["nolyrics"].startswith("missing lyrics file: nolyrics.txt")
    assert rejects["hook"].startswith("unknown lyric symbols:") and "'[hook]'" in rejects["hook"]
    assert rejects["silent"].startswith("silent audio")
    assert len(rejects) == 4

    recordings = {r.id: r for r in RecordingSet.from_file(out / "songs_recordings_train.jsonl.gz")}
    supervisions = {s.id: s for s in SupervisionSet.from_file(out / "songs_supervisions_train.jsonl.gz")}
    assert sorted(supervisions) == ["plain", "tagged"]
    assert supervisions["plain"].text == "[verse] かえるのうたが . きこえてくるよ ."
    # Latin words stay without --clean-japanese; Japanese punctuation becomes SongBloom's
    assert supervisions["tagged"].text == "[intro] [intro] . [verse] そらわ , あおく . [chorus] ひかる LA LA ."
    assert [s["tag"] for s in supervisions["tagged"].custom["structure"]] == ["[intro]", "[intro]", "[verse]",
                                                                              "[chorus]"]
    assert supervisions["tagged"].custom["structure"][0]["start"] is None  # no times without a score

    # the 44.1 kHz stereo flac is resampled to 48 kHz, still stereo
    rec = recordings["tagged"]
    assert Path(rec.sources[0].source) == (out / "audio" / "tagged.wav").resolve()
    assert (rec.sampling_rate, rec.num_channels, rec.num_samples) == (48000, 2, 5 * 48000)
    assert supervisions["tagged"].channel == [0, 1]
    assert Path(recordings["plain"].sources[0].source) == (folder / "plain.wav").resolve()

    for sid in ("plain", "tagged"):
        info = sf.info(supervisions[sid].custom["prompt_wav"])
        assert (info.samplerate, info.frames) == (48000, 2 * 48000)
        assert supervisions[sid].custom["prompt_start"] >= 1.0  # after the 1 s lead-in
    assert sf.info(supervisions["tagged"].custom["prompt_wav"]).channels == 2
    lines = [json.loads(x) for x in (out / "songs_train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {x["idx"]: x["lyrics"] for x in lines} == {k: s.text for k, s in supervisions.items()}


def test_clean_japanese_and_allow_unknown(folder, tmp_path):
    out = tmp_path / "out"
    argv = ["--audio-dir", str(folder), "--output-dir", str(out), "--clean-japanese", "true",
            "--allow-unknown", "true", *ARGS]
    assert prepare_song_corpus.main(argv) == 0
    report = {row["id"]: row for row in _read_tsv(out / "songs.tsv")}
    assert sorted(report) == ["hook", "plain", "tagged"]
    assert report["tagged"]["removed"] == "4 (A x2, L x2)"
    assert report["hook"]["unknown"] == "[hook] x1"
    supervisions = {s.id: s for s in SupervisionSet.from_file(out / "songs_supervisions_train.jsonl.gz")}
    assert supervisions["tagged"].text == "[intro] [intro] . [verse] そらわ , あおく . [chorus] ひかる ."


def test_jsonl(tmp_path):
    d = tmp_path / "data"
    (d / "wavs").mkdir(parents=True)
    sf.write(d / "wavs" / "a.wav", _song(4, 48000), 48000)
    sf.write(d / "prompt.wav", _song(3, 24000, lead_in=0.0, seed=3), 24000)
    rows = [
        json.dumps({"idx": "a", "audio": "wavs/a.wav", "lyrics": "[verse] うたう .", "prompt_wav": "prompt.wav"},
                   ensure_ascii=False),
        "{not json",
        json.dumps({"id": "b", "wav": "wavs/a.wav"}),
        json.dumps({"idx": "a", "audio": "wavs/a.wav", "lyrics": "うた"}, ensure_ascii=False),
    ]
    (d / "songs.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert prepare_song_corpus.main(["--jsonl", str(d / "songs.jsonl"), "--output-dir", str(out), *ARGS]) == 0
    rejects = _read_tsv(out / "rejects.tsv")
    assert [(r["id"], r["reason"].split(":")[0]) for r in rejects] == [
        ("line2", "bad JSONL line"), ("b", "bad JSONL line"), ("a", "duplicate id")]
    assert rejects[1]["reason"] == "bad JSONL line: line 3: missing field lyrics"
    assert rejects[0]["path"] == f"{d / 'songs.jsonl'}:2"
    (sup,) = SupervisionSet.from_file(out / "songs_supervisions_train.jsonl.gz")
    assert sup.text == "[verse] うたう ."
    # the given prompt, at 48 kHz, its first --prompt-sec seconds
    prompt, sr = sf.read(sup.custom["prompt_wav"], dtype="float32")
    assert sr == 48000 and len(prompt) == 2 * 48000 and sup.custom["prompt_start"] is None


def test_input_errors_are_one_line(tmp_path, capsys):
    for argv, message in (
        (["--output-dir", str(tmp_path / "o")], "give either --audio-dir or --jsonl"),
        (["--audio-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path / "o")], "no such audio directory"),
        (["--jsonl", str(tmp_path / "x.jsonl"), "--output-dir", str(tmp_path / "o")], "no such JSONL file"),
    ):
        with pytest.raises(SystemExit) as e:
            run_main(prepare_song_corpus.main, argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        prepare_song_corpus.get_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--audio-dir", "--lyrics-dir", "--jsonl", "--output-dir", "--prompt-sec", "--clean-japanese",
                   "--allow-unknown", "--min-duration", "--dev-songs", "--test-songs", "--seed", "--nj", "--prefix"):
        assert option in text
    assert "(default: false)" in text
