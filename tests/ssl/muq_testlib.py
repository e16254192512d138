"""Where the MuQ fixture lives (a uniquely named module: tests/ has several conftest.py).

``$SHIRABE_FIXTURES/muq_tiny`` when the variable is set, else ``tests/fixtures/muq_tiny``.
"""

import os
from pathlib import Path

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES") or Path(__file__).resolve().parent.parent / "fixtures")
MUQ_FIXTURE = FIXTURES / "muq_tiny"
