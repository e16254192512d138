"""One training process: its device, threads, process group, logging, and the experiment record.

:func:`setup_rank` is the first thing every training entry point does in each
process (see :func:`shirabe.train.dist.launch`). Rank 0 then calls
:func:`describe_experiment`, so the experiment directory says how it was made:
the exact command line, the git revision of the source tree, the versions of the
main packages, and whatever files the package adds (model config, token table).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import logging
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from shirabe.cli import LOG_FORMAT, resolve_device
from shirabe.train.dist import setup_dist

logger = logging.getLogger(__name__)

#: packages whose versions every experiment records (those installed)
RECORDED_PACKAGES = ("torch", "torchaudio", "lhotse", "peft", "transformers", "accelerate", "numpy")
COMMANDS_FILE = "train-commands.txt"


def setup_rank_logging(exp_dir: Path, rank: int, world_size: int, log_file: Path | None = None,
                       verbose: bool = False) -> Path:
    """Log to stderr (rank 0 at INFO, other ranks warnings only) and to a file.

    The file is ``log_file`` or ``EXP/log/log-train-<date-time>``; under DDP each rank
    writes its own (``-<rank>`` added to the name) and every line starts ``(rank/world_size)``.
    Returns the file's path.
    """
    if log_file is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
        log_file = Path(exp_dir) / "log" / f"log-train-{stamp}"
    log_file = Path(log_file)
    if world_size > 1:
        log_file = log_file.with_name(f"{log_file.stem}-{rank}{log_file.suffix}")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter((f"({rank}/{world_size}) " if world_size > 1 else "") + LOG_FORMAT)
    level = logging.DEBUG if verbose else logging.INFO
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level if rank == 0 else logging.WARNING)
    handlers = [console, logging.FileHandler(log_file, encoding="utf-8")]
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    return log_file


def setup_rank(rank: int, world_size: int, args, local_rank: int | None = None, use_env: bool = False,
               log_file: Path | None = None) -> tuple[torch.device, int]:
    """Device, CPU threads, process group, experiment dir and logging of one training process.

    Reads ``args.device`` (resolved with :func:`shirabe.cli.resolve_device`: ``auto`` is
    ``cuda:<local_rank>`` under DDP), ``args.num_threads``, ``args.master_port``,
    ``args.exp_dir`` and ``args.verbose`` (if present). Returns ``(device, local_rank)``.
    """
    local_rank = rank if local_rank is None else local_rank
    device = resolve_device(args.device, local_rank)
    torch.set_num_threads(max(1, int(args.num_threads)))
    setup_dist(rank, world_size, getattr(args, "master_port", 12356), device, use_env=use_env)
    exp_dir = Path(args.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    setup_rank_logging(exp_dir, rank, world_size, log_file, verbose=bool(getattr(args, "verbose", False)))
    return device, local_rank


def command_line(module: str, argv: list[str] | None = None) -> str:
    """The command that started this run: ``python -m module args`` (``argv`` default: ``sys.argv[1:]``)."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return shlex.join([sys.executable, "-m", module, *args])


def git_revision(path: Path | None = None) -> str | None:
    """``<commit>`` (plus ``-modified`` with uncommitted changes to tracked files) of the git
    checkout holding ``path`` (default: this source tree); None outside a checkout."""
    path = Path(path) if path is not None else Path(__file__).resolve().parent
    if shutil.which("git") is None:
        return None

    def git(*cmd):
        return subprocess.run(["git", "-C", str(path), *cmd], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    rev = head.stdout.strip()
    return rev + ("-modified" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def package_versions(names=RECORDED_PACKAGES) -> dict[str, str]:
    """``{package: version}`` of the installed ones among ``names``, plus python's."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def describe_experiment(exp_dir: Path, module: str, argv: list[str] | None = None,
                        files: dict[str, str | Path] | None = None, commands_file: str = COMMANDS_FILE) -> None:
    """Record how the run in ``exp_dir`` was made (rank 0 only).

    Appends to ``EXP/<commands_file>`` (one entry per start, resumptions included)::

        # 2026-01-02T03:04:05 git 3f2a...c1 python 3.12.3 torch 2.6.0 lhotse 1.30.0 ...
        /path/to/python -m package.bin.train --exp-dir ...

    and writes ``files`` into the experiment dir: ``{name: text}`` is written as is,
    ``{name: Path}`` is copied (unless it already is that file).
    """
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        dst = exp_dir / name
        if isinstance(content, Path):
            if content.resolve() != dst.resolve():
                shutil.copyfile(content, dst)
        else:
            dst.write_text(content, encoding="utf-8")
    facts = [datetime.datetime.now().isoformat(timespec="seconds")]
    rev = git_revision()
    facts.append(f"git {rev}" if rev else "git none")
    facts += [f"{k} {v}" for k, v in package_versions().items()]
    with open(exp_dir / commands_file, "a", encoding="utf-8") as f:
        f.write("# " + " ".join(facts) + "\n")
        f.write(command_line(module, argv) + "\n")
