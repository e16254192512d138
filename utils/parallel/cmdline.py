"""The shared calling convention: ``<prog> [options] [JOB=1:N] log/foo.JOB.log program args...``."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JOB_RANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?")

# Arguments passed through as shell operators instead of being quoted, so that
# ``run.pl log prog1 args \| prog2 '>' out`` builds a pipeline as it does in Kaldi.
SHELL_OPERATORS = frozenset(
    {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>>", "&>", "2>&1", ">&2", "|&"}
)
ESCAPED_PIPE = "\\|"
# A free-standing ``\|`` word inside a single-string command, e.g. "echo a \| tr a b".
ESCAPED_PIPE_WORD = re.compile(r"(?<!\S)\\\|(?!\S)")


class UsageError(Exception):
    """A mistake on the command line; reported as one line on stderr and exit status 1."""


class HelpRequested(Exception):
    """``--help`` was given."""


@dataclass
class Invocation:
    """A parsed command line."""

    long_options: list[tuple[str, str]] = field(default_factory=list)
    """``--name value`` options in the order given; names use underscores (``max_jobs_run``)."""
    short_options: list[str] = field(default_factory=list)
    """Single-dash options and their values, verbatim (``-l hostname=b1 -V -pe smp 4``)."""
    config: str | None = None
    pe_threads: int | None = None
    """N from ``-pe <env> N``."""
    job_var: str | None = None
    start: int = 1
    end: int = 1
    log_template: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def is_array(self) -> bool:
        return self.job_var is not None

    @property
    def task_ids(self) -> range:
        return range(self.start, self.end + 1)

    @property
    def command_template(self) -> str:
        """The shell command, with the JOB variable still in place."""
        return render_command(self.command)

    def substitute(self, text: str, task: int) -> str:
        if self.job_var is None:
            return text
        return text.replace(self.job_var, str(task))

    def log_for(self, task: int) -> str:
        return self.substitute(self.log_template, task)

    def command_for(self, task: int) -> str:
        return self.substitute(self.command_template, task)

    def option(self, name: str) -> str | None:
        """The last value given for ``--name``, or None."""
        value = None
        for key, val in self.long_options:
            if key == name:
                value = val
        return value


def shell_word(arg: str) -> str:
    """Quote one argument for bash, keeping shell operators (and ``\\|``) as operators."""
    if arg in SHELL_OPERATORS:
        return arg
    if arg == ESCAPED_PIPE:
        return "|"
    return shlex.quote(arg)


def render_command(args: list[str]) -> str:
    """Turn the program and its arguments into one bash command string.

    A single argument is taken as a complete shell command (``run.pl log "a | b"``), with a
    free-standing ``\\|`` turned into a pipe. Several arguments are quoted one by one where
    they contain spaces or shell metacharacters; bare operators such as ``|`` and ``>``
    (written ``\\|`` and ``'>'`` by the caller) stay operators.
    """
    if len(args) == 1:
        return ESCAPED_PIPE_WORD.sub("|", args[0])
    return " ".join(shell_word(arg) for arg in args)


def _int_value(option: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"option {option} expects an integer, got '{value}'") from None
    if number < minimum:
        raise UsageError(f"option {option} must be at least {minimum}, got {number}")
    return number


def parse_invocation(argv: list[str]) -> Invocation:
    """Parse ``[options] [JOB=a:b] log command...``; raises UsageError or HelpRequested."""
    inv = Invocation()
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("-") and len(args[i]) > 1:
        arg = args[i]
        if arg == "--help":
            raise HelpRequested()
        if arg.startswith("--"):
            if "=" in arg:
                raise UsageError(f"invalid option {arg}: options must be of the form --name value")
            name = arg[2:].replace("-", "_")
            if not IDENTIFIER.fullmatch(name):
                raise UsageError(f"invalid option {arg}")
            if i + 1 >= len(args):
                raise UsageError(f"missing value for option {arg}")
            value = args[i + 1]
            i += 2
            if name == "config":
                inv.config = value
            else:
                inv.long_options.append((name, value))
        elif arg == "-tc":
            if i + 1 >= len(args):
                raise UsageError("missing value for option -tc")
            inv.long_options.append(("max_jobs_run", args[i + 1]))
            i += 2
        elif arg == "-V":
            inv.short_options.append(arg)
            i += 1
        elif arg == "-pe":
            if i + 2 >= len(args):
                raise UsageError("option -pe takes two values, e.g. -pe smp 4")
            inv.short_options += args[i : i + 3]
            inv.pe_threads = _int_value("-pe", args[i + 2], 1)
            i += 3
        else:
            if i + 1 >= len(args):
                raise UsageError(f"missing value for option {arg}")
            inv.short_options += args[i : i + 2]
            i += 2

    if i < len(args):
        match = JOB_RANGE.fullmatch(args[i])
        if match:
            inv.job_var = match.group(1)
            inv.start = int(match.group(2))
            inv.end = int(match.group(3) if match.group(3) is not None else match.group(2))
            i += 1
            if inv.start < 1:
                raise UsageError(
                    f"{args[i - 1]}: task indices start at 1 (GridEngine cannot number array tasks from 0)"
                )
            if inv.end < inv.start:
                raise UsageError(f"{args[i - 1]}: the end of the range is before its start")

    if len(args) - i < 2:
        raise UsageError("expected a log file and a command; see --help")
    inv.log_template = args[i]
    inv.command = args[i + 1 :]
    if inv.job_var is not None and inv.end > inv.start and inv.job_var not in inv.log_template:
        raise UsageError(
            f"array job {inv.job_var}={inv.start}:{inv.end} but the log file "
            f"{inv.log_template} does not contain {inv.job_var}; every task would write the same log"
        )
    return inv


def int_option(inv: Invocation, name: str, default: int, minimum: int = 0) -> int:
    """An integer ``--name`` option (default when absent)."""
    value = inv.option(name)
    if value is None:
        return default
    return _int_value("--" + name.replace("_", "-"), value, minimum)


def threads_of(inv: Invocation) -> int:
    """Threads per task, from ``--num-threads N`` or ``-pe smp N`` (1 when neither is given)."""
    threads = int_option(inv, "num_threads", 0, minimum=1)
    if threads:
        return threads
    return inv.pe_threads or 1


def ensure_parent_dir(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
