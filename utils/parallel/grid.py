"""What ``queue.pl`` and ``slurm.pl`` share: the job script, submission, and waiting.

For ``<prog> [opts] JOB=1:N exp/log/foo.JOB.log cmd...`` the backend:

1. maps the ``--name value`` options through the config file (see :mod:`parallel.config`);
2. writes the job script ``exp/log/q/foo.sh``; each array task runs it with its index in the
   scheduler's task variable, and it

   - ``cd``\\ s to the submission directory and sources ``./path.sh`` there (which must exist),
   - writes ``exp/log/foo.<task>.log``: the usual header, the task's output, then
     ``# Accounting: ...`` and ``# Finished at <date> with status N``,
   - touches ``exp/log/q/sync/done.<pid>.<task>`` when the task is over;

3. submits the script as one array job (``qsub -t 1:N`` / ``sbatch --array=1-N``);
4. waits for the sync files, checking now and then with the scheduler (``qstat``/``squeue``)
   that the job still exists, so that a job that vanished without finishing is reported
   instead of waited on for ever; a task whose log already carries its final status line
   counts as finished even if its sync file has not shown up (slow NFS);
5. reads every task's status from its log and prints a summary of the failures.

SIGINT, SIGTERM and SIGHUP cancel the job (``qdel``/``scancel``) before exiting.

Environment knobs, mainly for tests and for slow shared file systems:
``SHIRABE_GRID_GRACE`` (seconds to keep looking for sync files after the scheduler has
forgotten the job; default 60), ``SHIRABE_GRID_POLL_MAX`` (longest pause between looks at
the sync directory; default 5), ``SHIRABE_GRID_RETRY_DELAY`` (pause before resubmitting after
a transient scheduler error; default 20).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from .cmdline import HelpRequested, Invocation, UsageError, parse_invocation, threads_of
from .config import ConfigError, SchedulerConfig, load_config
from .logs import final_status, now
from .report import TaskResult, summarise

SUBMIT_ATTEMPTS = 3
FIRST_STATUS_CHECK = 1.0
MAX_STATUS_CHECK_GAP = 60.0


def _env_seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class GridBackend:
    """What differs between schedulers; see :mod:`parallel.sge` and :mod:`parallel.slurm`."""

    prog = ""
    usage = ""
    default_config = ""
    builtin_config = ""
    task_id_var = ""
    submit_tool = ""
    status_tool = ""
    cancel_tool = ""
    max_jobs_in_array_spec = False
    """True when --max-jobs-run goes into the array specification (Slurm's ``%M``)."""
    transient_errors: tuple[str, ...] = ()

    def exit_mapping(self) -> str:
        """Bash lines run after the footer is written, before the sync file; may exit."""
        return ""

    def queue_log(self, qdir: str, base: str, is_array: bool) -> str:
        raise NotImplementedError

    def submit_flags(self, inv: Invocation, queue_log: str, max_jobs: int | None) -> list[str]:
        raise NotImplementedError

    def parse_job_id(self, output: str) -> str | None:
        raise NotImplementedError

    def job_exists(self, job_id: str) -> bool | None:
        """True/False when the scheduler answers clearly, None when it cannot be asked."""
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:
        try:
            subprocess.run(
                [self.cancel_tool, job_id],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            pass

    def main(self, argv: list[str]) -> int:
        try:
            inv = parse_invocation(argv)
            config = load_config(inv.config, self.default_config, self.builtin_config)
            flags, max_jobs = scheduler_flags(self, inv, config)
            threads = threads_of(inv)
        except HelpRequested:
            sys.stdout.write(self.usage)
            return 0
        except (UsageError, ConfigError) as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return 1
        if not os.path.isfile("path.sh"):
            print(
                f"{self.prog}: ./path.sh not found in {os.getcwd()}; the job script sources it "
                "so that cluster nodes get the recipe's environment",
                file=sys.stderr,
            )
            return 1
        return GridJob(self, inv, config, flags, max_jobs, threads).run()


def scheduler_flags(
    backend: GridBackend, inv: Invocation, config: SchedulerConfig
) -> tuple[list[str], int | None]:
    """Scheduler flags for the ``--name value`` options (and config defaults), then the
    single-dash options verbatim; also the --max-jobs-run value for array jobs.

    An option given twice takes its last value, as with run.pl, so that a recipe can
    override what cmd.sh put in ``$cuda_cmd`` (``$cuda_cmd --gpu 0 ...``)."""
    last = dict(inv.long_options)
    given = [(name, last.pop(name)) for name, _ in inv.long_options if name in last]
    given += [(name, value) for name, value in config.defaults.items() if name not in dict(given)]
    flags: list[str] = []
    max_jobs = None
    for name, value in given:
        if name in ("max_jobs_run", "num_threads", "gpu"):
            try:
                number = int(value)
            except ValueError:
                raise UsageError(
                    f"option --{name.replace('_', '-')} expects an integer, got '{value}'"
                ) from None
            if number < (1 if name != "gpu" else 0):
                raise UsageError(f"option --{name.replace('_', '-')} {value} is out of range")
        if name == "max_jobs_run":
            if not inv.is_array:
                continue  # only meaningful for array jobs
            max_jobs = int(value)
            if backend.max_jobs_in_array_spec and not config.describes(name):
                continue
        flags += config.flags_for(name, value)
    return flags + inv.short_options, max_jobs


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def queue_dir(inv: Invocation) -> str:
    """``<log dir>/q``; the log dir stops before the first component naming the JOB variable."""
    parts = []
    for part in os.path.dirname(inv.log_template).split(os.sep):
        if inv.job_var is not None and inv.job_var in part:
            break
        parts.append(part)
    logdir = os.sep.join(parts) or "."
    if inv.log_template.startswith(os.sep) and not logdir.startswith(os.sep):
        logdir = os.sep + logdir
    return os.path.join(logdir, "q")


def job_base(inv: Invocation) -> str:
    base = os.path.basename(inv.log_template)
    if inv.job_var is not None:
        base = base.replace("." + inv.job_var, "").replace(inv.job_var, "")
    if base.endswith(".log"):
        base = base[: -len(".log")]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).strip(".") or "job"
    if base[0].isdigit():
        base = (
            "job" + base
        )  # GridEngine job names (taken from the script) must not start with a digit
    return base


@dataclass
class GridJob:
    backend: GridBackend
    inv: Invocation
    config: SchedulerConfig
    flags: list[str]
    max_jobs: int | None
    threads: int

    def __post_init__(self):
        self.prog = self.backend.prog
        self.cwd = os.getcwd()
        self.qdir = os.path.abspath(queue_dir(self.inv))
        self.syncdir = os.path.join(self.qdir, "sync")
        self.base = job_base(self.inv)
        self.script = os.path.join(self.qdir, self.base + ".sh")
        self.pid = os.getpid()

    def sync_file(self, task: int) -> str:
        return os.path.join(self.syncdir, f"done.{self.pid}.{task}")

    # -- job script -------------------------------------------------------------------------

    def script_text(self) -> str:
        inv = self.inv
        var = inv.job_var
        if inv.is_array:
            task_expr = "${" + self.backend.task_id_var + "}"
        else:
            task_expr = str(inv.start)
        lines = [
            "#!/bin/bash",
            f"# Job script written by {self.prog} at {now()} for",
            f"#   {self.prog} {inv.log_template} {' '.join(inv.command_template.split())}",
            f"cd {shell_quote(self.cwd)} || exit 1",
            f"task={task_expr}",
            f"log={shell_quote(inv.log_template)}",
            f"cmd={shell_quote(inv.command_template)}",
        ]
        if var is not None:
            lines += [f"log=${{log//{var}/$task}}", f"cmd=${{cmd//{var}/$task}}"]
        lines += [
            'mkdir -p "$(dirname "$log")" || exit 1',
            '{ printf \'# %s\\n\' "$cmd"; printf \'# Started at %s\\n\' "$(date)"; } > "$log"',
            "start=$(date +%s)",
            '( . ./path.sh || exit 1; exec bash -c "$cmd" ) < /dev/null >> "$log" 2>&1',
            "ret=$?",
            "elapsed=$(( $(date +%s) - start ))",
            f'printf \'# Accounting: time=%d threads=%d\\n\' "$elapsed" {self.threads} >> "$log"',
            'printf \'# Finished at %s with status %d\\n\' "$(date)" "$ret" >> "$log"',
        ]
        mapping = self.backend.exit_mapping()
        if mapping:
            lines.append(mapping.rstrip("\n"))
        lines += [
            f'touch {shell_quote(self.syncdir)}/done.{self.pid}."$task"',
            "exit $ret",
        ]
        return "\n".join(lines) + "\n"

    def prepare(self) -> None:
        os.makedirs(self.syncdir, exist_ok=True)
        for task in self.inv.task_ids:
            # A stale sync file or footer from an earlier run must not pass for this one.
            for path in (self.sync_file(task), self.inv.log_for(task)):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
        with open(self.script, "w", encoding="utf-8") as f:
            f.write(self.script_text())
        os.chmod(self.script, 0o755)

    # -- submission -------------------------------------------------------------------------

    def submit(self) -> str:
        queue_log = self.backend.queue_log(self.qdir, self.base, self.inv.is_array)
        argv = (
            self.config.command
            + self.flags
            + self.backend.submit_flags(self.inv, queue_log, self.max_jobs)
            + [self.script]
        )
        delay = _env_seconds("SHIRABE_GRID_RETRY_DELAY", 20.0)
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                out = subprocess.run(argv, capture_output=True, text=True, check=False)
            except OSError as exc:
                raise UsageError(f"cannot run {argv[0]}: {exc.strerror}") from None
            text = out.stdout + out.stderr
            if out.returncode == 0:
                job_id = self.backend.parse_job_id(out.stdout)
                if job_id is None:
                    raise UsageError(
                        f"could not find a job id in the output of {argv[0]}: {text.strip()!r}"
                    )
                return job_id
            transient = any(word in text for word in self.backend.transient_errors)
            if not transient or attempt == SUBMIT_ATTEMPTS:
                last = text.strip().splitlines()[-1] if text.strip() else "(no output)"
                raise UsageError(
                    f"submission failed with status {out.returncode}: {' '.join(argv)}: {last}"
                )
            print(
                f"{self.prog}: {argv[0]} failed ({text.strip()}); retrying in {delay:g} s",
                file=sys.stderr,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    # -- waiting ----------------------------------------------------------------------------

    def wait(self, job_id: str) -> dict[int, str]:
        """Wait until every task has finished; returns notes for tasks that never did."""
        pending = set(self.inv.task_ids)
        grace = _env_seconds("SHIRABE_GRID_GRACE", 60.0)
        poll_max = max(0.05, _env_seconds("SHIRABE_GRID_POLL_MAX", 5.0))
        pause = 0.05
        check_gap = FIRST_STATUS_CHECK
        next_check = time.monotonic() + check_gap
        vanished_at = None
        warned = False
        while True:
            try:
                present = set(os.listdir(self.syncdir))  # listing also refreshes NFS caches
            except OSError:
                present = set()
            pending = {t for t in pending if f"done.{self.pid}.{t}" not in present}
            if not pending:
                return {}
            clock = time.monotonic()
            if clock >= next_check:
                exists = self.backend.job_exists(job_id)
                if exists is None and not warned:
                    print(
                        f"{self.prog}: cannot ask {self.backend.status_tool} about job {job_id}; "
                        "waiting for its sync files only",
                        file=sys.stderr,
                    )
                    warned = True
                if exists is False:
                    pending = {t for t in pending if final_status(self.inv.log_for(t)) is None}
                    if not pending:
                        return {}
                    if vanished_at is None:
                        vanished_at = clock
                    elif clock - vanished_at >= grace:
                        note = (
                            f"job {job_id} left the queue without finishing this task; "
                            f"see {self.qdir}/{self.base}*.log"
                        )
                        return {t: note for t in pending}
                    check_gap = min(max(grace / 4, 0.05), MAX_STATUS_CHECK_GAP)
                else:
                    vanished_at = None
                    check_gap = min(check_gap * 2, MAX_STATUS_CHECK_GAP)
                next_check = clock + check_gap
            time.sleep(pause)
            pause = min(pause * 1.5, poll_max)

    def run(self) -> int:
        try:
            self.prepare()
            job_id = self.submit()
        except OSError as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return 1
        except UsageError as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return 1

        def on_signal(signum, _frame):
            raise Interrupted(signum)

        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, on_signal) for sig in handled}
        try:
            lost = self.wait(job_id)
        except Interrupted as exc:
            for sig in handled:
                signal.signal(sig, signal.SIG_IGN)
            self.backend.cancel(job_id)
            print(
                f"{self.prog}: interrupted by signal {exc.signum}; cancelled job {job_id} "
                f"with {self.backend.cancel_tool}",
                file=sys.stderr,
            )
            return 128 + exc.signum
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        results = []
        for task in self.inv.task_ids:
            log = self.inv.log_for(task)
            status = final_status(log)
            note = lost.get(task, "")
            if status is None and not note:
                note = "the log has no '# Finished ... with status' line"
            results.append(TaskResult(task, log, status, note))
            try:
                os.remove(self.sync_file(task))
            except OSError:
                pass
        return summarise(self.prog, results)
