"""What a SongBloom training run trains: full fine-tuning, LoRA, and the lyric embedding's rows.

============  =====================================  ==========================================
mode          trains                                 lyric embedding (``--lyric-rows``)
============  =====================================  ==========================================
``full``      every weight of the LM, the DiT,       ``all`` (default): every row;
              the conditioners and heads             ``japanese``: only the untrained Japanese
                                                     rows; ``none``: frozen
``lora``      LoRA adapters on ``--lora-targets``    ``japanese`` (default): only those rows;
              (default ``q_proj v_proj to_qkv``: the ``all``; ``none``
              forks' choice) or, with
              ``--lora-train-all true``, on every
              linear layer; all base weights frozen
============  =====================================  ==========================================

With ``--init-japanese-rows true`` (the default when starting from a released
model) the untrained Japanese rows start from their IPA neighbours
(:mod:`songbloom.training.japanese_rows`). A LoRA on attention alone cannot
teach the model sounds whose embedding rows never learnt anything; training
those rows is what makes Japanese pronounceable, at 19 × d parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from shirabe.cli import InputError
from shirabe.train.lora import all_linear_targets, resolve_targets, wrap_lora
from songbloom.g2p import Vocab
from songbloom.training.japanese_rows import (
    init_japanese_rows,
    train_only_rows,
    untrained_japanese_symbols,
)

logger = logging.getLogger(__name__)

MODES = ("full", "lora")
LYRIC_ROWS = ("all", "japanese", "none")
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj", "to_qkv")
LYRIC_TABLE = "condition_provider.conditioners.lyrics.output_proj"
NO_DECAY_MARKS = ("bias", "norm", "gamma", "beta", "emb", "bos_token", "timestep_features", LYRIC_TABLE)


@dataclass
class TrainingMode:
    mode: str = "full"
    lyric_rows: str | None = None  # None: the mode's default
    init_japanese_rows: bool = False
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    lora_train_all: bool = False
    hooks: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise InputError(f"--mode must be one of {MODES}, got {self.mode!r}")
        if self.lyric_rows is None:
            self.lyric_rows = "all" if self.mode == "full" else "japanese"
        if self.lyric_rows not in LYRIC_ROWS:
            raise InputError(f"--lyric-rows must be one of {LYRIC_ROWS}, got {self.lyric_rows!r}")


def lyric_table(model: nn.Module) -> nn.Embedding:
    table = dict(model.named_modules()).get(LYRIC_TABLE)
    if not isinstance(table, nn.Embedding):
        raise InputError(f"the model has no lyric embedding table {LYRIC_TABLE}")
    return table


def prepare(model: nn.Module, mode: TrainingMode, vocab: Vocab) -> nn.Module:
    """Set what trains (see the module docstring); returns the model to train (a peft model for LoRA)."""
    table = lyric_table(model)
    japanese = untrained_japanese_symbols(vocab)
    if mode.init_japanese_rows:
        used = init_japanese_rows(table.weight.data, vocab, japanese)
        logger.info("initialised %d Japanese lyric rows from their IPA neighbours: %s", len(used),
                    ", ".join(f"{s}<-{'+'.join(d)}" for s, d in used.items()))
    if mode.mode == "lora":
        targets = all_linear_targets(model) if mode.lora_train_all else resolve_targets(model, mode.lora_targets)
        model = wrap_lora(model, targets, mode.lora_rank, mode.lora_alpha, mode.lora_dropout)
        table = lyric_table(model.get_base_model())
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    if mode.lyric_rows == "none":
        table.weight.requires_grad_(False)
    elif mode.lyric_rows == "all":
        table.weight.requires_grad_(True)
    else:
        mode.hooks.append(train_only_rows(table, [vocab.id(s) for s in japanese]))
    return model


def parameter_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: with weight decay (matrices) and without (biases, norms,
    embeddings; the lyric table always, so rows kept frozen by a gradient mask stay exactly as they are)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or any(m in name for m in NO_DECAY_MARKS) else decay).append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def describe(model: nn.Module, mode: TrainingMode, vocab: Vocab) -> str:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    rows = {"all": "every lyric row", "none": "no lyric row",
            "japanese": f"{len(untrained_japanese_symbols(vocab))} Japanese lyric rows"}[mode.lyric_rows]
    what = "every weight" if mode.mode == "full" else (
        "LoRA on every linear layer" if mode.lora_train_all else f"LoRA on {', '.join(mode.lora_targets)}")
    return f"mode {mode.mode}: {what} and {rows}; {trainable:,} of {total:,} parameters take gradients"


@torch.no_grad()
def changed_parameters(before: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Names whose values differ from ``before`` (a ``state_dict`` copy): what a step really updated."""
    now = model.state_dict()
    return [k for k, v in before.items() if k in now and not torch.equal(v, now[k])]
