"""The recognizer's binaries: help, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shirabe.asr.model import ModelConfig, PhoneCTCModel
from shirabe.asr.phones import phone_table
from shirabe.asr.recognizer import save_recognizer
from shirabe.bin.score_phones import main as score_main
from shirabe.bin.train_phone_recognizer import main as train_main
from shirabe.cli import run_main


def _run(main, argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        run_main(main, argv)
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize(("module", "options"), [
    ("shirabe.bin.train_phone_recognizer", ["--corpus-dir", "--num-epochs", "--seed", "--device", "--num-threads",
                                            "--spec-augment BOOL", "(default: 30)"]),
    ("shirabe.bin.score_phones", ["--model-dir", "--wav", "--text", "--tsv", "--format", "--device",
                                  "(default: tsv)"]),
])
def test_help(module, options):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for opt in options:
        assert opt in out.stdout, opt


def test_missing_model_dir(tmp_path, capsys):
    code, err = _run(score_main, ["--model-dir", str(tmp_path / "nope"), "--wav", "a.wav", "--text", "あ"], capsys)
    assert code == 2
    assert err.strip().endswith(f"error: {tmp_path / 'nope'}: no such model directory")
    assert len(err.strip().splitlines()) == 1


def test_unknown_phones(tmp_path, capsys):
    model = PhoneCTCModel(ModelConfig(num_classes=3, conv_channels=4, hidden_size=4, num_layers=1))
    save_recognizer(model, phone_table(["a", "k"]), tmp_path / "m")
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"")  # never read: the texts are checked first
    tsv = tmp_path / "list.tsv"
    tsv.write_text(f"u1\tかか\t{wav}\nu2\tさか\t{wav}\n", encoding="utf-8")
    code, err = _run(score_main, ["--model-dir", str(tmp_path / "m"), "--tsv", str(tsv)], capsys)
    assert code == 2
    assert err.strip().endswith(f"error: {tsv}:2: phone(s) not in {tmp_path / 'm' / 'phones.txt'}: 's'")
    assert len(err.strip().splitlines()) == 1


def test_score_needs_an_input(tmp_path, capsys):
    code, err = _run(score_main, ["--model-dir", str(tmp_path), "--wav", "a.wav"], capsys)
    assert code == 2 and "give --tsv, or both --wav and --text" in err


def test_train_errors(tmp_path, capsys):
    code, err = _run(train_main, ["--corpus-dir", str(tmp_path / "none"), "--exp-dir", str(tmp_path / "e")], capsys)
    assert code == 2 and err.strip().endswith(f"error: {tmp_path / 'none'}: no such corpus directory")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.tsv").write_text("u1\tあ\n", encoding="utf-8")
    code, err = _run(train_main, ["--corpus-dir", str(tmp_path / "c"), "--exp-dir", str(tmp_path / "e")], capsys)
    assert code == 2
    assert err.strip().endswith(f"error: {tmp_path / 'c' / 'train.tsv'}:1: expected 'utt_id<TAB>text<TAB>wav', "
                                "got 2 field(s)")
