"""bench/acestep_lora_memory.py at a tiny size: the step and DCAE measurements run in seconds, the LoRA counts
are the hand-derived ones, and the fit and the estimate arithmetic recover known numbers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 ** 2


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("acestep_lora_memory", REPO / "bench" / "acestep_lora_memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_step_and_encode_points(bench, single_torch_thread):
    p = bench.step_point(seconds=1.0, width=64, layers=1, checkpointing=True, lyric="tiny")
    # rank 16 on one block's attn + cross_attn to_q/to_k/to_v/to_out.0 (64 -> 64: 16 x 128 each) and the
    # tiny lyric encoder's linear_q/k/v (32 -> 32: 16 x 64 each)
    assert p["trainable"] == 8 * 16 * 128 + 3 * 16 * 64 == 19456
    assert p["frames"] == 10  # int(1 s x 44100 / 4096)
    assert p["step"]["rss_mib"] >= 0.0 and p["step"]["wall"] > 0.0 and p["step"]["peak_reset"]
    assert p["step"]["tensor_mib"] > 0.0
    lyric = bench.lyric_point(width=64, tokens=20)
    assert lyric["trainable"] == 6 * 3 * 16 * 2048  # 6 blocks x linear_q/k/v (1024 -> 1024: 16 x 2048 each)
    assert lyric["step"]["tensor_mib"] > 0.0
    d = bench.dcae_point(1.0, released=False)
    assert d["kind"] == "dcae" and d["step"]["rss_mib"] >= 0.0 and d["step"]["wall"] > 0.0


def test_tensor_tracker_counts_new_storages_until_they_are_freed(bench):
    import torch

    x = torch.ones(1000, 1000)  # 4,000,000 bytes, existing: never counted
    with bench.PeakTensorMemory([x]) as tracker:
        x.mul_(2.0)  # in place on an existing tensor: nothing new
        assert tracker.current == 0
        y = x @ x  # +4 MB
        z = y + 1  # +4 MB: 8 MB live
        v = z[:10]  # a view: the same storage
        del y  # -4 MB
        w = z * 2  # +4 MB: 8 MB again
        assert tracker.current == 8_000_000
        del z, v, w
        assert tracker.current == 0
    assert tracker.peak == 8_000_000


def test_fit_recovers_a_known_activation_model(bench):
    coef = np.array([50.0, 0.1, 2e-5, 3e-4, 0.2])
    points = []
    for width, layers in bench.SIZES:
        for seconds in (10.0, 30.0, 60.0):
            frames = bench.frames_of(seconds)
            mib = coef[0] + coef[1] * width + coef[2] * frames * width * layers + coef[3] * frames * width \
                + coef[4] * frames
            points.append({"frames": frames, "width": width, "layers": layers, "step": {"tensor_mib": mib}})
    np.testing.assert_allclose(bench.fit_activations(points), coef, rtol=1e-6, atol=1e-9)
    # 60 s at the released size: 646 frames, D 2560, N 24
    want = 50 + 0.1 * 2560 + 2e-5 * 646 * 2560 * 24 + 3e-4 * 646 * 2560 + 0.2 * 646
    assert bench.predict(coef, 646, 2560, 24) == pytest.approx(want)


def test_estimate_adds_weights_lora_state_and_the_larger_peak(bench):
    steps = [{"checkpointing": True, "frames": bench.frames_of(s), "width": w, "layers": n,
              "step": {"tensor_mib": 1024.0}} for w, n in bench.SIZES for s in (10.0, 30.0, 60.0)]
    dcae = [{"seconds": s, "step": {"tensor_mib": 100.0 + 10.0 * s}} for s in (10.0, 30.0, 60.0)]
    counts = {"params": 512 * MIB, "lora16": 4 * MIB, "lora64": 16 * MIB, "dcae": 32 * MIB, "vocoder": 16 * MIB,
              "umt5": 16 * MIB}
    est = bench.estimates(steps, dcae, 100.0, counts, "tensor_mib", 60.0)
    e = est[(True, 16)]
    assert e["weights"] == 1024.0 and e["lora_state"] == 64.0
    assert e["activations"] == pytest.approx(1024.0)
    assert e["cached"] == pytest.approx(2112.0 + 100.0)  # + the lyric branch
    assert e["frozen"] == 256.0 and e["encode"] == pytest.approx(700.0)
    assert e["uncached"] == pytest.approx(2468.0)  # the 700 MiB encode peak stays under the step's 1124
    assert est[(True, 64)]["cached"] == pytest.approx(1024.0 + 256.0 + 1024.0 + 100.0)
    big = bench.estimates(steps, [{"seconds": s, "step": {"tensor_mib": 2000.0}} for s in (10.0, 60.0)], 100.0,
                          counts, "tensor_mib", 60.0)
    assert big[(True, 16)]["uncached"] == pytest.approx(2212.0 + 256.0 + (2000.0 - 1124.0))
