"""utils/run.pl: local execution with the Kaldi calling convention."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

FOOTER = re.compile(
    r"# Accounting: time=\d+ threads=(\d+)\n# Ended \(code (\d+)\) at .+, elapsed time \d+ seconds\n$"
)


def footer(text: str) -> tuple[int, int]:
    """(threads, code) from the end of a run.pl log."""
    match = FOOTER.search(text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


def test_array_job_writes_one_log_per_task(run_pl, tmp_path):
    result = run_pl("JOB=1:3", "exp/log/x.JOB.log", "echo", "JOB")
    assert result.returncode == 0, result.stderr
    for task in (1, 2, 3):
        lines = (tmp_path / f"exp/log/x.{task}.log").read_text().splitlines()
        assert lines[0] == f"# echo {task}"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == str(task)
        assert footer("\n".join(lines) + "\n") == (1, 0)
    assert not (tmp_path / "exp/log/x.4.log").exists()


def test_any_identifier_works_as_the_task_variable(run_pl, tmp_path):
    result = run_pl("N=2:3", "log/n.N.log", "echo", "part-N")
    assert result.returncode == 0, result.stderr
    assert "part-3" in (tmp_path / "log/n.3.log").read_text()
    assert not (tmp_path / "log/n.1.log").exists()


def test_single_task_status_is_propagated(run_pl, tmp_path):
    result = run_pl("log/one.log", "exit 3")
    assert result.returncode == 1
    assert "1 / 1 failed, log is in log/one.log" in result.stderr
    assert footer((tmp_path / "log/one.log").read_text())[1] == 3


def test_failing_task_makes_the_whole_call_fail(run_pl, tmp_path):
    result = run_pl("JOB=1:3", "exp/log/x.JOB.log", "test", "JOB", "-ne", "2")
    assert result.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in exp/log/x.2.log" in result.stderr
    assert footer((tmp_path / "exp/log/x.2.log").read_text())[1] == 1
    # The other tasks still ran to completion.
    assert footer((tmp_path / "exp/log/x.1.log").read_text())[1] == 0
    assert footer((tmp_path / "exp/log/x.3.log").read_text())[1] == 0


def _markers(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("limit", [["--max-jobs-run", "1"], ["-tc", "1"]])
def test_max_jobs_run_one_serialises_tasks(run_pl, tmp_path, limit):
    task = "echo start JOB >> marks; sleep 0.15; echo end JOB >> marks"
    result = run_pl(*limit, "JOB=1:3", "log/s.JOB.log", task)
    assert result.returncode == 0, result.stderr
    marks = _markers(tmp_path / "marks")
    assert len(marks) == 6
    for i in range(0, 6, 2):  # every start is directly followed by the end of the same task
        assert marks[i][0] == "start" and marks[i + 1] == ("end", marks[i][1])


def test_tasks_overlap_without_a_limit(run_pl, tmp_path):
    task = "echo start JOB >> marks; sleep 0.5; echo end JOB >> marks"
    result = run_pl("--max-jobs-run", "3", "JOB=1:3", "log/p.JOB.log", task)
    assert result.returncode == 0, result.stderr
    marks = _markers(tmp_path / "marks")
    assert [kind for kind, _ in marks[:2]] == ["start", "start"]


def test_pick_failed_reruns_only_failed_tasks(run_pl, tmp_path):
    for task in (1, 3):
        (tmp_path / f"ok.{task}").touch()
    task = "echo ran JOB >> runs; test -e ok.JOB"
    first = run_pl("JOB=1:3", "log/t.JOB.log", task)
    assert first.returncode == 1
    assert "log is in log/t.2.log" in first.stderr
    kept = (tmp_path / "log/t.1.log").read_text()

    (tmp_path / "ok.2").touch()
    second = run_pl("--pick", "failed", "JOB=1:3", "log/t.JOB.log", task)
    assert second.returncode == 0, second.stderr
    runs = (tmp_path / "runs").read_text().split("\n")
    assert sorted(runs[:3]) == ["ran 1", "ran 2", "ran 3"]
    assert runs[3:] == ["ran 2", ""]
    assert (tmp_path / "log/t.1.log").read_text() == kept
    assert footer((tmp_path / "log/t.2.log").read_text())[1] == 0


def test_pick_incomplete_reruns_only_unfinished_tasks(run_pl, tmp_path):
    task = "echo ran JOB >> runs; test JOB -ne 1"
    assert run_pl("JOB=1:3", "log/t.JOB.log", task).returncode == 1
    # Task 3 was interrupted: its log has no "# Ended" line.
    log3 = tmp_path / "log/t.3.log"
    log3.write_text("\n".join(log3.read_text().splitlines()[:2]) + "\n")
    (tmp_path / "runs").unlink()
    result = run_pl("--pick", "incomplete", "JOB=1:3", "log/t.JOB.log", task)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs").read_text() == "ran 3\n"  # not task 1, which failed but ended
    assert footer(log3.read_text())[1] == 0


def test_escaped_pipe_argument_builds_a_pipeline(run_pl, tmp_path):
    # As typed in a shell: run.pl log/p.log echo hello \| tr a-z A-Z
    result = run_pl("log/p.log", "echo", "hello", "|", "tr", "a-z", "A-Z")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log/p.log").read_text().splitlines()[2] == "HELLO"


def test_single_string_command_with_escaped_pipe(run_pl, tmp_path):
    result = run_pl("log/p.log", "echo a \\| tr a b")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log/p.log").read_text().splitlines()[2] == "b"


def test_redirection_operator_argument(run_pl, tmp_path):
    result = run_pl("JOB=1:2", "log/r.JOB.log", "echo", "hi JOB", ">", "out.JOB.txt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.2.txt").read_text() == "hi 2\n"


def test_arguments_with_spaces_and_metacharacters_are_quoted(run_pl, tmp_path):
    result = run_pl("log/q.log", "printf", "%s\\n", "a  b", "$HOME;x", "*", "it's")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "log/q.log").read_text().splitlines()
    assert lines[2:6] == ["a  b", "$HOME;x", "*", "it's"]


def test_array_job_needs_the_variable_in_the_log_name(run_pl, tmp_path):
    result = run_pl("JOB=1:3", "log/same.log", "touch", "ran.JOB")
    assert result.returncode == 1
    assert "does not contain JOB" in result.stderr
    assert not list(tmp_path.glob("ran.*"))


def test_task_indices_start_at_one(run_pl):
    result = run_pl("JOB=0:2", "log/x.JOB.log", "true")
    assert result.returncode == 1
    assert "start at 1" in result.stderr


def test_equals_form_options_are_rejected(run_pl):
    result = run_pl("--max-jobs-run=2", "log/x.log", "true")
    assert result.returncode == 1
    assert "--name value" in result.stderr


def test_queue_options_are_ignored(run_pl, tmp_path):
    result = run_pl(
        "--mem", "4G", "--gpu", "0", "--time", "1:00:00", "--config", "conf/none.conf",
        "-pe", "smp", "3", "-l", "hostname=b1", "-q", "g.q", "-V",
        "JOB=1:2", "log/i.JOB.log", "echo", "ok",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert footer((tmp_path / "log/i.2.log").read_text()) == (3, 0)


def test_num_threads_is_recorded(run_pl, tmp_path):
    assert run_pl("--num-threads", "4", "log/n.log", "true").returncode == 0
    assert footer((tmp_path / "log/n.log").read_text())[0] == 4


def test_bad_pick_value(run_pl):
    result = run_pl("--pick", "some", "log/x.log", "true")
    assert result.returncode == 1
    assert "--pick" in result.stderr


def test_missing_command_is_an_error(run_pl):
    result = run_pl("JOB=1:2", "log/x.JOB.log")
    assert result.returncode == 1
    assert "expected a log file and a command" in result.stderr


def test_help_lists_every_option(run_pl):
    result = run_pl("--help")
    assert result.returncode == 0
    for option in (
        "--max-jobs-run",
        "-tc",
        "--pick",
        "--gpu",
        "--num-threads",
        "--mem",
        "--config",
    ):
        assert option in result.stdout
    assert "default" in result.stdout


def test_sigterm_stops_the_tasks(tmp_path):
    run_pl = Path(__file__).resolve().parents[2] / "utils" / "run.pl"
    proc = subprocess.Popen(
        [str(run_pl), "--max-jobs-run", "1", "JOB=1:2", "log/w.JOB.log", "sleep", "30"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    log1 = tmp_path / "log/w.1.log"
    deadline = time.monotonic() + 10
    while not log1.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM
    assert footer(log1.read_text())[1] == 128 + signal.SIGTERM
    assert not (tmp_path / "log/w.2.log").exists()  # never started
    assert "interrupted" in err


def test_unwritable_log_directory_is_reported_once(run_pl, tmp_path):
    (tmp_path / "log").write_text("a file, not a directory\n")
    result = run_pl("JOB=1:3", "log/x.JOB.log", "true")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "log/x.1.log" in result.stderr
