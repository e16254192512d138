"""songbloom.eval.sung_corpus and songbloom.bin.prepare_sung_phone_corpus: phrase clips of the lead vocal at the
score's rests, a song split, rejects, and the phone recognizer's training binary reading the result unchanged."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shirabe.cli import run_main
from songbloom.bin.prepare_sung_phone_corpus import main as prepare_main
from songbloom.data.musicxml import read_score
from songbloom.data.phrases import Syllable
from songbloom.eval.sung_corpus import clip_bounds, group_phrases, score_phrases

ROOT = Path(__file__).resolve().parents[2]
SCORE = ROOT / "tests" / "songbloom" / "data" / "lead_and_harmony.musicxml"
# the lead of SCORE (see its header comment), in seconds: phrases split at rests of 0.5, 0.75 and 1.0 s;
# the 16th rest (0.125 s) inside the first phrase and the section mark at 6.0 s do not split
PHRASES = [("かえるのうた", 0.0, 3.0), ("が", 3.5, 4.0), ("きこえてぐわ", 4.75, 6.5), ("ぐわ", 7.5, 8.0)]
# widened by 0.15 s, never past the middle of a rest nor outside a 9 s recording
CLIPS = [(0.0, 3.15), (3.35, 4.15), (4.6, 6.65), (7.35, 8.15)]


def test_syllables_group_at_rests_of_at_least_phrase_rest():
    sylls = [Syllable(0.0, 0.5, "か"), Syllable(0.6, 1.0, "え"), Syllable(1.25, 1.8, "る"), Syllable(1.9, 2.0, "の"),
             Syllable(2.6, 3.0, "う")]
    groups = group_phrases(sylls, phrase_rest=0.25)
    assert ["".join(s.text for s in g) for g in groups] == ["かえ", "るの", "う"]  # a rest of exactly 0.25 s splits
    assert len(group_phrases(sylls, phrase_rest=0.7)) == 1


def test_clips_are_padded_but_stop_halfway_to_the_neighbour():
    spans = [(1.0, 2.0), (2.4, 3.0), (5.0, 6.0)]
    np.testing.assert_allclose(clip_bounds(spans, 0.3, 6.1), [(0.7, 2.2), (2.2, 3.3), (4.7, 6.1)])
    np.testing.assert_allclose(clip_bounds([(0.1, 1.0)], 0.3, 10.0), [(0.0, 1.3)])


def test_score_phrases_of_the_lead_part():
    phrases = score_phrases(read_score(SCORE), 9.0)  # the soprano's scat (LA BA DA) is not read
    assert [p.text for p in phrases] == [text for text, _, _ in PHRASES]
    np.testing.assert_allclose([(p.start, p.end) for p in phrases], [(a, b) for _, a, b in PHRASES])
    np.testing.assert_allclose([(p.clip_start, p.clip_end) for p in phrases], CLIPS)
    assert [p.syllables for p in phrases] == [6, 1, 6, 2]
    last = score_phrases(read_score(SCORE), 7.8)[-1]  # a recording ending inside the last phrase
    assert (last.clip_start, last.clip_end) == pytest.approx((7.35, 7.8))


def write_song(root: Path, title: str, wav: np.ndarray | None, score_text: str | None) -> Path:
    d = root / "pop" / title
    d.mkdir(parents=True)
    if wav is not None:
        sf.write(d / "lead_vocal.wav", wav, 48000)
    if score_text is not None:
        (d / f"{title}_SVS.musicxml").write_text(score_text, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("songs")
    t = np.arange(9 * 48000) / 48000
    sung = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    score = SCORE.read_text(encoding="utf-8")
    write_song(root, "songA", sung, score)
    silent_ga = sung.copy()
    silent_ga[int(3.3 * 48000):int(4.2 * 48000)] = 0.0  # the second phrase's clip is silent
    write_song(root, "songB", silent_ga, score)
    write_song(root, "songC", None, score)  # no audio
    write_song(root, "songD", sung, score.replace("</score-partwise>", ""))  # truncated XML
    out = tmp_path_factory.mktemp("sung") / "corpus"
    r = subprocess.run([sys.executable, "-m", "songbloom.bin.prepare_sung_phone_corpus", "--songs-dir", str(root),
                        "--output-dir", str(out), "--test-songs", "1", "--dev-songs", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return root, out


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_clips_split_by_song_with_their_kana(corpus):
    _, out = corpus
    train, dev, test = (read_tsv(out / f"{s}.tsv") for s in ("train", "dev", "test"))
    assert dev == []
    songs = {split: {row[0].rsplit("_p", 1)[0] for row in rows} for split, rows in (("train", train), ("test", test))}
    assert sorted(songs["train"] | songs["test"]) == ["songA", "songB"]
    assert len(songs["train"]) == len(songs["test"]) == 1  # whole songs, never split
    rows = {row[0]: row for row in train + test}
    assert sorted(rows) == ["songA_p000", "songA_p001", "songA_p002", "songA_p003", "songB_p000", "songB_p002",
                            "songB_p003"]  # songB_p001 is silent
    assert [rows[f"songA_p{k:03d}"][1] for k in range(4)] == [text for text, _, _ in PHRASES]
    for k, (start, end) in enumerate(CLIPS):
        wav, sr = sf.read(out / rows[f"songA_p{k:03d}"][2])
        assert sr == 24000 and wav.ndim == 1
        assert len(wav) == pytest.approx((end - start) * 24000, abs=2)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["splits"]["test"]["clips"] == len(test) and summary["rejected"] == 3


def test_rejects_name_song_and_clip_problems(corpus):
    _, out = corpus
    with (out / "rejects.tsv").open(encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f, delimiter="\t")}
    assert sorted(rows) == ["songB_p001", "songC", "songD"]
    assert rows["songB_p001"]["reason"].startswith("silent audio")
    assert "phrase 1 (3.50-4.00 s)" in rows["songB_p001"]["path"]
    assert rows["songC"]["reason"] == "missing audio file"
    assert rows["songD"]["reason"].startswith("broken MusicXML: line")


def test_phone_recognizer_trains_on_the_corpus_unchanged(corpus, tmp_path):
    _, out = corpus
    exp = tmp_path / "exp"
    r = subprocess.run([sys.executable, "-m", "shirabe.bin.train_phone_recognizer", "--corpus-dir", str(out),
                        "--exp-dir", str(exp), "--num-epochs", "1", "--batch-size", "2", "--conv-channels", "8",
                        "--conv-blocks", "1", "--hidden-size", "8", "--num-layers", "1", "--tensorboard", "false",
                        "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((exp / "train-summary.json").read_text(encoding="utf-8"))
    assert summary["train_utterances"] == len(read_tsv(out / "train.tsv"))
    assert (exp / "model.pt").is_file()


def test_no_usable_song_is_a_one_line_error(tmp_path, capsys):
    root = tmp_path / "songs"
    write_song(root, "songC", None, SCORE.read_text(encoding="utf-8"))
    with pytest.raises(SystemExit) as exit_info:
        run_main(prepare_main, ["--songs-dir", str(root), "--output-dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith(f": error: {root}: no usable song (1 listed; see {tmp_path / 'out' / 'rejects.tsv'})")
