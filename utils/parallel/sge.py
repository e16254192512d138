"""``queue.pl``: GridEngine (Sun/Oracle/Univa/Son of GridEngine) via ``qsub``."""

from __future__ import annotations

import re
import subprocess

from .cmdline import Invocation
from .grid import GridBackend

BUILTIN_CONFIG = """\
command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
option time=* -l h_rt=$0
default gpu=0
option gpu=0 -q all.q
option gpu=* -l gpu=$0 -q g.q
"""

USAGE = """\
Usage: queue.pl [options] [JOB=1:N] <log-file> <program> [<args>...]
  e.g. queue.pl --mem 4G JOB=1:4 exp/log/feats.JOB.log local/compute_feats.py --part JOB

Submits the command to GridEngine as one array job (qsub -t 1:N) and waits for it. The job
script exp/log/q/<name>.sh cd's to the current directory, sources ./path.sh (which must
exist), and runs the task with JOB replaced by ${SGE_TASK_ID}. Each task log starts with
"# <command>" and "# Started at ...", and ends with "# Accounting: ..." and "# Finished at
... with status N". Exit status is 0 only if every task succeeds. A task that exits with 137
(killed by SIGKILL, usually for memory) exits 100 instead, which leaves it in GridEngine's
error state for a rerun (qmod -cj) rather than finished; queue.pl waits on until it reruns or
the job is deleted. SIGINT/SIGTERM delete the job with qdel.

Options (each --name value is looked up in the config file and replaced by its flags; an
option given twice takes its last value, e.g. "$cuda_cmd --gpu 0" asks for no GPU):
  --config FILE        config file (default: conf/queue.conf if it exists, else built-in)
  --mem SIZE           memory per slot   -> -l mem_free=SIZE,ram_free=SIZE (0: nothing)
  --num-threads N      threads per task  -> -pe smp N (1: nothing)
  --max-jobs-run N     tasks at a time   -> -tc N (array jobs only; alias -tc N)
  --time T             run-time limit    -> -l h_rt=T
  --gpu N              GPUs per task     -> -l gpu=N -q g.q; 0 -> -q all.q (default: 0)
  --help               print this message
  -pe <env> N, -l ..., -q ..., -V, and any other single-dash option go to qsub verbatim
  (-pe <env> N also sets the thread count in the Accounting line). A --name value option
  that the config file does not describe is an error.

Built-in config (the format of conf/queue.conf; $0 is the option's value):
""" + "".join("  " + line + "\n" for line in BUILTIN_CONFIG.splitlines())

EXIT_MAPPING = """\
# 137 = killed by SIGKILL, usually for exceeding the memory limit. Exit status 100 leaves the
# task in GridEngine's error state instead of finishing it, and the sync file is not written:
# queue.pl keeps waiting while "qmod -cj <job>" reruns the task, or "qdel <job>" gives up.
if [ "$ret" -eq 137 ]; then exit 100; fi"""


class SgeBackend(GridBackend):
    prog = "queue.pl"
    usage = USAGE
    default_config = "conf/queue.conf"
    builtin_config = BUILTIN_CONFIG
    task_id_var = "SGE_TASK_ID"
    submit_tool = "qsub"
    status_tool = "qstat"
    cancel_tool = "qdel"
    transient_errors = ("qmaster", "gdi", "failed receiving", "commlib error")

    def exit_mapping(self) -> str:
        return EXIT_MAPPING

    def queue_log(self, qdir: str, base: str, is_array: bool) -> str:
        # GridEngine expands $TASK_ID in the -o path.
        return f"{qdir}/{base}.$TASK_ID.log" if is_array else f"{qdir}/{base}.log"

    def submit_flags(self, inv: Invocation, queue_log: str, max_jobs: int | None) -> list[str]:
        flags = ["-o", queue_log]
        if inv.is_array:
            flags += ["-t", f"{inv.start}:{inv.end}"]
        return flags

    def parse_job_id(self, output: str) -> str | None:
        match = re.search(r"Your job(?:-array)? (\d+)", output) or re.match(r"\s*(\d+)", output)
        return match.group(1) if match else None

    def job_exists(self, job_id: str) -> bool | None:
        try:
            out = subprocess.run(
                [self.status_tool, "-j", job_id], capture_output=True, text=True, timeout=120
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0:
            return True
        if "do not exist" in out.stdout + out.stderr:
            return False
        return None


def main(argv: list[str]) -> int:
    return SgeBackend().main(argv)
