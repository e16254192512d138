"""``slurm.pl``: Slurm via ``sbatch``."""

from __future__ import annotations

import re
import subprocess

from .cmdline import Invocation
from .grid import GridBackend

BUILTIN_CONFIG = """\
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
option max_jobs_run=*
default gpu=0
option gpu=0 -p shared
option gpu=* -p gpu --gres=gpu:$0 --time 4:0:0
"""

USAGE = """\
Usage: slurm.pl [options] [JOB=1:N] <log-file> <program> [<args>...]
  e.g. slurm.pl --mem 4G JOB=1:4 exp/log/feats.JOB.log local/compute_feats.py --part JOB

Submits the command to Slurm as one array job (sbatch --array=1-N) and waits for it. The
job script exp/log/q/<name>.sh cd's to the current directory, sources ./path.sh (which must
exist), and runs the task with JOB replaced by ${SLURM_ARRAY_TASK_ID}. Each task log starts
with "# <command>" and "# Started at ...", and ends with "# Accounting: ..." and "# Finished
at ... with status N". Exit status is 0 only if every task succeeds. squeue is polled so that
a job that vanished is reported; SIGINT/SIGTERM cancel the job with scancel.

Options (each --name value is looked up in the config file and replaced by its flags; an
option given twice takes its last value, e.g. "$cuda_cmd --gpu 0" asks for no GPU):
  --config FILE        config file (default: conf/slurm.conf if it exists, else built-in)
  --mem SIZE           memory per CPU    -> --mem-per-cpu SIZE (0: nothing)
  --num-threads N      CPUs per task     -> --cpus-per-task N (default: 1)
  --max-jobs-run N     tasks at a time   -> --array=1-N%M (array jobs only; alias -tc N)
  --time T             run-time limit    -> --time T
  --gpu N              GPUs per task     -> -p gpu --gres=gpu:N --time 4:0:0;
                                            0 -> -p shared (default: 0)
  --help               print this message
  -p ..., -A ..., and any other single-dash option with one value go to sbatch verbatim
  (-V takes no value; -pe <env> N takes two and sets the thread count). A --name value
  option that the config file does not describe is an error.

Built-in config (the format of conf/slurm.conf; $0 is the option's value):
""" + "".join("  " + line + "\n" for line in BUILTIN_CONFIG.splitlines())


class SlurmBackend(GridBackend):
    prog = "slurm.pl"
    usage = USAGE
    default_config = "conf/slurm.conf"
    builtin_config = BUILTIN_CONFIG
    task_id_var = "SLURM_ARRAY_TASK_ID"
    submit_tool = "sbatch"
    status_tool = "squeue"
    cancel_tool = "scancel"
    max_jobs_in_array_spec = True
    transient_errors = (
        "Socket timed out",
        "Unable to contact slurm controller",
        "Resource temporarily unavailable",
    )

    def queue_log(self, qdir: str, base: str, is_array: bool) -> str:
        # Slurm expands %a to the array task index in the -o path.
        return f"{qdir}/{base}.%a.log" if is_array else f"{qdir}/{base}.log"

    def submit_flags(self, inv: Invocation, queue_log: str, max_jobs: int | None) -> list[str]:
        flags = ["-o", queue_log]
        if inv.is_array:
            spec = f"{inv.start}-{inv.end}"
            if max_jobs is not None:
                spec += f"%{max_jobs}"
            flags.append(f"--array={spec}")
        return flags

    def parse_job_id(self, output: str) -> str | None:
        match = re.search(r"Submitted batch job (\d+)", output) or re.match(
            r"\s*(\d+)(?:;|\s|$)", output
        )
        return match.group(1) if match else None

    def job_exists(self, job_id: str) -> bool | None:
        try:
            out = subprocess.run(
                [self.status_tool, "-h", "-j", job_id], capture_output=True, text=True, timeout=120
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0:
            return bool(out.stdout.strip())
        if "Invalid job id" in out.stdout + out.stderr:
            return False
        return None


def main(argv: list[str]) -> int:
    return SlurmBackend().main(argv)
