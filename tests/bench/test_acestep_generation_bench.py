"""bench/acestep_generation.py at the tiny size: one row per (threads, steps), written into its section."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("acestep_generation", REPO / "bench" / "acestep_generation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_rows_and_section(tmp_path, single_torch_thread):
    bench = load_bench()
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n", encoding="utf-8")
    bench.main(["--sizes", "tiny", "--steps", "2", "4", "--threads", "1", "--seconds", "1", "--update", str(doc)])
    text = doc.read_text(encoding="utf-8")
    assert "## Other\n\nkept" in text
    section = text[text.index(bench.SECTION):]
    rows = [ln for ln in section.splitlines() if ln.startswith("| tiny")]
    assert [r.split("|")[3].strip() for r in rows] == ["2", "4"]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        denoise, decode, rtf = float(cells[3]), float(cells[5]), float(cells[6])
        assert denoise > 0 and decode > 0
        assert abs(rtf - (denoise + decode) / 1.0) < 0.02  # cells are rounded to 0.01
