#!/usr/bin/env python3
"""queue.pl: submit the tasks to Sun/Univa/Son of GridEngine with qsub (Kaldi calling convention; see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from parallel.sge import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
