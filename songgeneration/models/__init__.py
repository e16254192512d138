"""LeLM (SongGeneration's language model): config, decoders, conditions, loading and generation."""

from songgeneration.models.config import LeLMConfig, config_from_dict, load_config
from songgeneration.models.generation import (
           GenerationResult,
           SamplingParams,
           generate,
           null_conditions,
           trim_at_eos,
)
from songgeneration.models.lelm import Conditions, LeLM, LMOutput
from songgeneration.models.loading import attach_tokenizer, build_lelm, load_lelm, save_lelm
from songgeneration.models.pattern import DelayPattern

__all__ = ["Conditions", "DelayPattern", "GenerationResult", "LMOutput", "LeLM", "LeLMConfig", "SamplingParams",
           "attach_tokenizer", "build_lelm", "config_from_dict", "generate", "load_config", "load_lelm",
           "null_conditions", "save_lelm", "trim_at_eos"]
