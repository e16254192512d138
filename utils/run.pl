#!/usr/bin/env python3
"""run.pl: run the tasks on this machine (Kaldi calling convention; see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from parallel.local import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
