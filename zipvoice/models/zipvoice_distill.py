"""ZipVoiceDistill: the flow-distilled ZipVoice whose decoder takes the guidance scale.

Same modules as :class:`ZipVoice` plus ``fm_decoder.guidance_scale_embed``; the
sampler feeds ``w`` to the decoder instead of doubling the batch, so one decoder
pass per step (defaults: 8 steps, ``w = 3``).
"""

from __future__ import annotations

from zipvoice.models.solver import DistillEulerSolver
from zipvoice.models.zipformer import TTSZipformer
from zipvoice.models.zipvoice import ZipVoice


class ZipVoiceDistill(ZipVoice):
    solver_class = DistillEulerSolver

    def _build_fm_decoder(self, feat_dim: int, **kwargs) -> TTSZipformer:
        return TTSZipformer(
            in_dim=feat_dim * 3, out_dim=feat_dim, use_time_embed=True, use_guidance_scale_embed=True, **kwargs
        )
