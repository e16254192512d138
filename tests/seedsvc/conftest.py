"""Shared fixtures of the SeedSVC tests: upstream-made tiny V2 checkpoint and V1 F0 embedding."""

import numpy as np
import pytest
import torch
from seedsvc_testlib import V1_F0, V2_TINY


@pytest.fixture(scope="session")
def v2_cases():
    with np.load(V2_TINY / "cases.npz", allow_pickle=False) as z:
        return {k: torch.from_numpy(z[k]) for k in z.files}


@pytest.fixture(scope="session")
def f0_cases():
    with np.load(V1_F0 / "cases.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def v2_cfm():
    from seedsvc.models import load_v2_cfm

    return load_v2_cfm(V2_TINY / "config.yaml", V2_TINY / "cfm.pth")
