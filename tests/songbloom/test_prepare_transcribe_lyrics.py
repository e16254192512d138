"""local/transcribe_lyrics.py with a tiny random-weight Whisper: the mechanics (files, one line per chunk,
silent chunks, resuming, errors), not the words."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shirabe.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))
sys.path.insert(0, str(ROOT / "tests" / "eval"))
import transcribe_lyrics  # noqa: E402
from whisper_testlib import build_tiny_whisper  # noqa: E402


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_torch_thread):
    yield


def _noise(seconds: float, sr: int, seed: int) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def test_one_line_per_chunk_and_resume(tiny_whisper, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "x.wav", _noise(2.5, 16000, 0), 16000)  # chunks of 1 s: 1 + 1 + 0.5
    # 24 kHz stereo flac, silent for 1.5 s (more than the first chunk, whatever resampling smears)
    y = np.concatenate([np.zeros(36000, dtype=np.float32), _noise(1.0, 24000, 1)])
    sf.write(audio / "y.flac", np.stack([y, y], axis=1), 24000)
    out = tmp_path / "lyrics"
    argv = ["--model-dir", str(tiny_whisper), "--audio-dir", str(audio), "--output-dir", str(out),
            "--chunk-sec", "1", "--device", "cpu", "--max-new-tokens", "8"]
    assert transcribe_lyrics.main(argv) == 0
    x_text = (out / "x.txt").read_text(encoding="utf-8")
    y_text = (out / "y.txt").read_text(encoding="utf-8")
    assert x_text.endswith("\n") and len(x_text.split("\n")) == 3 + 1
    assert len(y_text.split("\n")) == 3 + 1
    assert y_text.split("\n")[0] == ""  # the silent chunk is not sent to Whisper

    # a re-run keeps finished files and writes the missing one again, the same
    stamp = (out / "x.txt").stat().st_mtime_ns
    (out / "y.txt").unlink()
    assert transcribe_lyrics.main(argv) == 0
    assert (out / "x.txt").stat().st_mtime_ns == stamp
    assert (out / "y.txt").read_text(encoding="utf-8") == y_text


def test_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "model").mkdir()
    for argv, message in (
        (["--model-dir", str(tmp_path / "nothing"), "--audio-dir", str(tmp_path / "audio")],
         "no such Whisper model directory"),
        (["--model-dir", str(tmp_path / "model"), "--audio-dir", str(tmp_path / "none")], "no such audio directory"),
        (["--model-dir", str(tmp_path / "model"), "--audio-dir", str(tmp_path / "audio"), "--chunk-sec", "40"],
         "--chunk-sec must be in (0, 30]"),
        (["--model-dir", str(tmp_path / "model"), "--audio-dir", str(tmp_path / "audio"), "--device", "cpu"],
         "not a Whisper model directory"),
    ):
        with pytest.raises(SystemExit) as e:
            run_main(transcribe_lyrics.main, [*argv, "--output-dir", str(tmp_path / "out")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        transcribe_lyrics.get_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--model-dir", "--audio-dir", "--output-dir", "--chunk-sec", "--device", "--max-new-tokens",
                   "--num-threads", "--verbose"):
        assert option in text
    assert "(default: 30.0)" in text
