"""The SongBloom model (MVSA-DiTAR): config, training forward, generation and strict loading.

- :func:`load_config` reads a released-schema yaml into a :class:`SongBloomConfig`
  (:func:`tiny_config` / :func:`full_config` build one in code);
- :class:`SongBloom` = ``.vae`` (the Oobleck VAE, ``vae.vae.*``) + ``.model``
  (:class:`MVSADiTAR`, ``model.*``); :func:`load_model` loads a ``.pt`` strictly;
- :meth:`MVSADiTAR.forward` is the training forward (:class:`DiTAROutput`);
  :func:`apply_condition_dropout` nulls conditions for classifier-free guidance training;
- :meth:`SongBloom.generate` samples a song, :meth:`SongBloom.decode` renders it.
"""

from songbloom.models.conditioners import (
    NULL_LYRIC,
    ConditionInputs,
    ConditionProvider,
    LyricBatch,
    LyricConditioner,
    PromptConditioner,
    apply_condition_dropout,
)
from songbloom.models.config import (
    InferenceConfig,
    ModelConfig,
    SongBloomConfig,
    config_dict,
    full_config,
    load_config,
    tiny_config,
)
from songbloom.models.ditar import (
    DIT_LINEARS,
    LM_LINEARS,
    LYRIC_EMBEDDING,
    DiTAROutput,
    GenerationTrace,
    MVSADiTAR,
)
from songbloom.models.loading import load_model
from songbloom.models.songbloom import SongBloom, SongBloomVAE

__all__ = [
    "DIT_LINEARS",
    "LM_LINEARS",
    "LYRIC_EMBEDDING",
    "NULL_LYRIC",
    "ConditionInputs",
    "ConditionProvider",
    "DiTAROutput",
    "GenerationTrace",
    "InferenceConfig",
    "LyricBatch",
    "LyricConditioner",
    "MVSADiTAR",
    "ModelConfig",
    "PromptConditioner",
    "SongBloom",
    "SongBloomConfig",
    "SongBloomVAE",
    "apply_condition_dropout",
    "config_dict",
    "full_config",
    "load_config",
    "load_model",
    "tiny_config",
]
