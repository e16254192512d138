"""local/make_mini_corpus.py: arguments, one-line errors, no-op re-runs, settings guard."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "local" / "make_mini_corpus.py"
TINY = ["--parts", "speech", "--num-speakers", "2", "--sentences-per-speaker", "1", "--no-progress", "true"]


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def error_lines(result):
    assert "Traceback" not in result.stderr
    return [ln for ln in result.stderr.splitlines() if "error:" in ln]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--parts", "speech,lyrics"], "--parts: unknown part(s) lyrics"),
        (["--num-speakers", "0"], "--num-speakers: expected a positive integer, got 0"),
        (["--num-songs", "two"], "--num-songs: expected a positive integer, got 'two'"),
        (["--seed", "x"], "--seed"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, needle):
    r = run("--output-dir", tmp_path / "c", *args)
    assert r.returncode == 2
    lines = error_lines(r)
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / "c").exists()


def test_output_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("--output-dir", f, *TINY)
    assert r.returncode == 2 and "not a directory" in error_lines(r)[0]


def test_rerun_is_a_noop_and_other_settings_are_refused(tmp_path):
    out = tmp_path / "mini"
    first = run("--output-dir", out, *TINY)
    assert first.returncode == 0, first.stderr
    done = json.loads((out / "speech" / ".done").read_text())
    assert done["speakers"] == 2 and sum(done["utterances"].values()) == 2
    files = {p: p.stat().st_mtime_ns for p in (out / "speech").rglob("*") if p.is_file()}
    assert any(p.suffix == ".wav" for p in files)

    again = run("--output-dir", out, *TINY)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "speech").rglob("*") if p.is_file()} == files

    other = run("--output-dir", out, *TINY[:-2], "--seed", "1")
    assert other.returncode == 2
    assert "was made with" in error_lines(other)[0] and "--output-dir" in error_lines(other)[0]
    assert {p: p.stat().st_mtime_ns for p in (out / "speech").rglob("*") if p.is_file()} == files
