"""Fine-tuning options: which weights of a ZipVoice model a run trains.

Modes (:attr:`FinetuneOptions.mode`):

``full``
    every weight is trained.
``freeze_decoder`` (``--freeze-fm-decoder true``)
    the whole flow-matching decoder (``fm_decoder.*``) is frozen; the token
    embedding and the text encoder are trained.
``freeze_stacks`` (``--freeze-fm-decoder-stacks 2,3,4``)
    the listed Zipformer stacks of the decoder (``fm_decoder.encoders.<i>``,
    0-based like that ``ModuleList``) are frozen, everything else is trained.
``lora`` / ``dora`` (``--use-lora true`` / ``--use-dora true``)
    every base weight is frozen; low-rank adapters (DoRA: plus a per-output
    magnitude) are trained on the decoder's projections named by
    ``--lora-target-modules``. When the token table was extended, the
    embedding is trained too.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from shirabe.cli import InputError, add_bool_argument

#: Module-name suffixes (inside ``fm_decoder``) adapted by default: every ``nn.Linear``
#: of the attention (weights, value and non-linear attention) and the first linear of
#: each feed-forward module. The second linear of a feed-forward or convolution module
#: (``ActivationDropoutAndLinear``, ``*.out_proj``) can be named as well.
DEFAULT_LORA_TARGETS: tuple[str, ...] = (
    "self_attn_weights.in_proj",
    "self_attn1.in_proj",
    "self_attn1.out_proj",
    "self_attn2.in_proj",
    "self_attn2.out_proj",
    "nonlin_attention.in_proj",
    "nonlin_attention.out_proj",
    "feed_forward1.in_proj",
    "feed_forward2.in_proj",
    "feed_forward3.in_proj",
)

MODES = ("full", "freeze_decoder", "freeze_stacks", "lora", "dora")
ADAPTER_MODES = ("lora", "dora")


def parse_int_list(value, option: str = "--freeze-fm-decoder-stacks") -> tuple[int, ...]:
    """``"2,3,4"`` (or a sequence of ints) → ``(2, 3, 4)``; ``""``/``None`` → ``()``."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    else:
        items = list(value)
    out = []
    for v in items:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise InputError(f"{option}: expected comma-separated stack indices like 2,3,4, got {value!r}") from None
    return tuple(out)


def parse_name_list(value, option: str = "--lora-target-modules") -> tuple[str, ...]:
    """``"a.b,c"`` (or a sequence of names) → ``("a.b", "c")``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(v).strip() for v in items if str(v).strip())


@dataclass
class FinetuneOptions:
    """What a fine-tuning run trains; see the module docstring for the modes.

    Construction validates the combination and raises a one-line
    :class:`~shirabe.cli.InputError` naming the offending option. Stack indices
    are checked against the model in ``prepare_model_for_finetuning``.
    """

    freeze_fm_decoder: bool = False
    freeze_fm_decoder_stacks: tuple[int, ...] = ()
    use_lora: bool = False
    use_dora: bool = False
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = field(default_factory=lambda: DEFAULT_LORA_TARGETS)

    def __post_init__(self):
        self.freeze_fm_decoder = bool(self.freeze_fm_decoder)
        self.use_lora = bool(self.use_lora)
        self.use_dora = bool(self.use_dora)
        self.freeze_fm_decoder_stacks = parse_int_list(self.freeze_fm_decoder_stacks)
        self.lora_target_modules = parse_name_list(self.lora_target_modules)
        self.validate()

    @property
    def mode(self) -> str:
        if self.use_dora:
            return "dora"
        if self.use_lora:
            return "lora"
        if self.freeze_fm_decoder:
            return "freeze_decoder"
        if self.freeze_fm_decoder_stacks:
            return "freeze_stacks"
        return "full"

    @property
    def uses_adapters(self) -> bool:
        return self.mode in ADAPTER_MODES

    def validate(self) -> None:
        adapter_flag = "--use-dora" if self.use_dora else "--use-lora"
        if self.uses_adapters and self.freeze_fm_decoder:
            raise InputError(f"{adapter_flag} cannot be combined with --freeze-fm-decoder "
                             "(adapters already freeze every base weight)")
        if self.uses_adapters and self.freeze_fm_decoder_stacks:
            raise InputError(f"{adapter_flag} cannot be combined with --freeze-fm-decoder-stacks "
                             "(adapters already freeze every base weight)")
        if self.freeze_fm_decoder and self.freeze_fm_decoder_stacks:
            raise InputError("--freeze-fm-decoder-stacks cannot be combined with --freeze-fm-decoder "
                             "(which freezes the whole decoder)")
        stacks = self.freeze_fm_decoder_stacks
        if any(i < 0 for i in stacks):
            raise InputError(f"--freeze-fm-decoder-stacks: indices are 0-based and must be >= 0, got {list(stacks)}")
        if len(set(stacks)) != len(stacks):
            raise InputError(f"--freeze-fm-decoder-stacks: an index is listed twice in {list(stacks)}")
        if self.uses_adapters:
            if int(self.lora_rank) != self.lora_rank or self.lora_rank < 1:
                raise InputError(f"--lora-rank must be an integer >= 1, got {self.lora_rank}")
            if not self.lora_alpha > 0:
                raise InputError(f"--lora-alpha must be > 0, got {self.lora_alpha}")
            if not 0.0 <= self.lora_dropout < 1.0:
                raise InputError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
            if not self.lora_target_modules:
                raise InputError("--lora-target-modules: no module names given")
        self.lora_rank = int(self.lora_rank)
        self.lora_alpha = float(self.lora_alpha)
        self.lora_dropout = float(self.lora_dropout)

    @classmethod
    def from_args(cls, args) -> FinetuneOptions:
        """Options from parsed arguments (attributes named like the fields; missing ones default)."""
        kwargs = {}
        for name in ("freeze_fm_decoder", "freeze_fm_decoder_stacks", "use_lora", "use_dora",
                     "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules"):
            if hasattr(args, name) and getattr(args, name) is not None:
                kwargs[name] = getattr(args, name)
        return cls(**kwargs)

    @classmethod
    def from_metadata(cls, meta: dict) -> FinetuneOptions:
        """Inverse of :func:`finetune_metadata`."""
        return cls(
            freeze_fm_decoder=meta.get("freeze_fm_decoder", False),
            freeze_fm_decoder_stacks=tuple(meta.get("freeze_fm_decoder_stacks", ())),
            use_lora=meta.get("mode") == "lora" or meta.get("use_lora", False),
            use_dora=meta.get("mode") == "dora" or meta.get("use_dora", False),
            lora_rank=meta.get("lora_rank", 16),
            lora_alpha=meta.get("lora_alpha", 32.0),
            lora_dropout=meta.get("lora_dropout", 0.05),
            lora_target_modules=tuple(meta.get("lora_target_modules", DEFAULT_LORA_TARGETS)),
        )


def finetune_metadata(opts: FinetuneOptions) -> dict:
    """JSON-able description of ``opts``, stored by the trainer under ``checkpoint["finetune"]``."""
    return {
        "mode": opts.mode,
        "freeze_fm_decoder": opts.freeze_fm_decoder,
        "freeze_fm_decoder_stacks": list(opts.freeze_fm_decoder_stacks),
        "use_lora": opts.use_lora,
        "use_dora": opts.use_dora,
        "lora_rank": opts.lora_rank,
        "lora_alpha": opts.lora_alpha,
        "lora_dropout": opts.lora_dropout,
        "lora_target_modules": list(opts.lora_target_modules),
    }


def add_finetune_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup):
    """Add the fine-tuning flags to ``parser`` (or an argument group); returns the group."""
    group = parser.add_argument_group(
        "fine-tuning strategy",
        "which weights are trained; at most one of: --freeze-fm-decoder, --freeze-fm-decoder-stacks, "
        "--use-lora/--use-dora (default: all weights)",
    ) if isinstance(parser, argparse.ArgumentParser) else parser
    add_bool_argument(group, "--freeze-fm-decoder", False,
                      "freeze the whole flow-matching decoder (fm_decoder.*); train the token embedding "
                      "and the text encoder")
    group.add_argument("--freeze-fm-decoder-stacks", default=None, metavar="I,J,...",
                       help="comma-separated 0-based indices of FM-decoder stacks to freeze "
                            "(fm_decoder.encoders.<i>, e.g. 2,3,4; the released model has stacks 0-4); "
                            "everything else is trained (default: none)")
    add_bool_argument(group, "--use-lora", False,
                      "train LoRA adapters on the FM decoder's linear projections, all base weights frozen")
    add_bool_argument(group, "--use-dora", False,
                      "train DoRA adapters (LoRA plus a learned magnitude per output channel) instead of "
                      "LoRA; implies --use-lora")
    group.add_argument("--lora-rank", type=int, default=16, help="rank r of the LoRA/DoRA adapters")
    group.add_argument("--lora-alpha", type=float, default=32.0,
                       help="LoRA scaling alpha (the update is scaled by alpha / rank)")
    group.add_argument("--lora-dropout", type=float, default=0.05, help="dropout on the adapter input")
    group.add_argument("--lora-target-modules", default=",".join(DEFAULT_LORA_TARGETS), metavar="NAMES",
                       help="comma-separated module-name suffixes inside fm_decoder whose nn.Linear or "
                            "ActivationDropoutAndLinear (feed_forward*/conv_module*.out_proj) layers get adapters")
    return group
