"""What every Shirabe binary shares: one option vocabulary, logging and one-line errors.

A binary's ``main`` raises :class:`InputError` for mistakes the user can fix
(missing file, bad field, wrong sample rate). :func:`run_main` turns that into a
single ``error: ...`` line on stderr and exit status 2, instead of a traceback.

The option vocabulary (every binary spells a concept the same way):

* booleans take a value, icefall style: ``--flag true|false|1|0`` (:func:`str2bool`,
  :func:`add_bool_argument`);
* ``--device {auto,cpu,cuda,cuda:N,mps}``, default ``auto`` = cuda, then mps, then cpu
  (:func:`add_device_argument`, :func:`resolve_device`);
* ``--trust-checkpoint BOOL`` (default false): allow checkpoints that need pickle
  (:func:`add_trust_checkpoint_argument`);
* ``--num-threads N``: intra-op CPU threads (:func:`add_num_threads_argument`);
* ``--verbose BOOL``: debug logging.

This module imports torch only inside :func:`resolve_device`, so text tools start fast.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"


class InputError(Exception):
    """A mistake in the user's input; its message is printed as one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: ...; see --help``), exit 2.

    Help shows every option's default (booleans as true/false; options whose help
    already says "default" are left as written) and keeps the description's line breaks.
    """

    class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        def _get_help_string(self, action):
            text = action.help or ""
            if action.required or "default" in text or any(action.default is v for v in (None, argparse.SUPPRESS)):
                return text
            if isinstance(action.default, bool):
                if action.option_strings and action.nargs == 0:  # a bare switch (only --help/--version remain)
                    return text
                return f"{text} (default: {'true' if action.default else 'false'})"
            return text + " (default: %(default)s)"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", self._Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


TRUE_WORDS = ("1", "true", "yes", "y", "t")
FALSE_WORDS = ("0", "false", "no", "n", "f")


def str2bool(value: str | bool) -> bool:
    """Parse ``true/false, 1/0, yes/no, y/n, t/f`` (any case) for ``--flag VALUE`` options."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, 1/0), got '{value}'")


def add_bool_argument(parser, flag: str, default: bool, help: str, **kwargs) -> argparse.Action:
    """``--flag BOOL`` with :func:`str2bool`; the help shows the default as true/false."""
    return parser.add_argument(flag, type=str2bool, default=default, metavar="BOOL",
                               help=help, **kwargs)


DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def device_spec(value: str) -> str:
    """argparse type of ``--device``: one of auto, cpu, cuda, cuda:N, mps."""
    v = str(value).strip().lower()
    if not DEVICE_PATTERN.match(v):
        raise argparse.ArgumentTypeError(f"invalid device '{value}' (use one of: {DEVICE_CHOICES})")
    return v


def add_device_argument(parser, what: str = "the model") -> argparse.Action:
    """``--device {auto,cpu,cuda,cuda:N,mps}`` (default auto)."""
    return parser.add_argument(
        "--device", type=device_spec, default="auto", metavar="DEVICE",
        help=f"where {what} runs: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")


def resolve_device(spec: str = "auto", local_rank: int | None = None):
    """The torch device for a ``--device`` value.

    ``auto`` picks CUDA when available (``cuda:<local_rank>`` for a DDP process), then
    Apple's MPS, then the CPU. ``cuda`` under DDP also takes the process's local rank.
    Asking for a device this machine lacks is an :class:`InputError`.
    """
    import torch

    spec = device_spec(spec)
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            spec = "mps"
        else:
            spec = "cpu"
    if spec == "cuda" and local_rank is not None:
        spec = f"cuda:{local_rank}"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available on this machine (use --device auto or cpu)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif spec == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise InputError("--device mps: MPS is not available on this machine (use --device auto or cpu)")
    return torch.device(spec)


def add_trust_checkpoint_argument(parser) -> argparse.Action:
    """``--trust-checkpoint BOOL`` (default false)."""
    return add_bool_argument(parser, "--trust-checkpoint", False,
                             "allow checkpoints that need pickle to load (only files you trust)")


def add_num_threads_argument(parser, default: int = 1, what: str = "PyTorch") -> argparse.Action:
    """``--num-threads N``: intra-op CPU threads."""
    return parser.add_argument("--num-threads", type=int, default=default, metavar="N",
                               help=f"intra-op CPU threads for {what}")


def add_verbose_argument(parser) -> argparse.Action:
    """``--verbose BOOL`` (default false): debug logging."""
    return add_bool_argument(parser, "--verbose", False, "debug logging")


def get_logger(name: str) -> logging.Logger:
    """A logger named by module; under ``python -m pkg.bin.x`` (``__name__ == "__main__"``)
    it is named ``pkg.bin.x``, not ``__main__``."""
    if name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:
            name = spec.name
    return logging.getLogger(name)


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
