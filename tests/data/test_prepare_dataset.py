"""TSV -> lhotse manifests: good rows kept and resampled, bad rows skipped and listed."""

import subprocess
import sys

import numpy as np
import pytest
from lhotse import load_manifest

from shirabe.audio import save_audio

SR_IN = 16000


def voiced(seconds, sr=SR_IN, f0=180.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    wavs = tmp_path / "wavs"
    save_audio(wavs / "spk1_0001.wav", voiced(1.0), SR_IN)
    save_audio(wavs / "spk1_0002.flac", voiced(1.5), SR_IN)
    save_audio(wavs / "spk2_0001.wav", voiced(3.0), SR_IN)
    save_audio(wavs / "silent.wav", np.zeros(SR_IN, np.float32), SR_IN)
    (wavs / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    lines = [
        f"spk1_0001\t今日は晴れです。\t{wavs / 'spk1_0001.wav'}",
        "spk1_0002\t雨が降る。\twavs/spk1_0002.flac",  # relative to the TSV
        f"spk2_0001\t一部だけ\t{wavs / 'spk2_0001.wav'}\t0.5\t2.0",  # a segment
        f"spk2_0002\t無音\t{wavs / 'silent.wav'}",
        f"spk2_0003\t壊れた\t{wavs / 'corrupt.wav'}",
        f"spk2_0004\t\t{wavs / 'spk1_0001.wav'}",  # empty text
        f"spk1_0001\t重複\t{wavs / 'spk1_0001.wav'}",  # duplicate id
        "only\ttwo",
        f"spk2_0005\t範囲外\t{wavs / 'spk2_0001.wav'}\t2.0\t9.0",
        f"spk2_0006\t見つからない\t{wavs / 'missing.wav'}",
        "",
    ]
    tsv = tmp_path / "train.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tsv


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "zipvoice.bin.prepare_dataset", "--no-progress", "true", *map(str, args)],
        capture_output=True,
        text=True,
    )


def test_good_rows_become_cuts_and_bad_rows_are_listed(corpus, tmp_path):
    out = tmp_path / "manifests"
    r = run("--input", corpus, "--dataset", "mini", "--subset", "train", "--output-dir", out, "--num-jobs", 2)
    assert r.returncode == 0, r.stderr
    cuts = load_manifest(out / "mini_cuts_train.jsonl.gz")
    by_id = {c.supervisions[0].id: c for c in cuts}
    assert sorted(by_id) == ["spk1_0001", "spk1_0002", "spk2_0001"]
    for cut in cuts:
        assert cut.sampling_rate == 24000 and len(cut.supervisions) == 1
        audio = cut.load_audio()
        assert audio.shape[1] == pytest.approx(cut.duration * 24000, abs=2)
    assert by_id["spk2_0001"].duration == pytest.approx(1.5, abs=1e-3)
    assert by_id["spk1_0002"].supervisions[0].text == "雨が降る。"
    assert by_id["spk1_0001"].supervisions[0].speaker == "spk1"
    assert len(load_manifest(out / "mini_recordings_train.jsonl.gz")) == 3
    assert len(load_manifest(out / "mini_supervisions_train.jsonl.gz")) == 3

    rejects = (out / "mini_rejects_train.tsv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "source\tline\tutt_id\treason"
    reasons = {line.split("\t")[2] + "@" + line.split("\t")[1]: line.split("\t")[3] for line in rejects[1:]}
    assert reasons["spk2_0002@4"] == "silent audio"
    assert reasons["spk2_0003@5"].startswith("unreadable audio")
    assert reasons["spk2_0004@6"] == "empty text"
    assert reasons["spk1_0001@7"] == "duplicate utt_id"
    assert reasons["only@8"].startswith("bad field count")
    assert reasons["spk2_0005@9"].startswith("segment past end")
    assert reasons["spk2_0006@10"].startswith("unreadable audio")
    assert len(rejects) - 1 == 7
    assert "rejected 7" in r.stderr


def test_nothing_usable_or_missing_tsv_is_a_one_line_error(tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n", encoding="utf-8")
    r = run("--input", empty, "--output-dir", tmp_path / "m")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if "error:" in ln] == [r.stderr.strip().splitlines()[-1]]
    assert "no usable utterances" in r.stderr.strip().splitlines()[-1]
    r = run("--input", tmp_path / "nope.tsv", "--output-dir", tmp_path / "m")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"prepare_dataset.py: error: {tmp_path / 'nope.tsv'}: no such TSV file"
    ]
