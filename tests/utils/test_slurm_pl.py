"""utils/slurm.pl against stand-in sbatch/squeue/scancel scripts that really run the array tasks."""

from __future__ import annotations

import signal
import time


def test_array_job_runs_every_task(cluster):
    result = cluster.run("slurm.pl", "JOB=2:4", "exp/log/x.JOB.log", "echo", "task", "JOB")
    assert result.returncode == 0, result.stderr
    for task in (2, 3, 4):
        lines = cluster.log(f"exp/log/x.{task}.log").splitlines()
        assert lines[0] == f"# echo task {task}"
        assert lines[2] == f"task {task}"
        assert cluster.finished(f"exp/log/x.{task}.log") == (1, 0)
    assert not (cluster.workdir / "exp/log/x.1.log").exists()
    assert cluster.passed("sbatch", "--array=2-4")
    assert "${SLURM_ARRAY_TASK_ID}" in (cluster.workdir / "exp/log/q/x.sh").read_text()


def test_failures_propagate(cluster):
    result = cluster.run("slurm.pl", "JOB=1:3", "exp/log/x.JOB.log", "test JOB -lt 2")
    assert result.returncode == 1
    assert "slurm.pl: 2 / 3 failed, log is in exp/log/x.2.log" in result.stderr
    assert "exp/log/x.3.log" in result.stderr
    assert cluster.finished("exp/log/x.1.log")[1] == 0


def test_options_are_mapped_through_the_builtin_config(cluster):
    result = cluster.run(
        "slurm.pl", "--mem", "2G", "--gpu", "1", "--time", "1:00:00", "--num-threads", "2",
        "--max-jobs-run", "2", "JOB=1:3", "exp/log/m.JOB.log", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert cluster.argv("sbatch")[:2] == ["--export=PATH", "--ntasks-per-node=1"]
    assert cluster.passed("sbatch", "--mem-per-cpu", "2G")
    assert cluster.passed("sbatch", "-p", "gpu", "--gres=gpu:1", "--time", "4:0:0")
    assert cluster.passed("sbatch", "--time", "1:00:00")
    assert cluster.passed("sbatch", "--cpus-per-task", "2")
    assert cluster.passed("sbatch", "--array=1-3%2")
    assert not cluster.passed("sbatch", "-p", "shared")
    assert cluster.finished("exp/log/m.3.log")[0] == 2


def test_defaults_for_a_single_job(cluster):
    result = cluster.run("slurm.pl", "--max-jobs-run", "4", "exp/log/s.log", "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert cluster.passed("sbatch", "-p", "shared")  # default gpu=0
    assert not any(arg.startswith("--array") for arg in cluster.argv("sbatch"))
    assert cluster.log("exp/log/s.log").splitlines()[2] == "hi"


def test_an_option_given_twice_takes_its_last_value(cluster):
    result = cluster.run("slurm.pl", "--gpu", "1", "--gpu", "0", "exp/log/g.log", "true")
    assert result.returncode == 0, result.stderr
    assert cluster.passed("sbatch", "-p", "shared")
    assert not any(arg.startswith("--gres") for arg in cluster.argv("sbatch"))


def test_unknown_option_is_fatal(cluster):
    result = cluster.run("slurm.pl", "--partition", "long", "exp/log/x.log", "true")
    assert result.returncode == 1
    assert "--partition" in result.stderr
    assert not cluster.called("sbatch")


def test_config_file_in_conf_dir_is_used(cluster):
    conf = cluster.workdir / "conf"
    conf.mkdir()
    (conf / "slurm.conf").write_text(
        "command sbatch --account=speech\n"
        "option partition=* -p $0\n"
        "option gpu=0\n"
        "option gpu=* --gres=gpu:a100:$0\n"
        "default gpu=0\n"
    )
    result = cluster.run("slurm.pl", "--partition", "long", "--gpu", "2", "exp/log/c.log", "true")
    assert result.returncode == 0, result.stderr
    assert cluster.argv("sbatch")[:3] == ["--account=speech", "-p", "long"]
    assert cluster.passed("sbatch", "--gres=gpu:a100:2")


def test_missing_path_sh_is_an_error(cluster):
    (cluster.workdir / "path.sh").unlink()
    result = cluster.run("slurm.pl", "exp/log/x.log", "true")
    assert result.returncode == 1
    assert "path.sh" in result.stderr
    assert not cluster.called("sbatch")


def test_vanished_job_is_reported_not_waited_on(cluster):
    start = time.monotonic()
    result = cluster.run("slurm.pl", "JOB=1:2", "exp/log/x.JOB.log", "true", STANDIN_DROP="1")
    assert time.monotonic() - start < 15
    assert result.returncode == 1
    assert "2 / 2 failed" in result.stderr and "left the queue" in result.stderr
    assert cluster.passed("squeue", "-h", "-j", "123")


def test_exit_137_is_not_remapped(cluster):
    result = cluster.run("slurm.pl", "exp/log/k.log", "kill -9 $$")
    assert result.returncode == 1
    assert cluster.finished("exp/log/k.log")[1] == 137
    assert (cluster.state / "exit.1").read_text().strip() == "137"


def test_sigint_cancels_the_job(cluster):
    proc = cluster.popen("slurm.pl", "JOB=1:2", "exp/log/w.JOB.log", "sleep 30")
    log = cluster.workdir / "exp/log/w.1.log"
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGINT
    assert cluster.argv("scancel") == ["123"]


def test_help_lists_every_option(cluster):
    result = cluster.run("slurm.pl", "--help")
    assert result.returncode == 0
    for option in ("--config", "--mem", "--num-threads", "--max-jobs-run", "--time", "--gpu"):
        assert option in result.stdout
    assert "conf/slurm.conf" in result.stdout and "default" in result.stdout
