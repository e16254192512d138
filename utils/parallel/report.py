"""The summary printed when some tasks fail."""

from __future__ import annotations

import sys
from dataclasses import dataclass

MAX_LISTED = 20


@dataclass
class TaskResult:
    task: int
    log: str
    status: int | None
    """Exit status; None when the task never reported one."""
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 0


def summarise(prog: str, results: list[TaskResult]) -> int:
    """Print ``<prog>: N / M failed, log is in <log>`` plus the failed tasks; return the exit code."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return 0
    err = sys.stderr
    print(f"{prog}: {len(failed)} / {len(results)} failed, log is in {failed[0].log}", file=err)
    for r in failed[:MAX_LISTED]:
        status = "no status" if r.status is None else f"status {r.status}"
        note = f"; {r.note}" if r.note else ""
        print(f"{prog}:   task {r.task} ({status}{note}): {r.log}", file=err)
    if len(failed) > MAX_LISTED:
        print(f"{prog}:   ... and {len(failed) - MAX_LISTED} more", file=err)
    return 1
