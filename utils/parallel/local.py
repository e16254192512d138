"""``run.pl``: run the tasks on this machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .cmdline import (
    HelpRequested,
    Invocation,
    UsageError,
    ensure_parent_dir,
    int_option,
    parse_invocation,
    threads_of,
)
from .logs import header, needs_rerun, run_footer
from .report import TaskResult, summarise

PROG = "run.pl"
PICK_CHOICES = ("all", "failed", "incomplete")

USAGE = """\
Usage: run.pl [options] [JOB=1:N] <log-file> <program> [<args>...]
  e.g. run.pl JOB=1:4 exp/log/feats.JOB.log local/compute_feats.py --part JOB

Runs the command on this machine, once, or once per task JOB=start:end with JOB replaced
by the task index in the log file name and in the command (any identifier works as the
variable name). Each log starts with "# <command>" and "# Started at ...", then holds the
task's output, and ends with "# Accounting: ..." and "# Ended (code N) at ...". Exit status
is 0 only if every task succeeds. Several arguments are quoted for bash one by one (a bare
"|", written \\| by the caller, stays a pipe); a single argument is run as a shell command.

Options:
  --max-jobs-run N, -tc N   tasks run at the same time (default: the number of CPUs, or the
                            number of GPUs listed by "nvidia-smi -L" divided by --gpu when
                            --gpu N > 0 and nvidia-smi exists)
  --pick all|failed|incomplete
                            which tasks to run (default: all); failed = tasks whose log does
                            not end with status 0, incomplete = tasks whose log has no
                            "# Ended" line
  --gpu N                   GPUs per task; only used to choose the default --max-jobs-run
                            (default: 0)
  --num-threads N           threads per task, recorded in the Accounting line (default: 1)
  --help                    print this message

Ignored, so that a command line written for queue.pl or slurm.pl also runs locally:
  --config FILE, --mem X, --time T and any other --name value option,
  -pe <env> N (N is recorded as threads), -V, and any other single-dash option with one value.
"""


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def gpu_count() -> int | None:
    """GPUs listed by ``nvidia-smi -L``; None when nvidia-smi is missing or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def max_jobs(inv: Invocation) -> int:
    explicit = int_option(inv, "max_jobs_run", 0, minimum=1)
    if explicit:
        return explicit
    gpus_per_task = int_option(inv, "gpu", 0)
    if gpus_per_task > 0:
        gpus = gpu_count()
        if gpus:
            return max(1, gpus // gpus_per_task)
    return cpu_count()


class LocalRunner:
    """Runs the selected tasks with at most ``jobs`` at a time."""

    def __init__(self, inv: Invocation, jobs: int, threads: int):
        self.inv = inv
        self.jobs = jobs
        self.threads = threads
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()
        self.stopping = 0

    def run_task(self, task: int) -> TaskResult:
        log = self.inv.log_for(task)
        if self.stopping:
            return TaskResult(task, log, None, "not started: interrupted")
        command = self.inv.command_for(task)
        try:
            ensure_parent_dir(log)
            with open(log, "w", encoding="utf-8") as f:
                f.write(header(command))
            with open(log, "ab") as f:
                start = time.monotonic()
                with self.lock:
                    proc = subprocess.Popen(
                        ["bash", "-c", command],
                        stdin=subprocess.DEVNULL,
                        stdout=f,
                        stderr=subprocess.STDOUT,
                    )
                    self.running.add(proc)
                code = proc.wait()
                with self.lock:
                    self.running.discard(proc)
                if code < 0:  # killed by a signal: report it the way a shell does
                    code = 128 - code
                f.write(run_footer(code, time.monotonic() - start, self.threads).encode())
        except OSError as exc:
            print(f"{PROG}: task {task}: {exc}", file=sys.stderr)
            return TaskResult(task, log, None, str(exc))
        return TaskResult(task, log, code)

    def stop(self, signum: int, _frame) -> None:
        """Forward SIGINT/SIGTERM/SIGHUP to the running tasks and start no new ones."""
        self.stopping = signum
        with self.lock:
            for proc in self.running:
                try:
                    proc.send_signal(signal.SIGTERM)
                except OSError:
                    pass

    def run(self, tasks: list[int]) -> list[TaskResult]:
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self.stop) for sig in handled}
        try:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                results = list(pool.map(self.run_task, tasks))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return results


def main(argv: list[str]) -> int:
    try:
        inv = parse_invocation(argv)
        pick = inv.option("pick") or "all"
        if pick not in PICK_CHOICES:
            raise UsageError(f"--pick must be one of {', '.join(PICK_CHOICES)}, got '{pick}'")
        jobs = max_jobs(inv)
        threads = threads_of(inv)
    except HelpRequested:
        sys.stdout.write(USAGE)
        return 0
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1

    tasks = [t for t in inv.task_ids if needs_rerun(inv.log_for(t), pick)]
    if not tasks:
        return 0
    for task in tasks:
        try:
            ensure_parent_dir(inv.log_for(task))
        except OSError as exc:
            print(
                f"{PROG}: cannot create the directory of {inv.log_for(task)}: {exc}",
                file=sys.stderr,
            )
            return 1
    runner = LocalRunner(inv, min(jobs, len(tasks)), threads)
    results = runner.run(tasks)
    if runner.stopping:
        print(f"{PROG}: interrupted by signal {runner.stopping}", file=sys.stderr)
        summarise(PROG, results)
        return 128 + runner.stopping
    return summarise(PROG, results)
