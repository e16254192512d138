"""Fixtures for the tests of utils/ (parse_options.sh, run.pl, queue.pl, slurm.pl)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "utils"
STANDINS = Path(__file__).resolve().parent / "standins"


# The footer utils/queue.pl and utils/slurm.pl write at the end of a task's log.
FINISHED = re.compile(r"# Accounting: time=\d+ threads=(\d+)\n# Finished at .+ with status (\d+)\n$")


@dataclass
class Cluster:
    """A submission directory plus stand-in scheduler tools first on PATH."""

    workdir: Path
    state: Path
    env: dict[str, str]

    def run(self, prog: str, *args: str, timeout: float = 30, **extra_env: str):
        env = dict(self.env, **extra_env)
        return subprocess.run(
            [str(UTILS / prog), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, prog: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [str(UTILS / prog), *args],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def argv(self, tool: str) -> list[str]:
        """Arguments of the last call of a stand-in tool."""
        path = self.state / f"{tool}.argv"
        return path.read_text().splitlines() if path.exists() else []

    def called(self, tool: str) -> bool:
        return (self.state / f"{tool}.argv").exists()

    def passed(self, tool: str, *flags: str) -> bool:
        """Whether the last call of ``tool`` had ``flags`` as consecutive arguments."""
        argv, n = self.argv(tool), len(flags)
        return any(argv[i : i + n] == list(flags) for i in range(len(argv) - n + 1))

    def finished(self, rel: str) -> tuple[int, int]:
        """(threads, status) from the footer of the task log at ``rel``."""
        text = self.log(rel)
        match = FINISHED.search(text)
        assert match, text
        return int(match.group(1)), int(match.group(2))

    def log(self, rel: str) -> str:
        return (self.workdir / rel).read_text()


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    workdir = tmp_path / "recipe"
    workdir.mkdir()
    (workdir / "path.sh").write_text("export FROM_PATH_SH=yes\n")
    state = tmp_path / "scheduler"
    env = dict(os.environ)
    env.update(
        PATH=f"{STANDINS}{os.pathsep}{env.get('PATH', '')}",
        STANDIN_STATE=str(state),
        SHIRABE_GRID_GRACE="0.3",
        SHIRABE_GRID_POLL_MAX="0.2",
    )
    return Cluster(workdir, state, env)


@pytest.fixture
def run_pl(tmp_path: Path):
    """Call utils/run.pl in tmp_path."""

    def call(*args: str, timeout: float = 30):
        return subprocess.run(
            [str(UTILS / "run.pl"), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return call
