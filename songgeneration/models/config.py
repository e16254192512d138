"""The LeLM config: upstream's ``config.yaml`` schema read into a checked dataclass.

Fields read (everything else in the file, e.g. the audio-tokenizer and VAE entries, is kept out
of the model): ``lm.*`` (dims, layers, rotary bases, ``code_depth``/``code_size``),
``codebooks_pattern.delay.{delays, flatten_first, empty_initial}``, ``conditioners.<name>.model``
and ``conditioners.<name>.<model>`` (``QwTokenizer`` = lyrics, ``QwTextTokenizer`` = style
description, ``qt_embedding`` = prompt tokens), ``fuser.prepend``, ``classifier_free_guidance``,
``attribute_dropout``, ``prompt_len``, ``max_dur``, ``min_dur`` and ``sample_rate``.

**Version.** The model version comes from the config's top-level ``version`` key (``v1`` or
``v2``), never from the folder name. Upstream's released files carry no such key, so a config
without it is ``v1``; write ``version: v2`` into a v2 checkpoint's ``config.yaml`` (loading a v2
checkpoint as v1 fails on the description table's row count, and the error says so). ``v2`` adds
``.`` to the lyric tags and ``[Musicality-very-high|high|medium|low|very-low]``, ``[Pure-Music]``
and ``.`` to the description tags, and its null description keeps a negative musicality prompt.

Every mistake is a one-line :class:`~shirabe.cli.InputError` naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shirabe.cli import InputError

VERSIONS = ("v1", "v2")
DEFAULT_VERSION = "v1"
LYRIC_KIND, DESC_KIND, PROMPT_KIND = "QwTokenizer", "QwTextTokenizer", "qt_embedding"
V2_LYRIC_EXTRA = (".",)
V2_DESC_EXTRA = ("[Musicality-very-high]", "[Musicality-high]", "[Musicality-medium]", "[Musicality-low]",
                 "[Musicality-very-low]", "[Pure-Music]", ".")
FRAME_RATE = 25


@dataclass
class TextConditionerConfig:
    name: str
    token_path: str
    max_len: int
    add_token_list: list[str] = field(default_factory=list)


@dataclass
class LeLMConfig:
    version: str
    dim: int
    intermediate_size: int
    num_heads: int
    num_layers: int
    num_layers_sub: int
    code_depth: int
    code_size: int
    max_position_embeddings: int
    max_position_embeddings_sub: int
    rope_theta: float
    rope_theta_sub: float
    delays: list[int]
    lyric: TextConditionerConfig
    description: TextConditionerConfig
    prompt_name: str
    prompt_max_len: int
    prepend: list[str]
    cfg_coef: float = 1.5
    cfg_dropout: float = 0.0
    attribute_dropout: dict[str, dict[str, float]] = field(default_factory=dict)
    prompt_len: float = 10.0
    max_dur: float = 150.0
    min_dur: float = 0.0
    sample_rate: int = 48000
    source: str = "config"

    @property
    def eos_id(self) -> int:
        return self.code_size

    @property
    def special_id(self) -> int:
        return self.code_size + 1

    @property
    def lyric_tags(self) -> list[str]:
        extra = [t for t in V2_LYRIC_EXTRA if t not in self.lyric.add_token_list] if self.version == "v2" else []
        return list(self.lyric.add_token_list) + extra

    @property
    def description_tags(self) -> list[str]:
        extra = [t for t in V2_DESC_EXTRA if t not in self.description.add_token_list] \
            if self.version == "v2" else []
        return list(self.description.add_token_list) + extra

    @property
    def prompt_frames(self) -> int:
        return int(self.prompt_len * FRAME_RATE)

    @property
    def max_frames(self) -> int:
        return int(self.max_dur * FRAME_RATE)


def _get(data: dict, path: str, source: str, kind: type | tuple, default: Any = ...) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise InputError(f"{source}: missing field '{path}'")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if isinstance(node, bool) or not isinstance(node, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise InputError(f"{source}: field '{path}' must be {names}, got {node!r}")
    return node


def _positive(value, path: str, source: str, allow_zero: bool = False):
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{source}: field '{path}' must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def config_from_dict(data: Any, source: str = "config") -> LeLMConfig:
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top level")
    version = _get(data, "version", source, str, DEFAULT_VERSION)
    if version not in VERSIONS:
        raise InputError(f"{source}: field 'version' must be one of {', '.join(VERSIONS)}, got {version!r}")
    ints = {}
    for name in ("dim", "intermediate_size", "num_heads", "num_layers", "num_layers_sub", "code_depth", "code_size",
                 "max_position_embeddings", "max_position_embeddings_sub"):
        ints[name] = _positive(_get(data, f"lm.{name}", source, int), f"lm.{name}", source)
    if ints["dim"] % ints["num_heads"] or (ints["dim"] // ints["num_heads"]) % 2:
        raise InputError(f"{source}: field 'lm.dim' ({ints['dim']}) must be num_heads x an even head size")
    if ints["code_depth"] != 3:
        raise InputError(f"{source}: field 'lm.code_depth' must be 3 (mixed, vocal, accompaniment), "
                         f"got {ints['code_depth']}")
    lm_type = _get(data, "lm.lm_type", source, str, "Llama")
    if lm_type != "Llama":
        raise InputError(f"{source}: field 'lm.lm_type' must be Llama, got {lm_type!r}")
    thetas = {n: _positive(_get(data, f"lm.{n}", source, float), f"lm.{n}", source)
              for n in ("rope_theta", "rope_theta_sub")}
    modeling = _get(data, "codebooks_pattern.modeling", source, str)
    if modeling != "delay":
        raise InputError(f"{source}: field 'codebooks_pattern.modeling' must be delay, got {modeling!r}")
    delays = _get(data, "codebooks_pattern.delay.delays", source, list)
    if len(delays) != ints["code_depth"] or not all(isinstance(d, int) and d >= 0 for d in delays) \
            or delays[0] != 0:
        raise InputError(f"{source}: field 'codebooks_pattern.delay.delays' must be {ints['code_depth']} "
                         f"non-negative ints starting with 0, got {delays!r}")
    for name in ("flatten_first", "empty_initial"):
        value = _get(data, f"codebooks_pattern.delay.{name}", source, int, 0)
        if value != 0:
            raise InputError(f"{source}: field 'codebooks_pattern.delay.{name}' must be 0, got {value}")

    conds = _get(data, "conditioners", source, dict)
    by_kind: dict[str, tuple[str, dict]] = {}
    for name in conds:
        kind = _get(data, f"conditioners.{name}.model", source, str)
        if kind not in (LYRIC_KIND, DESC_KIND, PROMPT_KIND):
            raise InputError(f"{source}: field 'conditioners.{name}.model' must be one of "
                             f"{LYRIC_KIND}, {DESC_KIND}, {PROMPT_KIND}, got {kind!r}")
        if kind in by_kind:
            raise InputError(f"{source}: field 'conditioners.{name}.model': a second {kind} conditioner")
        by_kind[kind] = (name, _get(data, f"conditioners.{name}.{kind}", source, dict))
    for kind in (LYRIC_KIND, DESC_KIND, PROMPT_KIND):
        if kind not in by_kind:
            raise InputError(f"{source}: missing field 'conditioners.<name>.model: {kind}'")

    def text(kind: str) -> TextConditionerConfig:
        name, _ = by_kind[kind]
        base = f"conditioners.{name}.{kind}"
        tags = _get(data, f"{base}.add_token_list", source, list, [])
        if not all(isinstance(t, str) and t for t in tags):
            raise InputError(f"{source}: field '{base}.add_token_list' must list non-empty strings")
        return TextConditionerConfig(name, _get(data, f"{base}.token_path", source, str),
                                     _positive(_get(data, f"{base}.max_len", source, int), f"{base}.max_len", source),
                                     list(tags))

    prompt_name, _ = by_kind[PROMPT_KIND]
    pbase = f"conditioners.{prompt_name}.{PROMPT_KIND}"
    for name in ("code_size", "code_depth"):
        value = _get(data, f"{pbase}.{name}", source, int)
        if value != ints[name]:
            raise InputError(f"{source}: field '{pbase}.{name}' ({value}) must equal lm.{name} ({ints[name]})")
    prompt_max_len = _positive(_get(data, f"{pbase}.max_len", source, int), f"{pbase}.max_len", source)
    if prompt_max_len < 2:
        raise InputError(f"{source}: field '{pbase}.max_len' must be >= 2 (EOT + EOS), got {prompt_max_len}")

    prepend = _get(data, "fuser.prepend", source, list)
    if sorted(prepend) != sorted(conds) or len(set(prepend)) != len(prepend):
        raise InputError(f"{source}: field 'fuser.prepend' must list each conditioner once "
                         f"({', '.join(conds)}), got {prepend!r}")
    summed = _get(data, "fuser.sum", source, list, [])
    if summed:
        raise InputError(f"{source}: field 'fuser.sum' must be empty (every condition is prepended)")

    dropout_raw = _get(data, "attribute_dropout", source, dict, {})
    dropout: dict[str, dict[str, float]] = {}
    for group, values in dropout_raw.items():
        if not isinstance(values, dict):
            raise InputError(f"{source}: field 'attribute_dropout.{group}' must be a mapping")
        dropout[group] = {k: float(_get(data, f"attribute_dropout.{group}.{k}", source, float)) for k in values}

    return LeLMConfig(
        version=version, **ints, **thetas, delays=list(delays), lyric=text(LYRIC_KIND),
        description=text(DESC_KIND), prompt_name=prompt_name, prompt_max_len=prompt_max_len, prepend=list(prepend),
        cfg_coef=_get(data, "classifier_free_guidance.inference_coef", source, float, 1.5),
        cfg_dropout=_get(data, "classifier_free_guidance.training_dropout", source, float, 0.0),
        attribute_dropout=dropout,
        prompt_len=_positive(_get(data, "prompt_len", source, float), "prompt_len", source),
        max_dur=_positive(_get(data, "max_dur", source, float), "max_dur", source),
        min_dur=_get(data, "min_dur", source, float, 0.0),
        sample_rate=_positive(_get(data, "sample_rate", source, int), "sample_rate", source),
        source=source)


def load_config(path: str | Path) -> LeLMConfig:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return config_from_dict(data, str(path))
