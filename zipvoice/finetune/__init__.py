"""Fine-tuning strategies for ZipVoice: full, frozen decoder (or stacks), LoRA and DoRA.

>>> from zipvoice.finetune import FinetuneOptions, prepare_model_for_finetuning, trainable_state_dict
>>> opts = FinetuneOptions.from_args(args)                                  # doctest: +SKIP
>>> model = prepare_model_for_finetuning(model, opts, init_checkpoint="download/zipvoice/model.pt",
...                                      token_file="data/tokens.txt")     # doctest: +SKIP
>>> ckpt = {"model": trainable_state_dict(model, opts), "finetune": finetune_metadata(opts)}  # doctest: +SKIP

See docs/zipvoice_finetuning.md. Adapter checkpoints are merged into a plain
model directory with ``python -m zipvoice.bin.merge_lora``.
"""

from zipvoice.finetune.adapters import (
    apply_adapters,
    load_adapter_checkpoint,
    load_trainable_state_dict,
    merge_adapters,
    read_adapter_checkpoint,
    resolve_lora_targets,
    trainable_state_dict,
)
from zipvoice.finetune.options import (
    DEFAULT_LORA_TARGETS,
    MODES,
    FinetuneOptions,
    add_finetune_arguments,
    finetune_metadata,
)
from zipvoice.finetune.strategies import (
    count_parameters,
    load_init_checkpoint,
    prepare_model_for_finetuning,
)
from zipvoice.finetune.vocab import EmbeddingPlan, extend_embedding, plan_embedding

__all__ = [
    "DEFAULT_LORA_TARGETS",
    "MODES",
    "EmbeddingPlan",
    "FinetuneOptions",
    "add_finetune_arguments",
    "apply_adapters",
    "count_parameters",
    "extend_embedding",
    "finetune_metadata",
    "load_adapter_checkpoint",
    "load_init_checkpoint",
    "load_trainable_state_dict",
    "merge_adapters",
    "plan_embedding",
    "prepare_model_for_finetuning",
    "read_adapter_checkpoint",
    "resolve_lora_targets",
    "trainable_state_dict",
]
