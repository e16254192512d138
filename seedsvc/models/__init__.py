"""SeedSVC models: V2 CFM/DiT/length regulator, F0 quantiser, F0 encoder and cross-attention.

>>> cfm = load_v2_cfm("config.yaml", "cfm_small.pth")            # doctest: +SKIP
>>> v = cfm.estimator(x, prompt_x, x_lens, t, style, cond)          # doctest: +SKIP
>>> mel = cfm.inference(mu, x_lens, prompt, style, 30, 1.0, [0.7, 0.7])  # doctest: +SKIP
"""

from seedsvc.models.cfm import CFM, sway_time_grid
from seedsvc.models.dit import DiT
from seedsvc.models.f0 import PretrainedF0Encoder, f0_to_coarse, f0_to_frames, load_v1_f0_embedding
from seedsvc.models.f0_attention import F0CrossAttention
from seedsvc.models.length_regulator import InterpolateRegulator
from seedsvc.models.loading import (
    build_cfm,
    build_length_regulator,
    load_v2_cfm,
    load_v2_length_regulator,
    read_config,
    read_net,
)

__all__ = [
    "CFM",
    "DiT",
    "F0CrossAttention",
    "InterpolateRegulator",
    "PretrainedF0Encoder",
    "build_cfm",
    "build_length_regulator",
    "f0_to_coarse",
    "f0_to_frames",
    "load_v1_f0_embedding",
    "load_v2_cfm",
    "load_v2_length_regulator",
    "read_config",
    "read_net",
    "sway_time_grid",
]
