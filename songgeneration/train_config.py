"""``train_config.yaml``: the one file that drives data preparation, training and merging.

Sections (unknown keys are errors; every error is one line naming the file and the dotted field):

- ``paths``: ``base_model_path`` (a checkpoint folder with ``config.yaml`` + ``model.pt``: the model
  to fine-tune, or whose ``config.yaml`` a from-scratch run builds), ``tokenizer`` (registry name of
  the audio tokenizer, ``mini`` or ``released``), ``audio_tokenizer_path`` (its file or folder),
  ``separate_audio_tokenizer_path`` (the released separate tokenizer; unused by ``mini``),
  ``raw_data_dir`` (audio paths in the metadata are relative to it), ``metadata_path``
  (``metadata.jsonl``), ``prepared_data_dir`` (token tensors + ``manifest.jsonl``), ``output_dir``
  (experiment folder), ``text_tokenizer_path`` (a local Qwen2 tokenizer folder; default: the one
  beside the checkpoint as its config names it).
- ``data``: ``min_duration`` / ``max_duration`` seconds, ``prompt_seconds`` (10, upstream's prompt),
  ``separator_checkpoint`` (a local demucs checkpoint for songs without stems), ``lyrics_language``.
- ``training``: ``type`` (``full`` | ``lora``), ``from_scratch`` (random init from the base config),
  ``epochs`` / ``max_steps`` (``max_steps > 0`` wins), ``batch_size``, ``learning_rate``,
  ``weight_decay``, ``warmup_steps``, ``grad_accum``, ``precision`` (``float32`` | ``bf16`` |
  ``fp16``), ``gradient_checkpointing``, ``save_every_n``, ``valid_every_n``, ``seed``.
- ``lora``: ``r``, ``alpha``, ``dropout``, ``target_modules`` (default the attention projections
  q/k/v/o of both decoders), ``include_mlp`` (also gate/up/down).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shirabe.cli import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Paths(_Strict):
    base_model_path: str
    tokenizer: Literal["mini", "released"] = "mini"
    audio_tokenizer_path: str
    separate_audio_tokenizer_path: str | None = None
    raw_data_dir: str = "."
    metadata_path: str
    prepared_data_dir: str
    output_dir: str
    text_tokenizer_path: str | None = None


class Data(_Strict):
    min_duration: float = Field(10.0, gt=0.0)
    max_duration: float = Field(270.0, gt=0.0)
    prompt_seconds: float = Field(10.0, gt=0.0)
    separator_checkpoint: str | None = None
    lyrics_language: str = "auto"


class Training(_Strict):
    type: Literal["full", "lora"] = "lora"
    from_scratch: bool = False
    epochs: int = Field(10, ge=1)
    max_steps: int = Field(0, ge=0)
    batch_size: int = Field(1, ge=1)
    learning_rate: float = Field(1e-4, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_steps: int = Field(100, ge=0)
    grad_accum: int = Field(1, ge=1)
    precision: Literal["float32", "bf16", "fp16"] = "bf16"
    gradient_checkpointing: bool = True
    save_every_n: int = Field(500, ge=1)
    valid_every_n: int = Field(0, ge=0)
    seed: int = 42


class Lora(_Strict):
    r: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0.0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1)
    include_mlp: bool = False


class TrainConfig(_Strict):
    paths: Paths
    data: Data = Field(default_factory=Data)
    training: Training = Field(default_factory=Training)
    lora: Lora = Field(default_factory=Lora)
    source: str = Field("<config>", exclude=True)

    def resolve(self, path: str | None) -> Path | None:
        """A path of the config, relative to the config file's folder when not absolute."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() or self.source.startswith("<") else Path(self.source).parent / p


def format_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "<root>"
    more = f" [+{len(exc.errors()) - 1} more]" if len(exc.errors()) > 1 else ""
    return f"{source}: {where}: {err['msg']}{more}"


def config_from_dict(data: Any, source: str = "<config>") -> TrainConfig:
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top level")
    try:
        return TrainConfig(**data, source=source)
    except ValidationError as exc:
        raise InputError(format_error(exc, source)) from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and check ``train_config.yaml`` (paths inside it are relative to its folder)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    return config_from_dict(data, str(path))
