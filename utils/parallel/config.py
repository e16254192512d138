"""Scheduler config files (``conf/queue.conf``, ``conf/slurm.conf``).

Format, one directive per line, ``#`` starting a comment::

    command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
    option mem=* -l mem_free=$0,ram_free=$0    # any value; $0 is replaced by it
    option mem=0                               # this exact value: add nothing
    option gpu=0 -q all.q                      # exact values win over name=*
    option gpu=* -l gpu=$0 -q g.q
    default gpu=0                              # used when --gpu is not given

``--name value`` on the command line (``--num-threads 4`` is ``num_threads``) is looked up
here and replaced by the flags on the matching line; a name the file does not describe is an
error.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

ANY = "*"
COMMENT = re.compile(r"(^|\s)#.*$")
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)=(\S*)")


class ConfigError(Exception):
    """A bad config file or an option it does not describe."""


@dataclass
class SchedulerConfig:
    source: str
    command: list[str] = field(default_factory=list)
    options: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """name -> value (or ``*``) -> flag templates."""
    defaults: dict[str, str] = field(default_factory=dict)

    def describes(self, name: str) -> bool:
        return name in self.options

    def flags_for(self, name: str, value: str) -> list[str]:
        """The scheduler flags for ``--name value``; raises ConfigError if not described."""
        choices = self.options.get(name)
        if choices is None:
            raise ConfigError(
                f"option --{name.replace('_', '-')} is not described in {self.source} "
                f"(add a line 'option {name}=* <flags using $0>')"
            )
        if value in choices:
            template = choices[value]
        elif ANY in choices:
            template = choices[ANY]
        else:
            known = ", ".join(sorted(choices))
            raise ConfigError(
                f"no line for --{name.replace('_', '-')} {value} in {self.source} (it has: {known})"
            )
        return [token.replace("$0", value) for token in template]


def _name(raw: str) -> str:
    return raw.replace("-", "_")


def parse_config(text: str, source: str) -> SchedulerConfig:
    config = SchedulerConfig(source=source)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = COMMENT.sub("", raw).strip()
        if not line:
            continue
        where = f"{source}:{lineno}"
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            tokens = shlex.split(rest)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}: {raw.strip()}") from None
        if keyword == "command":
            if not tokens:
                raise ConfigError(f"{where}: 'command' needs the submission command")
            config.command = tokens
            continue
        if keyword not in ("option", "default") or not tokens:
            raise ConfigError(f"{where}: cannot parse '{raw.strip()}'")
        match = ASSIGNMENT.fullmatch(tokens[0])
        if not match:
            raise ConfigError(f"{where}: expected name=value after '{keyword}', got '{tokens[0]}'")
        name, value = _name(match.group(1)), match.group(2)
        if keyword == "default":
            if len(tokens) != 1 or value == ANY or not value:
                raise ConfigError(f"{where}: 'default' takes exactly one name=value")
            config.defaults[name] = value
        else:
            config.options.setdefault(name, {})[value] = tokens[1:]
    if not config.command:
        raise ConfigError(f"{source}: no 'command' line")
    return config


def load_config(explicit: str | None, default_path: str, builtin: str) -> SchedulerConfig:
    """``--config FILE`` if given, else ``default_path`` if it exists, else the built-in text."""
    path = explicit
    if path is None and os.path.isfile(default_path):
        path = default_path
    if path is None:
        return parse_config(builtin, "the built-in defaults")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, path)
