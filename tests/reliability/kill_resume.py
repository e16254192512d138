"""Kill a training binary with SIGKILL, resume it, and compare with a run that was never interrupted.

For a :class:`TrainingBinary` (how to start it for N steps, how it resumes from what an experiment
dir holds, where its final weights are), :func:`check_kill_and_resume`:

1. runs it to N steps in one go and keeps the final weights;
2. in a fresh experiment dir, starts it with slow checkpoint writes (``slow_saves.py``) and
   SIGKILLs it at a seeded random moment: a uniform delay after the first checkpoint appeared;
3. resumes it, again with slow writes, and SIGKILLs it as soon as a checkpoint's temporary file
   appears, i.e. in the middle of a checkpoint write (the temporary file is still there after
   the kill: that is checked);
4. resumes it without interruption to N steps;

then asserts that the final weights equal those of step 1 to ``atol`` and that no temporary file
is left anywhere in the experiment dir.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
SLOW_SAVES = Path(__file__).resolve().parent / "slow_saves.py"
TEMP_FILE = re.compile(r"(^\.tmp\.|^\..*\.tmp$|\.tmp(\.\w+)?$)")
CHECKPOINT = re.compile(r"^checkpoint-(\d+)\.pt$")


@dataclass
class TrainingBinary:
    """How to run one training binary in the test.

    ``command(exp_dir, steps)``: argv (without the interpreter) of a run to ``steps`` steps;
    ``resume_args(exp_dir)``: what to add to resume from what ``exp_dir`` holds (``[]`` for a
    binary that resumes by itself, or when there is nothing to resume from);
    ``final_weights(exp_dir, steps)``: the tensors to compare after ``steps`` steps.
    """

    command: Callable[[Path, int], list[str]]
    resume_args: Callable[[Path], list[str]]
    final_weights: Callable[[Path, int], dict[str, torch.Tensor]]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 300.0

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "TQDM_DISABLE": "1",
                **self.env}


def newest_checkpoint(exp_dir: Path) -> int | None:
    """B of the newest ``checkpoint-B.pt`` in ``exp_dir`` (None if there is none)."""
    found = [int(m.group(1)) for p in exp_dir.glob("checkpoint-*.pt") if (m := CHECKPOINT.match(p.name))]
    return max(found, default=None)


def temp_files(exp_dir: Path) -> list[Path]:
    """Temporary files (``.NAME.*.tmp``, ``.tmp.NAME``, ``NAME.tmp``) anywhere under ``exp_dir``."""
    return sorted(p for p in exp_dir.rglob("*") if p.is_file() and TEMP_FILE.search(p.name))


def run_to_end(binary: TrainingBinary, argv: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, *argv], cwd=REPO, env=binary.environment(), capture_output=True, text=True,
                       timeout=binary.timeout)
    assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stderr[-4000:]}"
    return r


def run_and_kill(binary: TrainingBinary, argv: list[str], exp_dir: Path, when: Callable[[set[str]], bool],
                 save_seconds: float, log: Path) -> set[str]:
    """Start ``argv`` with slow checkpoint writes and SIGKILL it once ``when(names in exp_dir)`` holds;
    returns the names in ``exp_dir`` at the moment of the kill."""
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, str(SLOW_SAVES), str(save_seconds), *argv], cwd=REPO,
                                env=binary.environment(), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + binary.timeout
            while True:
                names = set(os.listdir(exp_dir)) if exp_dir.is_dir() else set()
                if when(names):
                    break
                assert proc.poll() is None, f"the run ended before it was killed:\n{log.read_text()[-4000:]}"
                assert time.monotonic() < deadline, "the moment to kill never came"
                time.sleep(0.005)
            os.killpg(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
    return names


def after_first_checkpoint(delay: float) -> Callable[[set[str]], bool]:
    """True ``delay`` seconds after a ``checkpoint-B.pt`` first appears."""
    seen_at: list[float] = []

    def when(names: set[str]) -> bool:
        if not seen_at and any(CHECKPOINT.match(n) for n in names):
            seen_at.append(time.monotonic())
        return bool(seen_at) and time.monotonic() - seen_at[0] >= delay

    return when


def is_save_in_progress(name: str) -> bool:
    """A checkpoint's temporary file (``.NAME.pt.XXXX.tmp``, see ``atomic_save``)."""
    return name.startswith(".") and name.endswith(".tmp") and ".pt." in name


def during_a_new_write(before: set[str]) -> Callable[[set[str]], bool]:
    """True once a checkpoint's temporary file appears that was not among ``before``."""
    return lambda names: any(is_save_in_progress(n) for n in names - before)


def assert_same_weights(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], atol: float) -> None:
    assert expected.keys() == got.keys(), sorted(set(expected) ^ set(got))
    worst = {k: float((expected[k].double() - got[k].double()).abs().max()) for k in expected if expected[k].numel()}
    assert worst and max(worst.values()) <= atol, max(worst.items(), key=lambda kv: kv[1])


def check_kill_and_resume(binary: TrainingBinary, tmp_path: Path, steps: int, seed: int = 0,
                          save_seconds: float = 1.0, atol: float = 1e-6) -> dict:
    """Steps 1-4 of the module docstring; returns what happened (kill delay, checkpoints resumed from)."""
    rng = random.Random(seed)
    straight = tmp_path / "straight"
    run_to_end(binary, binary.command(straight, steps))
    expected = binary.final_weights(straight, steps)

    exp = tmp_path / "killed"
    delay = rng.uniform(0.0, save_seconds)  # < one slow save, so the run is surely still going
    run_and_kill(binary, binary.command(exp, steps), exp, after_first_checkpoint(delay), save_seconds,
                 tmp_path / "kill1.log")
    first_resume = newest_checkpoint(exp)
    stale = set(os.listdir(exp))  # the first kill may have left a temporary file too
    names = run_and_kill(binary, binary.command(exp, steps) + binary.resume_args(exp), exp,
                         during_a_new_write(stale), save_seconds, tmp_path / "kill2.log")
    left = [n for n in names - stale if is_save_in_progress(n)]
    assert left and all((exp / n).exists() for n in left), "the second kill did not land during a checkpoint write"
    second_resume = newest_checkpoint(exp)
    run_to_end(binary, binary.command(exp, steps) + binary.resume_args(exp))

    assert_same_weights(expected, binary.final_weights(exp, steps), atol)
    assert temp_files(exp) == [], temp_files(exp)
    return {"delay": delay, "resumed_from": (first_resume, second_resume), "killed_during": left}
