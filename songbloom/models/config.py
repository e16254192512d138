"""SongBloom's configuration: the released YAML schema, checked field by field.

A config (``songbloom_full_150s.yaml`` and its kin) has top-level ``sr``, ``max_dur``,
``pretrained_path``, ``train_dataset.{lyric_processor,prompt_len}``, ``vae.{vae_cfg,vae_ckpt}``, a
``model:`` section (the MVSA-DiTAR hyper-parameters, its two conditioners, condition dropouts and
the fuser) and an ``inference:`` section (sampling defaults). :func:`load_config` resolves the
schema's ``${...}`` interpolations (:mod:`songbloom.models.yaml_resolve`) and returns a
:class:`SongBloomConfig`; every missing or malformed field is a one-line
:class:`~shirabe.cli.InputError` naming the file and the dotted field.

What this implementation supports is what the released models use: the LLaMA backbone, the
``prepend`` time token, rectified flow with logit-normal timesteps, the ``sum`` lyric mode and
the two conditioners ``prompt_wav`` (VAE latents) and ``lyrics`` (phonemes), both prepended.
Anything else is refused by name rather than silently run differently.

:func:`tiny_config` and :func:`full_config` build configs in code (tests, recipes);
``SongBloomConfig.from_dict`` takes the same schema as a dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shirabe.cli import InputError
from songbloom.g2p.vocab import (
    DEFAULT_VOCAB,
    PHRASE_END,
    SENTENCE_END,
    STRUCTURE_TAGS,
    Vocab,
    load_vocab,
)
from songbloom.models.yaml_resolve import MISSING, read_yaml, resolve_config

# Frames per second the sampler budget assumes (``max_frames = max_dur * 25`` upstream, whatever the VAE).
BUDGET_FRAME_RATE = 25

PROMPT = "prompt_wav"
LYRICS = "lyrics"


@dataclass(frozen=True)
class InferenceConfig:
    """``inference:``: generation defaults (the released 150 s values unless the yaml says otherwise)."""

    cfg_coef: float = 1.5
    temp: float = 0.9
    diff_temp: float = 0.95
    top_k: int = 100
    top_p: float = 0.0
    penalty_repeat: bool = True
    penalty_window: int = 50
    steps: int = 36
    dit_cfg_type: str = "h"
    use_sampling: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """``model:``: the MVSA-DiTAR (AR LLaMA over sketch tokens + per-patch DiT over VAE latents)."""

    block_size: int
    latent_dim: int
    dim: int
    num_heads: int
    lm_layers: int
    diff_layers: int
    num_pitch: int
    vocab: Vocab = field(repr=False)
    hidden_scale: int = 4
    timestep_features_dim: int = 256
    rotary_base_val: float = 10000.0
    init_std: float = 0.02
    h_dropout: float = 0.0
    prompt_max_len: int = 250
    lyric_max_len: int = 600
    max_sentence_per_structure: int = 50
    cfg_dropout: float = 0.0
    attribute_dropout: dict[str, dict[str, float]] = field(default_factory=dict)
    rms_norm_eps: float = 1e-6  # the HF LlamaConfig default, which upstream does not change
    dit_rotary_base: float = 20000.0  # fixed upstream, whatever rotary_base_val says

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def eos_id(self) -> int:
        """Sketch id of end-of-song (``num_pitch``)."""
        return self.num_pitch

    @property
    def ignore_id(self) -> int:
        """The "special" id in ``ar_target`` past each song's end (``num_pitch + 1``)."""
        return self.num_pitch + 1

    @property
    def num_classes(self) -> int:
        """Classifier outputs: the sketch ids and EOS."""
        return self.num_pitch + 1

    @property
    def dit_rotary_dims(self) -> int:
        """Head dims the DiT rotates: max(head_dim // 2, 32)."""
        return max(self.head_dim // 2, 32)

    @property
    def prefix_len(self) -> int:
        """Condition rows in front of the LM sequence (prompt, then lyrics)."""
        return self.prompt_max_len + self.lyric_max_len

    @property
    def dit_tokens(self) -> int:
        """DiT sequence length: time, h, P sketch, P previous latents, P noisy latents."""
        return 3 * self.block_size + 2


@dataclass(frozen=True)
class SongBloomConfig:
    """A whole SongBloom config: the model plus the files and rates around it."""

    model: ModelConfig
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    sr: int = 48000
    max_dur: float = 150.0
    min_dur: float = 0.0
    prompt_len: float = 10.0
    lyric_processor: str = "phoneme"
    pretrained_path: str | None = None
    vae_cfg: str | None = None
    vae_ckpt: str | None = None
    vae_config: dict | None = field(default=None, repr=False)  # a parsed vae json, instead of vae_cfg
    precision: str = "32"
    source: str = "config"

    @property
    def default_max_frames(self) -> float:
        """The sampler's frame budget: ``max_dur * 25`` (as upstream; no extra seconds added)."""
        return self.max_dur * BUDGET_FRAME_RATE

    @property
    def prompt_samples(self) -> int:
        """Prompt samples kept at ``sr`` (``sr * train_dataset.prompt_len``)."""
        return int(self.sr * self.prompt_len)

    def replace_model(self, **changes) -> SongBloomConfig:
        return dataclasses.replace(self, model=dataclasses.replace(self.model, **changes))

    @classmethod
    def from_dict(cls, data: dict, source: str = "config", local_dir: str | Path = ".") -> SongBloomConfig:
        """Check a config in the upstream schema (``${...}`` resolved here) and build it."""
        return parse_config(resolve_config(data, source, local_dir), source)


# -- field reading ---------------------------------------------------------------------------


MODEL_FIELDS = frozenset({
    "block_size", "latent_dim", "dim", "num_heads", "lm_layers", "diff_layers", "num_pitch", "hidden_scale",
    "time_cond_type", "timestep_features_dim", "diffusion_objective", "timestep_sampler", "backend",
    "rotary_base_val", "init_std", "h_dropout", "condition_provider_cfg", "cfg_dropout", "attribute_dropout",
    "fuser_cfg", "norm", "pre_norm", "cfg_coef",
})
PROMPT_FIELDS = frozenset({"type", "output_dim", "audio_tokenizer", "cache", "max_len"})
LYRIC_FIELDS = frozenset({
    "type", "output_dim", "vocab_list", "max_len", "max_sentence_per_structure", "structure_tokens",
    "structure_split_tokens", "sentence_split_tokens", "mode", "structure_output_dim", "sentence_output_dim",
    "max_duration", "interpolate",
})


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def known(self, section: dict, allowed: frozenset, prefix: str) -> None:
        unknown = sorted(str(k) for k in section if k not in allowed)
        if unknown:
            raise self.fail(prefix + unknown[0], "is not a known field")

    def fail(self, field: str, message: str) -> InputError:
        return InputError(f"{self.source}: field '{field}' {message}")

    def get(self, parent: dict, key: str, prefix: str, default: Any = ...) -> Any:
        name = prefix + key
        if not isinstance(parent, dict) or key not in parent or parent[key] == MISSING:
            if default is ...:
                raise self.fail(name, "is missing")
            return default
        return parent[key]

    def section(self, parent: dict, key: str, prefix: str, required: bool = True) -> dict:
        value = self.get(parent, key, prefix, ... if required else None)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(prefix + key, f"must be a mapping, got {type(value).__name__}")
        return value

    def integer(self, parent: dict, key: str, prefix: str, default: Any = ..., minimum: int = 1) -> int:
        value = self.get(parent, key, prefix, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(prefix + key, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, parent: dict, key: str, prefix: str, default: Any = ..., low: float | None = None,
               high: float | None = None) -> float:
        value = self.get(parent, key, prefix, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(prefix + key, f"must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(prefix + key, f"must be in [{low}, {high}], got {value!r}")
        return float(value)

    def boolean(self, parent: dict, key: str, prefix: str, default: Any = ...) -> bool:
        value = self.get(parent, key, prefix, default)
        if not isinstance(value, bool):
            raise self.fail(prefix + key, f"must be true or false, got {value!r}")
        return value

    def choice(self, parent: dict, key: str, prefix: str, supported: tuple, default: Any = ...) -> Any:
        value = self.get(parent, key, prefix, default)
        if value not in supported:
            allowed = ", ".join(repr(s) for s in supported)
            raise self.fail(prefix + key, f"is {value!r}; this implementation supports {allowed}")
        return value

    def path(self, parent: dict, key: str, prefix: str) -> str | None:
        value = self.get(parent, key, prefix, None)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(prefix + key, f"must be a path, got {value!r}")
        return value


def _vocab(r: _Reader, lyrics: dict, prefix: str) -> Vocab:
    value = r.get(lyrics, "vocab_list", prefix, None)
    if value is None:
        return load_vocab(DEFAULT_VOCAB)
    if not isinstance(value, list) or not value:
        raise r.fail(prefix + "vocab_list", f"must be a list of symbols, got {type(value).__name__}")
    symbols = ["" if s is None else s for s in value]
    if not all(isinstance(s, str) for s in symbols):
        raise r.fail(prefix + "vocab_list", "must hold only strings")
    if symbols[0] != "":
        raise r.fail(prefix + "vocab_list", f"must start with the empty pad symbol '', got {symbols[0]!r}")
    for needed in (SENTENCE_END, PHRASE_END, *STRUCTURE_TAGS):
        if needed not in symbols:
            raise r.fail(prefix + "vocab_list", f"has no {needed!r}")
    if len(set(symbols)) != len(symbols):
        dup = next(s for s in symbols if symbols.count(s) > 1)
        raise r.fail(prefix + "vocab_list", f"lists {dup!r} twice")
    return Vocab.from_symbols(symbols)


def _conditioners(r: _Reader, model: dict, dim: int) -> dict[str, Any]:
    prefix = "model.condition_provider_cfg."
    provider = r.section(model, "condition_provider_cfg", "model.")
    unknown = sorted(set(provider) - {PROMPT, LYRICS})
    if unknown:
        raise r.fail(prefix + unknown[0], f"is not supported (conditioners: {PROMPT}, {LYRICS})")
    out: dict[str, Any] = {}

    p = prefix + PROMPT + "."
    prompt = r.section(provider, PROMPT, prefix)
    r.known(prompt, PROMPT_FIELDS, p)
    r.choice(prompt, "type", p, ("audio_tokenizer_wrapper",))
    if r.integer(prompt, "output_dim", p) != dim:
        raise r.fail(p + "output_dim", f"must equal model.dim ({dim})")
    out["prompt_max_len"] = r.integer(prompt, "max_len", p)

    p = prefix + LYRICS + "."
    lyrics = r.section(provider, LYRICS, prefix)
    r.known(lyrics, LYRIC_FIELDS, p)
    r.choice(lyrics, "type", p, ("phoneme_tokenizer",))
    if r.integer(lyrics, "output_dim", p) != dim:
        raise r.fail(p + "output_dim", f"must equal model.dim ({dim})")
    out["lyric_max_len"] = r.integer(lyrics, "max_len", p, 600)
    out["max_sentence_per_structure"] = r.integer(lyrics, "max_sentence_per_structure", p, 50, minimum=2)
    r.choice(lyrics, "mode", p, ("sum",), "sum")
    if r.boolean(lyrics, "interpolate", p, False):
        raise r.fail(p + "interpolate", "must be false (structure-duration interpolation is not supported)")
    for key, default in (("structure_split_tokens", [PHRASE_END]), ("sentence_split_tokens", [SENTENCE_END])):
        if r.get(lyrics, key, p, default) != default:
            raise r.fail(p + key, f"must be {default} (the tokenizer's fixed split symbols)")
    if r.get(lyrics, "structure_tokens", p, None) is not None:
        raise r.fail(p + "structure_tokens", "must be left out (structure tags are the vocabulary's '[...]' entries)")
    out["vocab"] = _vocab(r, lyrics, p)
    return out


def _dropouts(r: _Reader, model: dict) -> dict[str, Any]:
    cfg_dropout = r.number(model, "cfg_dropout", "model.", 0.0, 0.0, 1.0)
    section = r.section(model, "attribute_dropout", "model.", required=False)
    attribute: dict[str, dict[str, float]] = {}
    for kind, names in section.items():
        prefix = f"model.attribute_dropout.{kind}."
        expected = {"text": LYRICS, "wav": PROMPT}.get(kind)
        if expected is None:
            raise r.fail(f"model.attribute_dropout.{kind}", "is not a condition type (text, wav)")
        if not isinstance(names, dict):
            raise r.fail(f"model.attribute_dropout.{kind}", "must be a mapping of condition -> probability")
        attribute[kind] = {}
        for name in names:
            if name != expected:
                raise r.fail(prefix + str(name), f"is not a {kind} condition (expected {expected})")
            attribute[kind][name] = r.number(names, name, prefix, low=0.0, high=1.0)
    return {"cfg_dropout": cfg_dropout, "attribute_dropout": attribute}


def _fuser(r: _Reader, model: dict) -> None:
    prefix = "model.fuser_cfg."
    fuser = r.section(model, "fuser_cfg", "model.")
    prepend = r.get(fuser, "prepend", prefix)
    if not isinstance(prepend, list) or sorted(prepend) != sorted([PROMPT, LYRICS]):
        raise r.fail(prefix + "prepend", f"must list {LYRICS} and {PROMPT}, got {prepend!r}")
    for key in ("sum", "cross", "input_interpolate"):
        if r.get(fuser, key, prefix, []) not in ([], None):
            raise r.fail(prefix + key, "must be empty (only prepended conditions are supported)")


def parse_model_config(model: dict, r: _Reader) -> ModelConfig:
    m = "model."
    r.known(model, MODEL_FIELDS, m)
    dim = r.integer(model, "dim", m)
    num_heads = r.integer(model, "num_heads", m)
    if dim % num_heads:
        raise r.fail(m + "num_heads", f"must divide model.dim ({dim}), got {num_heads}")
    head_dim = dim // num_heads
    if head_dim < 32 or head_dim % 2:
        raise r.fail(m + "num_heads", f"gives head_dim {head_dim}; the DiT rotates 32 dims per head, so "
                     "head_dim must be an even number >= 32")
    r.choice(model, "backend", m, ("llama",), "llama")
    r.choice(model, "time_cond_type", m, ("prepend",), "prepend")
    r.choice(model, "diffusion_objective", m, ("rectified_flow",))
    r.choice(model, "timestep_sampler", m, ("logit_normal",))
    if r.boolean(model, "pre_norm", m, False):
        raise r.fail(m + "pre_norm", "must be false (not supported)")
    h_dropout = r.get(model, "h_dropout", m, None)
    values = dict(
        block_size=r.integer(model, "block_size", m),
        latent_dim=r.integer(model, "latent_dim", m),
        dim=dim,
        num_heads=num_heads,
        lm_layers=r.integer(model, "lm_layers", m),
        diff_layers=r.integer(model, "diff_layers", m),
        num_pitch=r.integer(model, "num_pitch", m),
        hidden_scale=r.integer(model, "hidden_scale", m, 4),
        timestep_features_dim=r.integer(model, "timestep_features_dim", m, 256),
        rotary_base_val=r.number(model, "rotary_base_val", m, 10000, low=1.0),
        init_std=r.number(model, "init_std", m, 0.02, low=0.0),
        h_dropout=0.0 if h_dropout is None else r.number(model, "h_dropout", m, low=0.0, high=1.0),
    )
    if values["timestep_features_dim"] % 2:
        raise r.fail(m + "timestep_features_dim", "must be even (cos and sin halves)")
    values.update(_conditioners(r, model, dim))
    values.update(_dropouts(r, model))
    _fuser(r, model)
    return ModelConfig(**values)


def parse_inference(section: dict, r: _Reader) -> InferenceConfig:
    p = "inference."
    d = InferenceConfig()
    return InferenceConfig(
        cfg_coef=r.number(section, "cfg_coef", p, d.cfg_coef),
        temp=r.number(section, "temp", p, d.temp, low=0.0),
        diff_temp=r.number(section, "diff_temp", p, d.diff_temp, low=0.0),
        top_k=r.integer(section, "top_k", p, d.top_k, minimum=0),
        top_p=r.number(section, "top_p", p, d.top_p, low=0.0, high=1.0),
        penalty_repeat=r.boolean(section, "penalty_repeat", p, d.penalty_repeat),
        penalty_window=r.integer(section, "penalty_window", p, d.penalty_window),
        steps=r.integer(section, "steps", p, d.steps),
        dit_cfg_type=r.choice(section, "dit_cfg_type", p, ("h", "global", "none"), d.dit_cfg_type),
        use_sampling=r.boolean(section, "use_sampling", p, d.use_sampling),
    )


def parse_config(data: dict, source: str = "config") -> SongBloomConfig:
    """A resolved config dict (no ``${...}`` left) -> :class:`SongBloomConfig`."""
    r = _Reader(source)
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with a 'model' section")
    model = parse_model_config(r.section(data, "model", ""), r)
    train = r.section(data, "train_dataset", "", required=False)
    vae = r.section(data, "vae", "", required=False)
    precision = r.get(data, "precision", "", "32")
    return SongBloomConfig(
        model=model,
        inference=parse_inference(r.section(data, "inference", "", required=False), r),
        sr=r.integer(data, "sr", "", 48000),
        max_dur=r.number(data, "max_dur", "", 150.0, low=0.0),
        min_dur=r.number(data, "min_dur", "", 0.0, low=0.0),
        prompt_len=r.number(train, "prompt_len", "train_dataset.", 10.0, low=0.0),
        lyric_processor=r.choice(train, "lyric_processor", "train_dataset.", ("phoneme",), "phoneme"),
        pretrained_path=r.path(data, "pretrained_path", ""),
        vae_cfg=r.path(vae, "vae_cfg", "vae."),
        vae_ckpt=r.path(vae, "vae_ckpt", "vae."),
        precision=str(precision),
        source=source,
    )


def load_config(yaml_path: str | Path, local_dir: str | Path | None = None) -> SongBloomConfig:
    """Read a SongBloom YAML config (``???`` in ``${dynamic_path:...}`` = ``local_dir``, default
    the yaml's folder)."""
    yaml_path = Path(yaml_path)
    data = read_yaml(yaml_path)
    folder = Path(local_dir) if local_dir is not None else yaml_path.resolve().parent
    return SongBloomConfig.from_dict(data, source=str(yaml_path), local_dir=folder)


# -- configs in code -------------------------------------------------------------------------


def config_dict(*, block_size: int, latent_dim: int, dim: int, num_heads: int, lm_layers: int, diff_layers: int,
                num_pitch: int, timestep_features_dim: int, prompt_max_len: int, lyric_max_len: int,
                max_sentence_per_structure: int = 50, rotary_base_val: float = 20000, h_dropout: float = 0.05,
                cfg_dropout: float = 0.1, prompt_dropout: float = 0.1, hidden_scale: int = 4,
                max_dur: float = 150.0, sr: int = 48000, prompt_len: float = 10.0,
                vae_cfg: str | None = None, vae_ckpt: str | None = None,
                inference: dict | None = None) -> dict:
    """A config dict in the upstream schema (the released file's keys) with the given sizes."""
    return {
        "sr": sr,
        "max_dur": max_dur,
        "train_dataset": {"lyric_processor": "phoneme", "prompt_len": prompt_len},
        "vae": {"vae_cfg": vae_cfg, "vae_ckpt": vae_ckpt, "sr": sr},
        "model": {
            "block_size": block_size, "latent_dim": latent_dim, "dim": dim, "num_heads": num_heads,
            "lm_layers": lm_layers, "diff_layers": diff_layers, "num_pitch": num_pitch,
            "hidden_scale": hidden_scale, "time_cond_type": "prepend",
            "timestep_features_dim": timestep_features_dim, "diffusion_objective": "rectified_flow",
            "timestep_sampler": "logit_normal", "backend": "llama", "rotary_base_val": rotary_base_val,
            "init_std": 0.02, "h_dropout": h_dropout,
            "condition_provider_cfg": {
                PROMPT: {"type": "audio_tokenizer_wrapper", "output_dim": dim, "max_len": prompt_max_len},
                LYRICS: {"type": "phoneme_tokenizer", "output_dim": dim, "max_len": lyric_max_len,
                         "max_sentence_per_structure": max_sentence_per_structure, "mode": "sum"},
            },
            "cfg_dropout": cfg_dropout,
            "attribute_dropout": {"text": {LYRICS: 0.0}, "wav": {PROMPT: prompt_dropout}},
            "fuser_cfg": {"prepend": [LYRICS, PROMPT], "sum": [], "cross": [], "input_interpolate": []},
        },
        "inference": dict(inference or {}),
    }


def full_config(**overrides) -> SongBloomConfig:
    """The released ``songbloom_full_150s`` model (2B: 36 LM + 12 DiT layers at 1536)."""
    values = dict(block_size=16, latent_dim=64, dim=1536, num_heads=24, lm_layers=36, diff_layers=12,
                  num_pitch=16384, timestep_features_dim=256, prompt_max_len=250, lyric_max_len=600,
                  max_sentence_per_structure=50, inference=dict(cfg_coef=1.5, temp=0.9, diff_temp=0.95, top_k=100,
                                                                penalty_repeat=True, penalty_window=50, steps=36,
                                                                dit_cfg_type="h"))
    values.update(overrides)
    return SongBloomConfig.from_dict(config_dict(**values), source="full_config")


def tiny_config(**overrides) -> SongBloomConfig:
    """A small model for tests (block 4, latent 8, dim 64 x 2 heads, 2 + 2 layers, 64 sketch ids)."""
    values = dict(block_size=4, latent_dim=8, dim=64, num_heads=2, lm_layers=2, diff_layers=2, num_pitch=64,
                  timestep_features_dim=32, prompt_max_len=12, lyric_max_len=24, max_sentence_per_structure=4,
                  max_dur=0.32)
    values.update(overrides)
    return SongBloomConfig.from_dict(config_dict(**values), source="tiny_config")
