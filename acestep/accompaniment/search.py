"""The Optuna search over accompaniment training configs (``acestep.bin.optuna_search``).

Each trial draws its parameters from the search space (:func:`acestep.config.suggest`), writes
them into the base training config (:func:`acestep.config.apply_overrides`), trains in this
process for the config's ``max_steps`` in ``OUT/trial-NNNN/`` (the training of
``acestep.bin.train_accompaniment``, final bundle included) and validates every
``valid_interval`` updates on fixed batches: held-out pairs, or, without them, the training pairs
in key order with no dropout and noise seeded by the keys. :class:`ReportingTrainer` hands every
validation loss to the trial (:class:`TrialReporter`: ``trial.report(loss, step)``, then
``optuna.TrialPruned`` when ``trial.should_prune()``). The trial's value is its last validation
loss (minimised).

:func:`run_study` creates the study or loads it (same storage and name: several processes can
share one study), runs ``n_trials`` trials with ``study.ask``/``study.tell``: a pruned trial is
told PRUNED, a trial that raises is told FAIL (its error, one line, is logged and kept as the
trial's ``error`` attribute) and the next trial starts. :func:`write_results` writes
``best_config.json`` (the base config with the best complete trial's parameters, a valid
TrainingConfig) and ``trials.tsv``.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from acestep.accompaniment.trainer import AccompanimentTrainer
from acestep.config import OptunaConfig, TrainingConfig, apply_overrides, make_pruner, suggest

logger = logging.getLogger(__name__)
BEST_CONFIG = "best_config.json"
TRIALS_TABLE = "trials.tsv"


class TrialReporter:
    """Report validation losses to an optuna trial and raise ``optuna.TrialPruned`` when it should stop."""

    def __init__(self, trial):
        self.trial = trial
        self.reports: list[tuple[int, float]] = []

    def __call__(self, loss: float, step: int) -> None:
        import optuna

        if not math.isfinite(loss):
            raise RuntimeError(f"validation loss is {loss} at step {step}")
        self.trial.report(float(loss), int(step))
        self.reports.append((int(step), float(loss)))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (validation loss {loss:.4f})")


class ReportingTrainer(AccompanimentTrainer):
    """The accompaniment trainer whose every tracked validation goes to :attr:`reporter`."""

    reporter: TrialReporter | None = None

    def validate(self, track_best: bool = True) -> float:
        loss = super().validate(track_best)
        if track_best and self.reporter is not None:  # the untrained reference loss is not reported
            self.reporter(loss, self.params.batch_idx_train)
        return loss


@dataclass
class SearchSetup:
    """What every trial shares."""

    base: TrainingConfig
    config_path: Path
    search: OptunaConfig
    args: object  # the parsed command line (checkpoint_dir, seed, device options, ...)
    output_dir: Path
    device: object
    valid_path: Path | None = None
    valid_interval: int = 10


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def train_trial(trial, setup: SearchSetup) -> float:
    """Train one trial (see the module docstring); its last validation loss."""
    from acestep.accompaniment.trainer import make_trainer, plan_training, write_final_bundle
    from acestep.accompaniment.training import fixed_batches, load_pairs, max_frames

    params = suggest(trial, setup.search.search_space)
    exp_dir = setup.output_dir / f"trial-{trial.number:04d}"
    trial.set_user_attr("exp_dir", str(exp_dir))
    logger.info("trial %d: %s -> %s", trial.number, json.dumps(params), exp_dir)
    plan = plan_training(setup.config_path, setup.args.checkpoint_dir, params, config=setup.base)
    config = plan.config
    valid_pairs = load_pairs(setup.valid_path).pairs if setup.valid_path is not None else plan.data.pairs
    valid = fixed_batches(valid_pairs, config.batch_size, max_frames(config.max_duration))
    shutil.rmtree(exp_dir, ignore_errors=True)  # a trial number is new in its study: anything there is stale
    exp_dir.mkdir(parents=True, exist_ok=True)
    trainer = make_trainer(plan, setup.args, exp_dir, setup.device, trainer_cls=ReportingTrainer, valid_dl=valid,
                           valid_interval=setup.valid_interval, save_every_n=config.max_steps, keep_last_k=1,
                           tensorboard=bool(setup.args.tensorboard))
    trainer.reporter = TrialReporter(trial)
    try:
        trainer.fit()
        if trainer._last_valid_batch != trainer.params.batch_idx_train:
            trainer.validate()
        write_final_bundle(trainer.model, config, exp_dir)
        return float(trainer.params.valid_loss)
    finally:
        trainer.tb.close()
        del trainer
        gc.collect()


def run_study(setup: SearchSetup, storage: str, study_name: str, n_trials: int, timeout: float | None = None,
              sampler_seed: int | None = None):
    """Create or load the study and run ``n_trials`` trials in this process (see the module docstring)."""
    import optuna
    from optuna.trial import TrialState

    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="minimize",
                                pruner=make_pruner(setup.search), sampler=sampler, load_if_exists=True)
    logger.info("study %s in %s: %d trial(s) so far; running %d", study_name, storage, len(study.trials), n_trials)
    start = time.monotonic()
    for _ in range(n_trials):
        if timeout is not None and time.monotonic() - start >= timeout:
            logger.info("timeout of %g s reached", timeout)
            break
        trial = study.ask()
        try:
            value = train_trial(trial, setup)
        except optuna.TrialPruned as exc:
            logger.info("trial %d pruned: %s", trial.number, exc)
            study.tell(trial, state=TrialState.PRUNED)
            continue
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # any failure of one trial: record it, go on with the next
            message = one_line(exc)
            logger.error("trial %d failed: %s", trial.number, message)
            trial.set_user_attr("error", message)
            study.tell(trial, state=TrialState.FAIL)
            continue
        logger.info("trial %d: validation loss %.5f", trial.number, value)
        study.tell(trial, value)
    return study


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def trials_table(study) -> str:
    """One TSV row per trial: number, state, value, seconds, every parameter, error, experiment folder."""
    names = sorted({n for t in study.trials for n in t.params})
    rows = ["\t".join(["number", "state", "value", "seconds", *names, "error", "exp_dir"])]
    for t in study.trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        cells = [str(t.number), t.state.name, "" if t.value is None else f"{t.value:.6g}",
                 "" if seconds is None else f"{seconds:.1f}", *[str(t.params.get(n, "")) for n in names],
                 str(t.user_attrs.get("error", "")).replace("\t", " "), str(t.user_attrs.get("exp_dir", ""))]
        rows.append("\t".join(cells))
    return "\n".join(rows) + "\n"


def write_results(study, base: TrainingConfig, output_dir: Path, num_layers: int, source: str) -> Path | None:
    """``trials.tsv`` and, when a trial completed, ``best_config.json``; returns the latter's path (or None)."""
    from optuna.trial import TrialState

    output_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(output_dir / TRIALS_TABLE, trials_table(study))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    config = apply_overrides(base, best.params, num_layers=num_layers, source=f"{source} (trial {best.number})")
    path = output_dir / BEST_CONFIG
    _atomic_write(path, json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    logger.info("best trial %d: validation loss %.5f, %s -> %s", best.number, best.value, json.dumps(best.params),
                path)
    return path
