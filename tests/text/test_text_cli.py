"""shirabe.bin.g2p and zipvoice.bin.prepare_token_file, run as users run them."""

import subprocess
import sys
from pathlib import Path

import pytest

from shirabe.bin import g2p
from shirabe.cli import run_main
from shirabe.text import TokenTable

ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, input=stdin)


def call_g2p(capsys, *argv):
    """Run the g2p binary's main in this process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        run_main(g2p.main, list(argv))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_g2p_one_line_per_input_line(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("箸が折れた。\n雨？\n{明日|あす}\n", encoding="utf-8")
    res = run("shirabe.bin.g2p", "--input", str(src))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "^ h a ] sh i g a # o ] r e t a $",
        "^ a ] m e ?",
        "^ a [ s u $",
    ]
    res = run("shirabe.bin.g2p", "--scheme", "kana", "--input", "-", stdin="東京\n切手\n")
    assert res.stdout == "ト ー キョ ー\nキ ッ テ\n"


def test_g2p_reads_standard_input_without_text_or_input():
    res = run("shirabe.bin.g2p", stdin="文\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "^ b u ] N $\n"
    res = run("shirabe.bin.g2p", "--scheme", "kana", stdin="東京\n切手\n")
    assert res.returncode == 0 and res.stdout == "ト ー キョ ー\nキ ッ テ\n"
    res = run("shirabe.bin.g2p", stdin="")
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "empty input" in res.stderr
    res = run("shirabe.bin.g2p", stdin="東京\n\n切手\n")
    assert res.returncode == 2 and "line 2 is empty" in res.stderr


def test_g2p_arguments_and_options(capsys, tmp_path):
    code, out, _ = call_g2p(capsys, "--scheme", "hl", "箸が", "橋が")
    assert code == 0 and out == "h a [H] sh i [L] g a [L]\nh a [H] sh i [H] g a [L]\n"
    code, out, _ = call_g2p(capsys, "--scheme", "phone", "--lowercase-devoiced", "true", "です")
    assert out == "d e s u\n"
    code, out, _ = call_g2p(capsys, "--scheme", "phone", "--lowercase-devoiced", "0", "です")
    assert out == "d e s U\n"
    csv = tmp_path / "words.csv"
    csv.write_text("箸,,,1,名詞,一般,*,*,*,*,箸,ハシ,ハシ,2/2,*\n", encoding="utf-8")
    code, out, _ = call_g2p(capsys, "--user-dict", str(csv), "--cache-dir", str(tmp_path / "c"), "箸が")
    assert code == 0 and out == "^ h a [ sh i ] g a $\n"
    table = tmp_path / "phone.txt"
    TokenTable.from_tokens(["h", "a", "sh", "i", "g"]).write(table)
    code, out, err = call_g2p(capsys, "--token-file", str(table), "箸が")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "'^'" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["  "], "empty input"),
        (["--input", "/nonexistent/lines.txt"], "/nonexistent/lines.txt: cannot read"),
        (["！！"], "nothing to pronounce"),
        (["箸が", "😀"], "text 2: nothing to pronounce"),
        (["--scheme", "romaji", "箸が"], "unknown scheme 'romaji'"),
        (["{漢字|kanji}"], "reading must be hiragana or katakana"),
        (["--user-dict", "/nonexistent/words.csv", "箸が"], "no such user dictionary"),
    ],
)
def test_g2p_errors_are_one_line_exit_2(capsys, argv, message):
    code, out, err = call_g2p(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_g2p_error_from_a_real_process(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    for args in (["--input", str(empty)], ["！！"], ["--scheme", "nope", "あ"]):
        res = run("shirabe.bin.g2p", *args)
        assert res.returncode == 2 and res.stdout == ""
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_prepare_token_file(tmp_path):
    out = tmp_path / "tokens.txt"
    res = run("zipvoice.bin.prepare_token_file", "--tokenizer", "japanese", "--scheme", "hl", "--output", str(out))
    assert res.returncode == 0, res.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[:5] == ["_\t0", "[H]\t1", "[L]\t2", "|\t3", "[Q]\t4"]
    assert len(lines) == 50  # _, 4 marks, 45 phonemes

    base = tmp_path / "base.txt"
    base.write_text("_\t0\n^\t1\n$\t2\n \t3\na\t4\nk\t5\n", encoding="utf-8")
    ext = tmp_path / "ext.txt"
    res = run("zipvoice.bin.prepare_token_file", "--tokenizer", "japanese", "--scheme", "prosody",
              "--extend", str(base), "--output", str(ext))
    assert res.returncode == 0, res.stderr
    lines = ext.read_text(encoding="utf-8").splitlines()
    assert lines[:6] == ["_\t0", "^\t1", "$\t2", " \t3", "a\t4", "k\t5"]
    assert lines[6:9] == ["?\t6", "#\t7", "[\t8"]
    assert len(lines) == 6 + 4 + 43  # kept + new marks (? # [ ]) + phonemes other than a, k


def test_prepare_token_file_errors_and_help(tmp_path):
    res = run("zipvoice.bin.prepare_token_file", "--scheme", "nope", "--output", str(tmp_path / "t.txt"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    res = run("zipvoice.bin.prepare_token_file", "--extend", str(tmp_path / "missing.txt"),
              "--output", str(tmp_path / "t.txt"))
    assert res.returncode == 2 and "no such token file" in res.stderr
    res = run("zipvoice.bin.prepare_token_file", "--help")
    for option in ("--tokenizer", "--scheme", "--lowercase-devoiced", "--extend", "--output"):
        assert option in res.stdout
    assert "(default: prosody)" in res.stdout and "(default: japanese)" in res.stdout
