"""The ACE-Step v1 transformer: config, modules, strict loading and LoRA adapters.

- :mod:`acestep.models.config`: the released ``config.json`` schema (:func:`load_config`).
- :mod:`acestep.models.transformer`: :class:`ACEStepTransformer` (module paths = the released keys).
- :mod:`acestep.models.lyric_encoder`: the lyric Conformer.
- :mod:`acestep.models.loading`: :func:`load_transformer` (``config.json`` + safetensors, strict).
- :mod:`acestep.models.lora`: LoRA files in the released layout, both scalings, merging.
"""

from acestep.models.config import TransformerConfig, load_config
from acestep.models.loading import load_transformer, save_transformer
from acestep.models.transformer import ACEStepTransformer, TransformerOutput

__all__ = ["ACEStepTransformer", "TransformerConfig", "TransformerOutput", "load_config", "load_transformer", "save_transformer"]
