"""What every Shirabe binary shares: logging set-up and one-line errors.

A binary's ``main`` raises :class:`InputError` for mistakes the user can fix
(missing file, bad field, wrong sample rate). :func:`run_main` turns that into a
single ``error: ...`` line on stderr and exit status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"


class InputError(Exception):
    """A mistake in the user's input; its message is printed as one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: ...; see --help``), exit 2.

    Help shows every option's default (``ArgumentDefaultsHelpFormatter``) and keeps
    the description's line breaks.
    """

    class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        def _get_help_string(self, action):
            if action.required or any(action.default is v for v in (None, argparse.SUPPRESS, False)):
                return action.help
            return super()._get_help_string(action)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", self._Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def setup_logging(verbose: bool = False, log_file: str | Path | None = None) -> None:
    """Log to stderr (and ``log_file`` when given) at INFO, or DEBUG if ``verbose``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=LOG_FORMAT,
        handlers=handlers,
        force=True,
    )


def run_main(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Call ``main(argv)`` and exit: 0 on success, 2 with one line on InputError."""
    prog = Path(sys.argv[0]).name
    try:
        status = main(argv)
    except InputError as e:
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{prog}: error: {first_line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(int(status or 0))
