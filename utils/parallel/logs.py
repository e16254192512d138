"""Task log format.

Every task log looks like::

    # <command>
    # Started at <date>
    <the task's stdout and stderr>
    # Accounting: time=<seconds> threads=<n>
    # Ended (code <status>) at <date>, elapsed time <seconds> seconds      (run.pl)
    # Finished at <date> with status <status>                              (queue.pl, slurm.pl)

The last line is what ``run.pl --pick`` and the cluster backends read back.
"""

from __future__ import annotations

import os
import re
import time

ENDED = re.compile(r"^# Ended \(code (-?\d+)\)", re.MULTILINE)
FINISHED = re.compile(r"^# Finished at .* with status (-?\d+)[ \t]*$", re.MULTILINE)
TAIL_BYTES = 65536


def now() -> str:
    """The date as ``date`` prints it in the C locale."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def header(command: str) -> str:
    return f"# {command}\n# Started at {now()}\n"


def run_footer(code: int, elapsed: float, threads: int) -> str:
    seconds = int(round(elapsed))
    return (
        f"# Accounting: time={seconds} threads={threads}\n"
        f"# Ended (code {code}) at {now()}, elapsed time {seconds} seconds\n"
    )


def final_status(path: str) -> int | None:
    """The status recorded at the end of a task log; None if the log is missing or unfinished."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = None
    for pattern in (ENDED, FINISHED):
        for match in pattern.finditer(tail):
            if found is None or match.start() > found[0]:
                found = (match.start(), int(match.group(1)))
    return None if found is None else found[1]


def needs_rerun(path: str, pick: str) -> bool:
    """Whether ``--pick`` selects the task whose log is ``path``.

    ``all`` selects every task, ``failed`` every task whose log does not end with status 0,
    ``incomplete`` every task whose log has no final status line at all.
    """
    if pick == "all":
        return True
    status = final_status(path)
    if pick == "failed":
        return status != 0
    return status is None
