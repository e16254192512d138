"""local/prepare_moe_speech_plus.py on a small corpus laid out like moe-speech-plus (zips of wav+json)."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from shirabe.audio import save_audio

SCRIPT = Path(__file__).resolve().parents[2] / "local" / "prepare_moe_speech_plus.py"


def clip_meta(text, other=None, duration=1.0, mos=3.5):
    return {"anime_whisper_transcription": text, "parakeet_jp_transcription": other if other is not None else text,
            "duration": duration, "speechMOS": mos}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "moe"
    root.mkdir()
    tone = (0.2 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 200)).astype(np.float32)
    for s in range(6):
        name = f"chara{s}"
        stage = tmp_path / "stage" / name
        stage.mkdir(parents=True)
        for k in range(10):
            stem = f"{name}_{k:03d}"
            save_audio(stage / f"{stem}.wav", tone, 44100)
            (stage / f"{stem}.json").write_text(json.dumps(clip_meta(f"セリフ{k}です。")), encoding="utf-8")
        with zipfile.ZipFile(root / f"{name}.zip", "w") as z:
            for f in sorted(stage.iterdir()):
                z.write(f, f"{name}/{f.name}" if s % 2 else f.name)  # both layouts: flat, and one directory down
    # problem clips in chara0
    bad = tmp_path / "stage" / "chara0"
    (bad / "chara0_100.json").write_text("{not json", encoding="utf-8")
    save_audio(bad / "chara0_100.wav", tone, 44100)
    (bad / "chara0_101.json").write_text(json.dumps(clip_meta("全然違う", other="まったくちがうもの")), encoding="utf-8")
    save_audio(bad / "chara0_101.wav", tone, 44100)
    (bad / "chara0_102.json").write_text(json.dumps(clip_meta("長すぎる", duration=45.0)), encoding="utf-8")
    save_audio(bad / "chara0_102.wav", tone, 44100)
    (bad / "chara0_103.json").write_text(json.dumps(clip_meta("  ")), encoding="utf-8")
    save_audio(bad / "chara0_103.wav", tone, 44100)
    (bad / "chara0_104.json").write_text(json.dumps(clip_meta("音がない")), encoding="utf-8")
    with zipfile.ZipFile(root / "chara0.zip", "a") as z:
        for k in range(100, 105):
            for ext in (".json", ".wav"):
                f = bad / f"chara0_{k}{ext}"
                if f.exists():
                    z.write(f, f.name)
    return root


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def rows(path):
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_splits_speakers_and_rejects(corpus, tmp_path):
    out = tmp_path / "out"
    r = run("--corpus-dir", corpus, "--output-dir", out, "--num-test-speakers", 2, "--dev-ratio", 0.2, "--max-cer", 0.3)
    assert r.returncode == 0, r.stderr
    train, dev, test = rows(out / "train.tsv"), rows(out / "dev.tsv"), rows(out / "test.tsv")
    assert len(train) + len(dev) + len(test) == 60
    speaker = lambda utt: utt.split("_", 1)[0]  # noqa: E731
    test_speakers = {speaker(u) for u, *_ in test}
    assert len(test_speakers) == 2 and not test_speakers & {speaker(u) for u, *_ in train + dev}
    assert dev and train
    for utt, text, wav in train + dev + test:
        assert Path(wav).is_file() and Path(wav).name.startswith(speaker(utt)) and text.startswith("セリフ")
        assert utt.count("_") == 1  # the speaker is the id up to its only underscore
    reasons = {r[1].rsplit("/", 1)[-1]: r[2] for r in rows(out / "rejects.tsv")[1:]}
    assert reasons == {"chara0_100.json": "unreadable json", "chara0_101.json": "transcripts disagree",
                       "chara0_102.json": "duration out of range", "chara0_103.json": "empty transcript",
                       "chara0_104.json": "no wav beside the json"}
    assert (corpus / "extracted" / "chara3.complete").is_file()


def test_same_split_on_rerun_and_interrupted_unpack_is_redone(corpus, tmp_path):
    assert run("--corpus-dir", corpus, "--output-dir", tmp_path / "a", "--num-test-speakers", 1).returncode == 0
    (corpus / "extracted" / "chara1.complete").unlink()  # as if killed while unpacking
    next((corpus / "extracted" / "chara1").rglob("*.wav")).unlink()
    r = run("--corpus-dir", corpus, "--output-dir", tmp_path / "b", "--num-test-speakers", 1)
    assert r.returncode == 0, r.stderr
    for split in ("train", "dev", "test"):
        assert (tmp_path / "a" / f"{split}.tsv").read_text() == (tmp_path / "b" / f"{split}.tsv").read_text()


def test_bad_input_is_one_line(tmp_path):
    r = run("--corpus-dir", tmp_path / "none", "--output-dir", tmp_path / "o")
    assert r.returncode == 2 and "no such directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.zip").write_bytes(b"not a zip")
    r = run("--corpus-dir", tmp_path / "c", "--output-dir", tmp_path / "o")
    assert r.returncode == 2 and "x.zip: not a readable zip" in r.stderr
