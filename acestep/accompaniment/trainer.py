"""Training a vocal → accompaniment model on the shared Trainer: the plan, the model, the trainer.

:func:`plan_training` reads and checks a training config against a checkpoint's transformer and
pairs the latent caches; :func:`build_model` wraps the transformer (LoRA) and, in controlnet mode,
a fresh control encoder; :func:`make_trainer` wires model, AdamW, the warm-up/linear schedule, the
pair sampler and :func:`acestep.accompaniment.training.compute_loss` into an
:class:`AccompanimentTrainer` (the shared loop plus a model bundle with every checkpoint), resumed
when its experiment directory holds a checkpoint. ``acestep.bin.train_accompaniment`` and the
Optuna search (:mod:`acestep.accompaniment.search`) both run on it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from acestep.accompaniment.training import (
    AccompanimentModel,
    LossSettings,
    PairSampler,
    PairSet,
    build_control_encoder,
    compute_loss,
    control_heads,
    load_pairs,
    max_frames,
)
from acestep.config import TrainingConfig, apply_overrides, load_config
from acestep.training.lora import LoraSpec
from acestep.training.lr import WarmupLinear
from shirabe.cli import ArgumentParser, InputError, get_logger
from shirabe.train.adapters import load_trainable_state_dict, trainable_state_dict
from shirabe.train.dist import wrap_ddp
from shirabe.train.loop import SEED_STRIDE_PER_RANK, Trainer, new_training_params, unwrap
from shirabe.train.metrics import TensorBoard
from shirabe.train.options import add_training_arguments, check_training_arguments, resolve_dtype
from shirabe.train.precision import MixedPrecision

logger = get_logger(__name__)
TRANSFORMER_DIR = "ace_step_transformer"
BUNDLE_DIR = "bundle"
CHECKPOINTS_DIR = "checkpoints"
CONFIG_NAME = "accompaniment_config.json"
BETAS = (0.8, 0.9)


def add_run_arguments(p: ArgumentParser) -> None:
    """Options this binary shares with ``acestep.bin.optuna_search``."""
    p.add_argument("--checkpoint-dir", type=Path, required=True,
                   help="released checkpoint folder; its ace_step_transformer/ is trained (required)")
    p.add_argument("--dataset-path", default=None,
                   help="folder with the vocal/ and target/ latent caches (default: None = the config's dataset_path)")
    p.add_argument("--control-dropout", type=float, default=0.0,
                   help="controlnet: per-song probability of training without the vocal control (0: never; "
                        "generation always adds it)")
    p.add_argument("--log-interval", type=int, default=25, help="log every N updates")
    add_training_arguments(p, seed=42, dtype="float32", max_grad_norm=0.5)
    for action in p._actions:
        if action.dest == "accum_grad":  # the config's accumulate_grad_batches unless given
            action.default = None
            action.help = "override the config's accumulate_grad_batches (default: None = the config's)"


def check_run_arguments(args) -> None:
    check_training_arguments(args)
    if args.log_interval < 1:
        raise InputError(f"--log-interval must be positive, got {args.log_interval}")
    if not 0.0 <= args.control_dropout <= 1.0:
        raise InputError(f"--control-dropout must lie in [0, 1], got {args.control_dropout}")


def cli_overrides(args) -> dict:
    out = {}
    if getattr(args, "num_iters", None) is not None:
        out["max_steps"] = args.num_iters
    if args.accum_grad is not None:
        out["accumulate_grad_batches"] = args.accum_grad
    if getattr(args, "dataset_path", None) is not None:
        out["dataset_path"] = str(args.dataset_path)
    return out


@dataclass
class Plan:
    config: TrainingConfig
    config_path: Path
    data: PairSet
    lora: LoraSpec
    num_layers: int
    width: int
    lora_parameters: int
    control_parameters: int
    control_heads: int | None
    argv: list[str] | None = None


def transformer_config(checkpoint_dir: Path):
    from acestep.models import load_config as load_model_config

    path = Path(checkpoint_dir) / TRANSFORMER_DIR / "config.json"
    if not path.is_file():
        raise InputError(f"{path.parent}: no transformer folder (config.json) in --checkpoint-dir")
    return load_model_config(path)


def lora_spec(config: TrainingConfig) -> LoraSpec:
    lora = config.lora
    return LoraSpec(lora.r, float(lora.lora_alpha), lora.use_rslora, tuple(lora.target_modules), lora.lora_dropout)


def count_parameters(config: TrainingConfig, model_config) -> tuple[int, int]:
    """(LoRA, control encoder) trainable parameters, counted on a meta-device build (no memory)."""
    from acestep.models import ACEStepTransformer
    from shirabe.train.lora import resolve_targets

    with torch.device("meta"):
        model = ACEStepTransformer(model_config)
        control = build_control_encoder(config, model_config.inner_dim) \
            if config.accompaniment.mode == "controlnet" else None
    modules = dict(model.named_modules())
    targets = resolve_targets(model, config.lora.target_modules, option="lora.target_modules")
    r = config.lora.r
    lora = sum(r * (modules[t].in_features + modules[t].out_features) for t in targets)
    return lora, (sum(q.numel() for q in control.parameters()) if control is not None else 0)


def plan_training(config_path: Path, checkpoint_dir: Path, overrides: dict | None = None,
                  argv: list[str] | None = None, config: TrainingConfig | None = None) -> Plan:
    """Read and check the config (against the checkpoint's depth) and the pairs; one-line errors."""
    model_config = transformer_config(checkpoint_dir)
    layers = model_config.num_layers
    if config is None:
        config = load_config(config_path, "training", num_layers=layers)
    if overrides:
        config = apply_overrides(config, overrides, num_layers=layers, source=str(config_path))
    if config.ssl_coeff > 0:
        logger.warning("%s: ssl_coeff %g is ignored: the latent cache holds no SSL (MERT/mHuBERT) targets",
                       config_path, config.ssl_coeff)
    if config.warmup_steps >= config.max_steps:
        logger.warning("%s: warmup_steps %d >= max_steps %d: the learning rate never reaches its peak",
                       config_path, config.warmup_steps, config.max_steps)
    data = load_pairs(config.dataset_path)
    lora_count, control_count = count_parameters(config, model_config)
    heads = control_heads(config.accompaniment.control_encoder_dim) if config.accompaniment.mode == "controlnet" \
        else None
    return Plan(config, Path(config_path), data, lora_spec(config), layers, model_config.inner_dim, lora_count,
                control_count, heads, argv)


def describe_plan(plan: Plan, exp_dir: Path) -> str:
    c, acc = plan.config, plan.config.accompaniment
    frames = sum(p.frames for p in plan.data.pairs)
    crop = max_frames(c.max_duration)
    lines = [f"config: {plan.config_path} (transformer depth {plan.num_layers}, width {plan.width})"]
    if acc.mode == "image2image":
        lines.append(f"mode: image2image, output {acc.output_type}, reference_strength {acc.reference_strength}")
    else:
        lines.append(f"mode: controlnet, output {acc.output_type}, controlnet_scale {acc.controlnet_scale}, "
                     f"injection_layers {acc.injection_layers}")
    lines.append(f"pairs: {len(plan.data.pairs)} from {c.dataset_path} ({frames} latent frames, "
                 f"{frames / 10.7666 / 60:.1f} min; longest {max(p.frames for p in plan.data.pairs)} frames, "
                 f"cut to {crop} = max_duration {c.max_duration:g} s)")
    for key, reason in plan.data.skipped:
        lines.append(f"  skipped {key}: {reason}")
    lines.append(f"LoRA: r {c.lora.r}, alpha {c.lora.lora_alpha}{', rslora' if c.lora.use_rslora else ''}, "
                 f"targets {', '.join(c.lora.target_modules)}: {plan.lora_parameters:,} trainable parameters")
    if acc.mode == "controlnet":
        lines.append(f"control encoder: dim {acc.control_encoder_dim}, depth {acc.control_encoder_depth}, "
                     f"heads {plan.control_heads}: {plan.control_parameters:,} trainable parameters")
    lines.append(f"steps: {c.max_steps} (warm-up {c.warmup_steps}), lr {c.learning_rate:g}, weight decay "
                 f"{c.weight_decay:g}, batch {c.batch_size} pair(s) x {c.accumulate_grad_batches} accumulated, "
                 f"shift {c.shift:g}, structure_loss_weight {c.structure_loss_weight:g}")
    lines.append(f"output: {exp_dir} (checkpoint and bundle every {c.checkpoint_every_n_steps} steps, "
                 f"final bundle {exp_dir / BUNDLE_DIR})")
    return "\n".join(lines)


def build_model(plan: Plan, checkpoint_dir: Path, seed: int, gradient_checkpointing: bool = False
                ) -> AccompanimentModel:
    from acestep.models import load_transformer
    from acestep.training.lora import wrap_transformer

    transformer = load_transformer(Path(checkpoint_dir) / TRANSFORMER_DIR, dtype=torch.float32)
    transformer.gradient_checkpointing = bool(gradient_checkpointing)
    torch.manual_seed(seed)  # the adapters' initial A and the control encoder: the same in every run with this seed
    wrapped = wrap_transformer(transformer, plan.lora, f"{plan.config_path}: lora")
    control = None
    if plan.config.accompaniment.mode == "controlnet":
        control = build_control_encoder(plan.config, transformer.config.inner_dim)
    return AccompanimentModel(wrapped, control, plan.config.accompaniment.controlnet_scale).train()


def write_bundle(model, config: TrainingConfig, folder: Path) -> Path:
    """The model bundle of ``model`` (an :class:`AccompanimentModel`, maybe DDP-wrapped) in ``folder``."""
    from acestep.accompaniment.bundle import save_bundle
    from acestep.models.lora import adapter_from_peft

    module = unwrap(model)
    return save_bundle(folder, config, adapter=adapter_from_peft(module.transformer),
                       control_encoder=module.control_encoder)


def write_final_bundle(model, config: TrainingConfig, exp_dir: Path) -> Path:
    out = exp_dir / BUNDLE_DIR
    tmp = out.with_name(f".tmp.{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    write_bundle(model, config, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    logger.info("wrote %s", out)
    return out


class AccompanimentTrainer(Trainer):
    """The shared loop, plus a model bundle in ``EXP/checkpoints/step=N/`` with every checkpoint."""

    config: TrainingConfig | None = None

    def after_step(self) -> None:
        p = self.params
        if self.rank != 0 or self.config is None:
            return
        if p.batch_idx_train % p.save_every_n == 0 or p.batch_idx_train >= p.num_iters:
            path = write_bundle(self.model, self.config, self.exp_dir / CHECKPOINTS_DIR / f"step={p.batch_idx_train}")
            logger.info("saved bundle %s", path)


def make_trainer(plan: Plan, args, exp_dir: Path, device: torch.device, rank: int = 0, world_size: int = 1,
                 trainer_cls: type[AccompanimentTrainer] = AccompanimentTrainer, valid_dl=None,
                 valid_interval: int = 0, save_every_n: int | None = None, keep_last_k: int = 3,
                 tensorboard: bool = True) -> AccompanimentTrainer:
    """The model, optimizer, schedule, data and :class:`AccompanimentTrainer` of a plan (resumed if ``exp_dir``
    holds a checkpoint)."""
    c = plan.config
    model = build_model(plan, args.checkpoint_dir, args.seed, args.gradient_checkpointing)
    logger.info("LoRA: %d, control encoder: %d trainable parameters; %d pairs", plan.lora_parameters,
                plan.control_parameters, len(plan.data.pairs))
    model.to(device)
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=c.learning_rate, betas=BETAS, weight_decay=c.weight_decay)
    scheduler = WarmupLinear(optimizer, total_batches=c.max_steps, warmup_batches=c.warmup_steps)
    sampler = PairSampler(plan.data.pairs, c.batch_size, max_frames(c.max_duration),
                          seed=args.seed + SEED_STRIDE_PER_RANK * rank)
    dtype = resolve_dtype(args)
    loop = new_training_params(
        exp_dir=exp_dir, seed=args.seed, num_iters=c.max_steps,
        save_every_n=save_every_n or c.checkpoint_every_n_steps, keep_last_k=keep_last_k,
        log_interval=args.log_interval, valid_interval=valid_interval, accum_grad=c.accumulate_grad_batches,
        max_grad_norm=args.max_grad_norm, gradient_checkpointing=False, world_size=world_size, lr=c.learning_rate,
        dtype=dtype, mode=c.accompaniment.mode)
    extra = {"mode": f"accompaniment-{c.accompaniment.mode}", "lora": plan.lora.as_dict(),
             "control_encoder": [c.accompaniment.control_encoder_dim, c.accompaniment.control_encoder_depth,
                                 list(c.accompaniment.injection_layers)]
             if c.accompaniment.mode == "controlnet" else None}
    settings = LossSettings.from_config(c, control_dropout=args.control_dropout)
    trainer = trainer_cls(loop, wrap_ddp(model, device), optimizer, scheduler, sampler,
                          partial(compute_loss, device=device, settings=settings), device,
                          MixedPrecision(dtype, device), valid_dl=valid_dl, rank=rank, world_size=world_size,
                          tb=TensorBoard(exp_dir / "tensorboard", enabled=tensorboard, rank=rank),
                          model_state_dict=trainable_state_dict, load_model_state=load_trainable_state_dict,
                          extra_state=extra, batches_per_epoch=len(sampler))
    trainer.config = c
    trainer.resume_latest(expect=extra)
    return trainer
