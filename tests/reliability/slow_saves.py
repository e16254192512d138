"""Run a module as ``__main__`` with ``torch.save`` writing slowly, so that a test can kill the process
while a checkpoint is being written. The bytes written are exactly those ``torch.save`` makes; they
reach the file in 32 pieces over SECONDS. The binaries themselves are not changed.

    python tests/reliability/slow_saves.py SECONDS -m MODULE [ARGS...]
"""

from __future__ import annotations

import io
import os
import runpy
import sys
import time

import torch

PIECES = 32


def main() -> None:
    seconds, dash_m, module, *args = sys.argv[1:]
    if dash_m != "-m":
        sys.exit("usage: slow_saves.py SECONDS -m MODULE [ARGS...]")
    pause = float(seconds) / PIECES
    real_save = torch.save

    def slow_save(obj, f, *a, **kw):
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as fh:
                return slow_save(obj, fh, *a, **kw)
        buffer = io.BytesIO()
        real_save(obj, buffer, *a, **kw)
        data = buffer.getvalue()
        step = len(data) // PIECES + 1
        for start in range(0, len(data), step):
            f.write(data[start : start + step])
            f.flush()
            time.sleep(pause)

    torch.save = slow_save
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
