"""bench/songgeneration_generation.py and bench/songgeneration_lora_memory.py at a tiny size: rows and sections."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FULL_KEYS = REPO / "tests" / "fixtures" / "songgen_lelm_full_keys.tsv"


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def section_rows(text: str, heading: str, first_cell: str) -> list[list[str]]:
    section = text[text.index(heading):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    return [[c.strip() for c in ln.split("|")[1:-1]] for ln in section.splitlines()
            if ln.startswith(f"| {first_cell} ")]


def test_generation_rows_and_section(tmp_path, single_torch_thread):
    bench = load_bench("songgeneration_generation")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n", encoding="utf-8")
    bench.main(["--sizes", "tiny", "--threads", "1", "--frames", "8", "--update", str(doc)])
    text = doc.read_text(encoding="utf-8")
    assert "## Other\n\nkept" in text
    rows = section_rows(text, bench.SECTION, "tiny")
    assert [r[5] for r in rows] == ["on", "off"]
    for cells in rows:
        # lyric table 151,659 rows + description table 151,646 rows, 8 wide
        assert cells[2].startswith("2.4 (")
        fps, rtf = float(cells[6]), float(cells[7])
        assert fps > 0
        assert abs(rtf - 25.0 / fps) < 0.002 + 0.01 * rtf  # 25 frames per second of audio


def test_lora_memory_rows_and_section(tmp_path, single_torch_thread):
    bench = load_bench("songgeneration_lora_memory")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n", encoding="utf-8")
    bench.main(["--sizes", "32x1+1,64x1+1", "--seconds", "1", "2", "--checkpointing", "on", "--conditions", "tiny",
                "--fresh-process", "false", "--update", str(doc)])
    text = doc.read_text(encoding="utf-8")
    assert "## Other\n\nkept" in text
    steps = [r for r in section_rows(text, bench.SECTION, "on") if len(r) == 10]
    assert [(r[1], r[5], r[6]) for r in steps] == [("32", "1", "25"), ("32", "2", "50"), ("64", "1", "25"),
                                                   ("64", "2", "50")]
    # S = prefix (16 lyric + 8 description + 27 prompt rows) + T + 1 + delay 3 + 1
    assert [r[7] for r in steps] == ["81", "106", "81", "106"]
    peaks = [float(r[8]) for r in steps]
    assert peaks[1] > peaks[0] > 0 and peaks[3] > peaks[2] > 0
    logits = [r for r in section_rows(text, bench.SECTION, "1") + section_rows(text, bench.SECTION, "2")
              if len(r) == 5]
    # float32 [1, 3, T + 1, 16385] in MiB: 3 * 26 * 16385 * 4 / 2**20 = 4.9, 3 * 51 * 16385 * 4 / 2**20 = 9.6
    assert [r[2] for r in logits] == ["5", "10"]
    assert all(float(r[3]) >= float(r[2]) for r in logits)  # the loss part holds at least that tensor
    released = sum(int(line.split("\t")[2]) for line in FULL_KEYS.read_text(encoding="utf-8").splitlines()[1:])
    large = section_rows(text, bench.SECTION, "v2-large")
    assert large and all(r[1] == f"{released / 1e9:.2f}" for r in large)
    assert "Verdict: not enough points" in text  # no checkpointing-off points were measured
