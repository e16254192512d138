"""bench/music_codecs.py on the tiny fixtures: the speed and memory measurements run in seconds,
return what the tables need, and the memory measurement sees the difference chunking makes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("music_codecs", REPO / "bench" / "music_codecs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_speed_rows_of_tiny_models(bench, single_torch_thread):
    args = bench.get_parser().parse_args(["--num-threads", "1", "--muq-seconds", "3", "--vae-seconds", "2",
                                          "--warmup-seconds", "2", "--repeats", "2", "--retries", "0"])
    models = {m: bench.build(m, "tiny") for m in ("muq", "vae")}
    rows = bench.speed_rows(args, "tiny", models)
    assert [(r.op, r.threads, r.seconds) for r in rows] == [("muq", 1, 3.0), ("vae-encode", 1, 2.0),
                                                            ("vae-decode", 1, 2.0)]
    for r in rows:
        assert r.size == "tiny"
        assert 0.0 < r.wall < 30.0 and 0.0 < r.cpu
        assert r.per_minute == pytest.approx(r.wall * 60.0 / r.seconds)
        assert r.load >= 0.0 and (r.others is None or r.others >= 0.0)
    table = bench.speed_table(rows)
    assert len(table) == 2 + 3 and table[2].startswith("| tiny | muq | 30 s windows | 1 | 3 |")


def test_memory_of_chunked_and_unchunked_encode(bench):
    # 20 s of the tiny VAE: unchunked, the first encoder block works on (1, 16, 960000) float32
    # activations, 58.6 MiB each, and a residual unit holds its input and output at once; chunked,
    # the windows are 5.12 s long (15 MiB activations), so the call needs far less.
    whole = bench.memory_point("vae-encode", "tiny", 20.0, chunked=False, threads=1)
    chunked = bench.memory_point("vae-encode", "tiny", 20.0, chunked=True, threads=1)
    for r in (whole, chunked):
        assert r["output_shape"] == [1, 8, 120000]
        assert r["baseline_mib"] > 50.0  # torch and the model are loaded before the call
        assert r["peak_mib"] == pytest.approx(r["baseline_mib"] + r["increase_mib"])
    assert whole["peak_reset"], "this Linux allows resetting the peak RSS (/proc/self/clear_refs)"
    assert whole["increase_mib"] > 2 * 58.6
    assert chunked["increase_mib"] < 0.75 * whole["increase_mib"]


def test_fit_line(bench):
    intercept, slope = bench.fit_line([(10.0, 150.0), (20.0, 250.0), (30.0, 350.0)])
    assert intercept == pytest.approx(50.0) and slope == pytest.approx(10.0)
    assert bench.fit_line([(30.0, 80.0)]) == (80.0, 0.0)


def test_full_memory_table_extrapolates(bench):
    points = [{"op": "vae-encode", "chunked": False, "seconds": s, "increase_mib": 100.0 + 40.0 * s,
               "baseline_mib": 900.0, "peak_reset": True, "threads": 1} for s in (10.0, 20.0)]
    lines, predicted = bench.full_memory_table(points, [30.0, 300.0])
    assert predicted["vae-encode", False] == {30.0: pytest.approx(1300.0), 300.0: pytest.approx(12100.0)}
    assert lines[2] == "| vae-encode | unchunked | 1 | 10: 500, 20: 900 | 100 + 40.00·s | 1,300 | 12,100 | 900 – 900 |"


def test_chunked_memory_is_flat_plus_the_output(bench):
    # chunked decode: 900, 880, 920 MiB at 10, 20, 30 s, output (1, 2, 48000·s) float32 = 0.3662 MiB/s
    points = [{"op": "vae-decode", "chunked": True, "seconds": s, "increase_mib": inc,
               "output_shape": [1, 2, 48000 * int(s)]} for s, inc in ((10.0, 900.0), (20.0, 880.0), (30.0, 920.0))]
    level, slope = bench.fit_memory(points, chunked=True)
    assert slope == pytest.approx(384000 / 2 ** 20)
    assert level == pytest.approx(900.0 - 20.0 * 384000 / 2 ** 20)
    # unchunked points take the least-squares line: here 100 + 40·s
    line = [dict(p, chunked=False, increase_mib=100.0 + 40.0 * p["seconds"]) for p in points]
    assert bench.fit_memory(line, chunked=False) == (pytest.approx(100.0), pytest.approx(40.0))


def test_merge_keeps_the_quieter_speed_row_and_the_newer_memory_point(bench):
    def row(wall, others):
        return bench.SpeedRow("full", "muq", 1, 40.0, wall, wall, 0.5, others)

    results = {"speed": [row(30.0, 0.02)], "memory": [{"size": "tiny", "op": "muq", "chunked": True,
                                                       "seconds": 30.0, "increase_mib": 70.0}]}
    bench.merge_results(results, [row(45.0, 1.10)], [{"size": "tiny", "op": "muq", "chunked": True,
                                                       "seconds": 30.0, "increase_mib": 75.0}])
    assert [r.wall for r in results["speed"]] == [30.0]  # the busier re-run is dropped
    assert [p["increase_mib"] for p in results["memory"]] == [75.0]
    bench.merge_results(results, [row(29.0, 0.01)], [])
    assert [r.wall for r in results["speed"]] == [29.0]


def test_bad_option_is_one_line_error(bench):
    with pytest.raises(bench.InputError, match="--vae-seconds must be at least 2 s"):
        bench.check_args(bench.get_parser().parse_args(["--vae-seconds", "1"]))
