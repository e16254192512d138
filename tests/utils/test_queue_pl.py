"""utils/queue.pl against stand-in qsub/qstat/qdel scripts that really run the array tasks."""

from __future__ import annotations

import signal
import time


def test_array_job_runs_every_task(cluster):
    result = cluster.run("queue.pl", "JOB=1:3", "exp/log/x.JOB.log", "echo task JOB $FROM_PATH_SH")
    assert result.returncode == 0, result.stderr
    for task in (1, 2, 3):
        lines = cluster.log(f"exp/log/x.{task}.log").splitlines()
        assert lines[0] == f"# echo task {task} $FROM_PATH_SH"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == f"task {task} yes"  # ./path.sh was sourced
        assert cluster.finished(f"exp/log/x.{task}.log") == (1, 0)
    assert cluster.passed("qsub", "-t", "1:3")
    assert cluster.argv("qsub")[-1] == str(cluster.workdir / "exp/log/q/x.sh")
    assert list((cluster.workdir / "exp/log/q/sync").iterdir()) == []  # sync files cleaned up


def test_job_script_sources_path_sh_and_uses_the_task_id(cluster):
    assert cluster.run("queue.pl", "JOB=1:2", "exp/log/x.JOB.log", "true").returncode == 0
    script = (cluster.workdir / "exp/log/q/x.sh").read_text()
    assert f"cd '{cluster.workdir}'" in script
    assert ". ./path.sh" in script
    assert "${SGE_TASK_ID}" in script
    assert "exp/log/q/sync" in script


def test_failures_propagate(cluster):
    result = cluster.run("queue.pl", "JOB=1:3", "exp/log/x.JOB.log", "exit $(( JOB == 2 ? 3 : 0 ))")
    assert result.returncode == 1
    assert "queue.pl: 1 / 3 failed, log is in exp/log/x.2.log" in result.stderr
    assert cluster.finished("exp/log/x.2.log")[1] == 3
    assert cluster.finished("exp/log/x.3.log")[1] == 0


def test_single_job_without_task_variable(cluster):
    result = cluster.run("queue.pl", "exp/log/one.log", "echo", "a b", "|", "tr", "a", "A")
    assert result.returncode == 0, result.stderr
    assert cluster.log("exp/log/one.log").splitlines()[2] == "A b"
    assert "-t" not in cluster.argv("qsub")


def test_options_are_mapped_through_the_builtin_config(cluster):
    result = cluster.run(
        "queue.pl", "--mem", "4G", "--gpu", "1", "--num-threads", "4", "--max-jobs-run", "2",
        "JOB=1:2", "exp/log/m.JOB.log", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert cluster.argv("qsub")[:9] == "-v PATH -cwd -S /bin/bash -j y -l arch=*64*".split()
    assert cluster.passed("qsub", "-l", "mem_free=4G,ram_free=4G")
    assert cluster.passed("qsub", "-l", "gpu=1", "-q", "g.q")
    assert cluster.passed("qsub", "-pe", "smp", "4")
    assert cluster.passed("qsub", "-tc", "2")
    assert not cluster.passed("qsub", "-q", "all.q")
    assert cluster.finished("exp/log/m.1.log")[0] == 4


def test_default_gpu_and_max_jobs_run_only_for_arrays(cluster):
    result = cluster.run("queue.pl", "--max-jobs-run", "2", "--mem", "0", "exp/log/s.log", "true")
    assert result.returncode == 0, result.stderr
    assert cluster.passed("qsub", "-q", "all.q")  # default gpu=0
    assert "-tc" not in cluster.argv("qsub")
    assert not any("mem_free" in arg for arg in cluster.argv("qsub"))  # option mem=0: nothing


def test_an_option_given_twice_takes_its_last_value(cluster):
    # What a recipe does to run a $cuda_cmd step without a GPU: "$cuda_cmd --gpu 0 ...".
    result = cluster.run("queue.pl", "--gpu", "1", "--mem", "2G", "--gpu", "0", "exp/log/g.log", "true")
    assert result.returncode == 0, result.stderr
    assert cluster.passed("qsub", "-q", "all.q")
    assert not any(arg.startswith("gpu=") for arg in cluster.argv("qsub"))
    assert cluster.passed("qsub", "-l", "mem_free=2G,ram_free=2G")
    assert cluster.run("queue.pl", "--gpu", "1", "--gpu", "4", "exp/log/g.log", "true").returncode == 0
    assert cluster.passed("qsub", "-l", "gpu=4", "-q", "g.q")
    assert not cluster.passed("qsub", "-l", "gpu=1")


def test_single_dash_options_go_to_qsub_verbatim(cluster):
    result = cluster.run(
        "queue.pl", "-l", "hostname=b1", "-V", "-pe", "mpi", "3", "exp/log/v.log", "true"
    )
    assert result.returncode == 0, result.stderr
    assert cluster.passed("qsub", "-l", "hostname=b1", "-V", "-pe", "mpi", "3")
    assert cluster.finished("exp/log/v.log")[0] == 3


def test_unknown_option_is_fatal(cluster):
    result = cluster.run("queue.pl", "--foo", "bar", "exp/log/x.log", "true")
    assert result.returncode == 1
    assert "--foo" in result.stderr
    assert not cluster.called("qsub")


def test_config_file_in_conf_dir_is_used(cluster):
    conf = cluster.workdir / "conf"
    conf.mkdir()
    (conf / "queue.conf").write_text(
        "# site settings\n"
        "command qsub -P speech -cwd\n"
        "option mem=* -l h_vmem=$0\n"
        "option gpu=0 -q cpu.q\n"
        "option gpu=* -q gpu.q -l gpu=$0\n"
        "default gpu=0\n"
    )
    assert cluster.run("queue.pl", "--mem", "2G", "exp/log/c.log", "true").returncode == 0
    assert cluster.argv("qsub")[:3] == ["-P", "speech", "-cwd"]
    assert cluster.passed("qsub", "-l", "h_vmem=2G", "-q", "cpu.q")
    assert cluster.run("queue.pl", "--gpu", "2", "exp/log/c.log", "true").returncode == 0
    assert cluster.passed("qsub", "-q", "gpu.q", "-l", "gpu=2")
    # The site file does not describe --num-threads.
    result = cluster.run("queue.pl", "--num-threads", "2", "exp/log/c.log", "true")
    assert result.returncode == 1
    assert "--num-threads" in result.stderr and "conf/queue.conf" in result.stderr


def test_config_option_picks_another_file(cluster):
    (cluster.workdir / "my.conf").write_text("command qsub -q long.q\noption mem=* -l vf=$0\n")
    result = cluster.run("queue.pl", "--config", "my.conf", "--mem", "1G", "exp/log/c.log", "true")
    assert result.returncode == 0, result.stderr
    assert cluster.argv("qsub")[:4] == ["-q", "long.q", "-l", "vf=1G"]


def test_missing_path_sh_is_an_error(cluster):
    (cluster.workdir / "path.sh").unlink()
    result = cluster.run("queue.pl", "exp/log/x.log", "true")
    assert result.returncode == 1
    assert "path.sh" in result.stderr
    assert not cluster.called("qsub")


def test_rejected_submission_is_an_error(cluster):
    result = cluster.run("queue.pl", "exp/log/x.log", "true", STANDIN_REJECT="1")
    assert result.returncode == 1
    assert "submission failed" in result.stderr and "no such queue" in result.stderr


def test_vanished_job_is_reported_not_waited_on(cluster):
    start = time.monotonic()
    result = cluster.run("queue.pl", "JOB=1:2", "exp/log/x.JOB.log", "true", STANDIN_DROP="1")
    assert time.monotonic() - start < 15
    assert result.returncode == 1
    assert "2 / 2 failed" in result.stderr
    assert "left the queue" in result.stderr
    assert cluster.passed("qstat", "-j", "123")


def test_exit_137_becomes_100_for_gridengine(cluster):
    result = cluster.run("queue.pl", "JOB=1:2", "exp/log/k.JOB.log", "test JOB = 1 || kill -9 $$")
    assert result.returncode == 1
    assert "1 / 2 failed, log is in exp/log/k.2.log" in result.stderr
    assert cluster.finished("exp/log/k.2.log")[1] == 137
    assert (cluster.state / "exit.2").read_text().strip() == "100"
    assert (cluster.state / "exit.1").read_text().strip() == "0"


def test_sigterm_deletes_the_job(cluster):
    proc = cluster.popen("queue.pl", "JOB=1:2", "exp/log/w.JOB.log", "sleep 30")
    log = cluster.workdir / "exp/log/w.2.log"
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM
    assert cluster.argv("qdel") == ["123"]
    assert "qdel" in err


def test_help_lists_every_option(cluster):
    result = cluster.run("queue.pl", "--help")
    assert result.returncode == 0
    for option in (
        "--config",
        "--mem",
        "--num-threads",
        "--max-jobs-run",
        "--time",
        "--gpu",
        "-pe",
    ):
        assert option in result.stdout
    assert "conf/queue.conf" in result.stdout and "default" in result.stdout
