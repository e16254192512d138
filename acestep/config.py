"""Validated configuration of vocal → accompaniment fine-tuning (pydantic v2).

One training file (:class:`TrainingConfig`) holds everything a run needs: the LoRA adapter
(:class:`LoRAConfig`, or one of the named :data:`LORA_PRESETS`), the accompaniment mode
(:class:`AccompanimentConfig`: image2image or controlnet, accompaniment or mix output) and the
optimisation fields. A search file (:class:`OptunaConfig`) holds the Optuna study: trials, pruner and
a typed search space. Every model forbids unknown keys.

Checks that depend on the transformer (LoRA target modules, ``injection_layers``, ``ssl_depths``)
use the module structure of :class:`acestep.models.ACEStepTransformer` and the model depth
``num_layers`` given at validation time (pydantic context ``{"num_layers": N}``; the released
model's 24 by default).

:func:`load_config` reads a JSON (or YAML) file and turns the first validation error into one
line, ``<file>: <dotted.field>: <message> (allowed: <range or choices>)``, raised as
:class:`~shirabe.cli.InputError`. :func:`suggest` draws a trial's parameters from the search space
and :func:`apply_overrides` writes them into a training config (dotted field names or the short
aliases of :data:`PARAM_ALIASES`) and validates the result again.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shirabe.cli import InputError

RELEASED_NUM_LAYERS = 24

# The plan's four adapter layouts. ``to_q``/``to_k``/``to_v``/``to_out.0`` match the self- and the
# cross-attention of every transformer block (``transformer_blocks.N.attn.to_q``,
# ``transformer_blocks.N.cross_attn.to_q``, ...): the module names are suffixes, as peft matches them.
ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
LORA_PRESETS: dict[str, dict[str, Any]] = {
    "structure": {"target_modules": [*ATTENTION, "lyric_proj"], "r": 128},
    "style": {"target_modules": [*ATTENTION, "genre_embedder"], "r": 256},
    "balance": {"target_modules": [*ATTENTION, "genre_embedder", "lyric_proj"], "r": 192},
    "minimal": {"target_modules": ["genre_embedder"], "r": 64},
}

# Short names of search-space parameters and overrides -> dotted fields of TrainingConfig.
PARAM_ALIASES = {"lora_rank": "lora.r"}


def _num_layers(info: ValidationInfo) -> int:
    context = info.context if isinstance(info.context, dict) else {}
    return int(context.get("num_layers", RELEASED_NUM_LAYERS))


@functools.lru_cache(maxsize=1)
def _linear_paths() -> tuple[str, ...]:
    """Paths of every ``nn.Linear`` of the transformer (built tiny, on the meta device: no memory)."""
    import torch

    from acestep.models import ACEStepTransformer, TransformerConfig
    from acestep.models.config import LyricEncoderConfig

    tiny = TransformerConfig(num_layers=1, attention_head_dim=4, num_attention_heads=2, ssl_encoder_depths=(0, 0),
                             ssl_latent_dims=(4, 4), lyric_hidden_size=8, lyric_encoder_vocab_size=4,
                             speaker_embedding_dim=4, text_embedding_dim=4,
                             lyric_encoder=LyricEncoderConfig(8, 2, 8, 1))
    with torch.device("meta"):
        model = ACEStepTransformer(tiny)
    return tuple(name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear))


def _suffixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[i:]) for i in range(len(parts)) if not parts[i].isdigit()]


@functools.lru_cache(maxsize=1)
def valid_target_modules() -> frozenset[str]:
    """Every name peft would match to a Linear of the transformer: a dotted suffix of a module path
    that starts with a name, not a block index (``to_q``, ``attn.to_q``, ``to_out.0``, ``linear_q``, ...)."""
    return frozenset(s for path in _linear_paths() for s in _suffixes(path))


@functools.lru_cache(maxsize=1)
def short_target_modules() -> tuple[str, ...]:
    """The shortest valid name of each Linear (what error messages list)."""
    return tuple(dict.fromkeys(_suffixes(path)[-1] for path in _linear_paths()))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LoRAConfig(_Strict):
    """The adapter: rank, alpha, which Linear modules, rank-stabilised scaling, dropout.

    ``preset`` (one of :data:`LORA_PRESETS`) fills ``target_modules`` and ``r`` unless the file
    sets them itself.
    """

    preset: Literal["structure", "style", "balance", "minimal"] | None = None
    r: int = Field(256, ge=1, le=1024, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scaling alpha/sqrt(r) with rslora, else alpha/r)")
    target_modules: list[str] = Field(default_factory=lambda: list(ATTENTION), min_length=1,
                                      description="module names (suffixes of the transformer's Linear paths)")
    use_rslora: bool = Field(True, description="rank-stabilised LoRA")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in LORA_PRESETS:
            preset = LORA_PRESETS[data["preset"]]
            data = {**{k: (list(v) if isinstance(v, list) else v) for k, v in preset.items()}, **data}
        return data

    @field_validator("target_modules")
    @classmethod
    def _known_modules(cls, value: list[str]) -> list[str]:
        valid = valid_target_modules()
        unknown = [m for m in value if m not in valid]
        if unknown:
            raise ValueError(f"unknown module {unknown[0]!r} (allowed: {', '.join(short_target_modules())}, "
                             "or a longer dotted suffix of a module path)")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a module twice: {value}")
        return value


def lora_preset(name: str, **overrides: Any) -> LoRAConfig:
    """The named preset as a :class:`LoRAConfig` (``overrides`` set other fields, e.g. ``lora_alpha``)."""
    if name not in LORA_PRESETS:
        raise InputError(f"unknown LoRA preset {name!r} (allowed: {', '.join(LORA_PRESETS)})")
    return LoRAConfig.model_validate({"preset": name, **overrides})


class AccompanimentConfig(_Strict):
    """How the vocal conditions the generation and what the model learns to produce."""

    mode: Literal["image2image", "controlnet"] = "image2image"
    output_type: Literal["accompaniment", "mix"] = "accompaniment"
    reference_strength: float = Field(0.5, ge=0.0, lt=1.0,
                                      description="image2image: weight of the vocal latent in the flow's start")
    control_encoder_depth: int = Field(6, ge=1, le=12, description="controlnet: transformer blocks of the encoder")
    control_encoder_dim: int = Field(1536, ge=16, le=2560, description="controlnet: width of the encoder")
    controlnet_scale: float = Field(1.0, ge=0.0, le=2.0, description="controlnet: factor on the injected signal")
    injection_layers: list[int] = Field(default_factory=lambda: [0, 4, 8, 12], min_length=1,
                                        description="controlnet: transformer blocks that receive the signal")

    @field_validator("injection_layers")
    @classmethod
    def _layers_exist(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError(f"layer indices must be >= 0, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a layer twice: {value}")
        # Only the controlnet mode uses injection_layers; image2image files may keep the default.
        depth = _num_layers(info)
        if info.data.get("mode") == "controlnet":
            bad = [v for v in value if v >= depth]
            if bad:
                raise ValueError(f"layer {bad[0]} does not exist in a {depth}-layer transformer "
                                 f"(allowed: 0..{depth - 1})")
        return sorted(value)


class TrainingConfig(_Strict):
    """A whole training file: adapter, accompaniment mode, data and optimisation."""

    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    accompaniment: AccompanimentConfig = Field(default_factory=AccompanimentConfig)
    dataset_path: str = Field("./data/accompaniment_dataset", min_length=1)
    max_duration: float = Field(240.0, gt=0.0, description="seconds; longer pairs are cut")
    learning_rate: float = Field(1e-4, gt=0.0)
    max_steps: int = Field(200000, ge=1)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(1e-2, ge=0.0)
    batch_size: int = Field(1, ge=1)
    accumulate_grad_batches: int = Field(1, ge=1)
    ssl_coeff: float = Field(1.0, ge=0.0)
    ssl_depths: list[int] = Field(default_factory=lambda: [8, 8], min_length=1)
    checkpoint_every_n_steps: int = Field(2000, ge=1)
    exp_name: str = Field("accompaniment_lora", min_length=1)
    logger_dir: str = Field("./exps/logs/", min_length=1)
    shift: float = Field(3.0, gt=0.0, description="flow-matching timestep shift")
    structure_loss_weight: float = Field(0.0, ge=0.0,
                                         description="weight of the vocal/prediction energy-correlation loss")

    @field_validator("ssl_depths")
    @classmethod
    def _depths_exist(cls, value: list[int], info: ValidationInfo) -> list[int]:
        depth = _num_layers(info)
        bad = [v for v in value if not 0 <= v < depth]
        if bad:
            raise ValueError(f"layer {bad[0]} does not exist in a {depth}-layer transformer "
                             f"(allowed: 0..{depth - 1})")
        return value


class FloatParam(_Strict):
    """``trial.suggest_float(name, low, high, log=log)``; ``"type": "loguniform"`` means log=true."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got low={self.low}")
        return self


class IntParam(_Strict):
    """``trial.suggest_int(name, low, high, step=step, log=log)``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("a log scale needs low > 0 and step 1")
        return self


class CategoricalParam(_Strict):
    """``trial.suggest_categorical(name, choices)``."""

    type: Literal["categorical"]
    choices: list[Union[bool, int, float, str, None]] = Field(min_length=1)  # noqa: UP007

    @field_validator("choices")
    @classmethod
    def _distinct(cls, value: list) -> list:
        if len({json.dumps(v) for v in value}) != len(value):
            raise ValueError(f"lists a choice twice: {value}")
        return value


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]  # noqa: UP007
PARAM_TYPES = ("float", "int", "categorical", "loguniform")


class OptunaConfig(_Strict):
    """An Optuna study: how many trials, how long, which pruner, which parameters."""

    n_trials: int = Field(50, ge=1)
    timeout: int | None = Field(None, ge=1, description="seconds for the whole study (null: no limit)")
    pruner_type: Literal["median", "successive_halving", "hyperband"] = "median"
    pruner_n_startup_trials: int = Field(5, ge=0, description="median: trials never pruned")
    pruner_n_warmup_steps: int = Field(100, ge=0,
                                       description="median: steps before pruning; successive_halving/hyperband: "
                                                   "min_resource (0: optuna's 'auto')")
    search_space: dict[str, SearchParam] = Field(default_factory=dict)

    @field_validator("search_space", mode="before")
    @classmethod
    def _loguniform(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, spec in value.items():
            if isinstance(spec, dict) and spec.get("type") == "loguniform":
                spec = {**{k: v for k, v in spec.items() if k != "type"}, "type": "float", "log": True}
            out[name] = spec
        return out

    @field_validator("search_space")
    @classmethod
    def _known_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        layers = _num_layers(info)
        defaults = TrainingConfig()
        # the defaults' layer indices brought inside the model, so only the searched value is judged
        base = defaults.model_copy(update={
            "ssl_depths": [min(d, layers - 1) for d in defaults.ssl_depths],
            "accompaniment": defaults.accompaniment.model_copy(update={"injection_layers": sorted(
                {min(i, layers - 1) for i in defaults.accompaniment.injection_layers})})})
        for name, spec in value.items():
            field = resolve_field(name)  # raises ValueError for an unknown name
            ends = spec.choices if isinstance(spec, CategoricalParam) else [spec.low, spec.high]
            for end in ends:
                try:
                    apply_overrides(base, {field: end}, num_layers=layers)
                except InputError as exc:
                    reason = str(exc).split(f"{field}: ", 1)[-1]
                    raise ValueError(f"@{name}: {end!r} is not a valid {field}: {reason}") from None
        return value


def make_pruner(config: OptunaConfig):
    """The optuna pruner the config names."""
    import optuna

    if config.pruner_type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.pruner_n_startup_trials,
                                           n_warmup_steps=config.pruner_n_warmup_steps)
    resource = config.pruner_n_warmup_steps or "auto"
    if config.pruner_type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=resource)
    return optuna.pruners.HyperbandPruner(min_resource=resource)


def suggest(trial, search_space: dict[str, Any]) -> dict[str, Any]:
    """One value per parameter of ``search_space`` (an :class:`OptunaConfig`'s, or the raw dict) from ``trial``."""
    if not all(isinstance(s, (FloatParam, IntParam, CategoricalParam)) for s in search_space.values()):
        search_space = OptunaConfig.model_validate({"search_space": search_space}).search_space
    params = {}
    for name, spec in search_space.items():
        if isinstance(spec, FloatParam):
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, IntParam):
            params[name] = trial.suggest_int(name, spec.low, spec.high, step=spec.step, log=spec.log)
        else:
            params[name] = trial.suggest_categorical(name, spec.choices)
    return params


def resolve_field(name: str) -> str:
    """The dotted TrainingConfig field of an override name: a dotted path (``lora.r``), an alias
    (``lora_rank``), a top-level field (``learning_rate``) or a field of the ``lora`` or
    ``accompaniment`` section (``reference_strength``)."""
    name = PARAM_ALIASES.get(name, name)
    sections = {"lora": LoRAConfig, "accompaniment": AccompanimentConfig}
    if "." in name:
        head, _, tail = name.partition(".")
        if head in sections and tail in sections[head].model_fields:
            return name
    elif name in TrainingConfig.model_fields and name not in sections:
        return name
    else:
        owners = [s for s, model in sections.items() if name in model.model_fields]
        if len(owners) == 1:
            return f"{owners[0]}.{name}"
    allowed = [f for f in TrainingConfig.model_fields if f not in sections]
    allowed += [f"{s}.{f}" for s, model in sections.items() for f in model.model_fields]
    raise ValueError(f"@{name}: unknown parameter (allowed: {', '.join([*PARAM_ALIASES, *allowed])})")


def apply_overrides(config: TrainingConfig, params: dict[str, Any], num_layers: int = RELEASED_NUM_LAYERS,
                    source: str = "<overrides>") -> TrainingConfig:
    """A new config with ``params`` (dotted names or aliases, see :func:`resolve_field`) set, validated."""
    data = config.model_dump()
    for name, value in params.items():
        try:
            field = resolve_field(name)
        except ValueError as exc:
            raise InputError(f"{source}: {str(exc).lstrip('@')}") from None
        node = data
        *heads, last = field.split(".")
        for head in heads:
            node = node[head]
        node[last] = value
    return validate(TrainingConfig, data, source, num_layers)


def validate(model: type[BaseModel], data: Any, source: str, num_layers: int = RELEASED_NUM_LAYERS):
    """``model.model_validate(data)`` with the first error as one-line InputError."""
    try:
        return model.model_validate(data, context={"num_layers": num_layers})
    except ValidationError as exc:
        raise InputError(format_error(exc, model, source)) from None


KINDS = {"training": TrainingConfig, "optuna": OptunaConfig, "lora": LoRAConfig,
         "accompaniment": AccompanimentConfig}


def read_mapping(path: str | Path) -> dict:
    """A JSON (or, by extension ``.yaml``/``.yml``, YAML) object from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except Exception as exc:  # OSError, UnicodeDecodeError, yaml.YAMLError
        raise InputError(f"{path}: not a readable config file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object at the top level")
    return data


def guess_kind(data: dict) -> str:
    """``optuna`` for a search file (it has ``search_space`` or ``n_trials``), else ``training``."""
    return "optuna" if {"search_space", "n_trials", "pruner_type"} & set(data) else "training"


def load_config(path: str | Path, kind: str = "training", num_layers: int = RELEASED_NUM_LAYERS):
    """Read and validate a config file of ``kind`` (training, optuna, lora, accompaniment or auto)."""
    data = read_mapping(path)
    if kind == "auto":
        kind = guess_kind(data)
    if kind not in KINDS:
        raise InputError(f"unknown config kind {kind!r} (allowed: auto, {', '.join(KINDS)})")
    return validate(KINDS[kind], data, str(path), num_layers)


def _constraint_text(model: type[BaseModel] | None, name: str) -> str | None:
    """The allowed range or choices of ``model.name`` from its Field constraints and annotation."""
    if model is None or name not in model.model_fields:
        return None
    info = model.model_fields[name]
    literal = _literal_choices(info.annotation)
    if literal:
        return ", ".join("null" if c is None else str(c) for c in literal)
    lower = upper = None
    for meta in info.metadata:
        for attr, bracket in (("ge", "["), ("gt", "(")):
            if getattr(meta, attr, None) is not None:
                lower = f"{bracket}{getattr(meta, attr)}"
        for attr, bracket in (("le", "]"), ("lt", ")")):
            if getattr(meta, attr, None) is not None:
                upper = f"{getattr(meta, attr)}{bracket}"
    if lower or upper:
        return f"{lower or '(-inf'}, {upper or 'inf)'}"
    return None


def _literal_choices(annotation) -> list | None:
    import typing

    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return list(args)
    for arg in args:  # Optional[Literal[...]]
        if typing.get_origin(arg) is Literal:
            return [*typing.get_args(arg), None]
    return None


def _walk(model: type[BaseModel], loc: tuple) -> tuple[str, type[BaseModel] | None, str | None]:
    """The dotted path of a pydantic error location, the model holding the last field and its name."""
    parts: list[str] = []
    current: Any = model
    owner, last = None, None
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
            last = None
            continue
        if current is None and item in ("float", "int", "categorical"):
            continue  # the discriminator tag of a search-space parameter
        parts.append(str(item))
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner, last = current, str(item)
            field = current.model_fields.get(str(item))
            nested = field.annotation if field is not None else None
            current = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
            if str(item) == "search_space":
                owner, last, current = None, None, None
        else:
            tag = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}
            owner, last = None, None
            current = None
            if item in tag:
                current = tag[item]
    return ".".join(parts), owner, last


def format_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """``<source>: <dotted.field>: <message> (allowed: ...)`` for the first error (+ a count of the rest)."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(err["loc"])
    # A search-space parameter: search_space.<name>.<tag>.<field>; walk it by hand.
    if loc[:1] == ("search_space",) and len(loc) >= 3 and loc[2] in ("float", "int", "categorical"):
        tag = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}[loc[2]]
        path = ".".join(str(p) for p in (loc[0], loc[1], *loc[3:]))
        owner, last = tag, (str(loc[3]) if len(loc) > 3 else None)
    else:
        path, owner, last = _walk(model, loc)
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if message.startswith("@") and ": " in message:  # a validator naming an entry below its field
        sub, message = message[1:].split(": ", 1)
        path, owner, last = f"{path}.{sub}", None, None
    allowed = None
    if err["type"] == "extra_forbidden" and owner is not None:
        allowed = ", ".join(owner.model_fields)
        path_owner = path.rsplit(".", 1)
        message = f"unknown field {path_owner[-1]!r}"
    elif err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
        allowed = ", ".join(PARAM_TYPES)
    elif last is not None and err["type"] not in ("value_error", "assertion_error", "missing"):
        allowed = _constraint_text(owner, last)
    if err["type"] in ("value_error",) and "(allowed:" not in message:
        allowed = _constraint_text(owner, last) if last else None
    text = f"{source}: {path or '<top>'}: {message}"
    if allowed and "(allowed:" not in message:
        text += f" (allowed: {allowed})"
    if len(errors) > 1:
        text += f" [+{len(errors) - 1} more error{'s' if len(errors) > 2 else ''}]"
    return text.replace("\n", " ")
