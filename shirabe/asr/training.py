"""What :class:`shirabe.train.loop.Trainer` needs to train the phone recognizer.

:func:`load_examples` turns an utterance list into features (cached) and phone
ids; :func:`compute_loss` is the loss function the loop calls.

:func:`nonspeech_examples` makes the non-speech clips that teach the model to
emit nothing for what is not speech.

The loss is the CTC loss summed over a batch and divided by its reference
phones, so the metrics' normaliser (``frames`` in the loop's vocabulary) counts
reference phones here. Validation batches also decode greedily and add the
edit errors, so the validation log line's ``per`` is the phone error rate of
the dev set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shirabe.asr.ctc import ctc_loss_sum, greedy_decode
from shirabe.asr.data import Example, read_utterance_list
from shirabe.asr.features import SAMPLE_RATE, FbankCache, fbank
from shirabe.asr.nonspeech import random_nonspeech
from shirabe.asr.per import edit_counts
from shirabe.asr.phones import TextPhones, phone_ids
from shirabe.text.tokens import TokenTable
from shirabe.train.metrics import MetricsTracker

logger = logging.getLogger(__name__)


def load_examples(tsv: str | Path, table: TokenTable, cache_file: str | Path, to_phones: TextPhones) -> list[Example]:
    """Features (through the cache in ``cache_file``) and phone ids of every utterance of ``tsv``."""
    utts = read_utterance_list(tsv)
    cache = FbankCache(cache_file)
    examples = []
    for u in utts:
        targets = phone_ids(table, to_phones(u.text), u.where)
        examples.append(Example(u.utt_id, cache.get(u.utt_id, u.wav), targets))
    cache.save()
    return examples


def nonspeech_examples(count: int, like: Sequence[Example], seed: int, hop: int = 256) -> list[Example]:
    """``count`` synthetic non-speech clips (:mod:`shirabe.asr.nonspeech`) with no phones, each as
    long as a randomly chosen example of ``like``; the same for the same seed."""
    rng = np.random.default_rng([int(seed) % 2**32, 0x5A5A])
    out = []
    for i in range(count):
        frames = like[int(rng.integers(0, len(like)))].feats.size(0)
        wav = random_nonspeech(rng, max(1, (frames - 1) * hop), SAMPLE_RATE)
        out.append(Example(f"nonspeech_{i:04d}", fbank(wav, SAMPLE_RATE), []))
    return out


def total_frames(examples: Sequence[Example]) -> int:
    return sum(e.feats.size(0) for e in examples)


def compute_loss(model: nn.Module, batch: dict, is_training: bool, *, device: torch.device):
    """CTC loss per reference phone of one batch (module docstring)."""
    feats = batch["feats"].to(device)
    feat_lens = batch["feat_lens"].to(device)
    targets = batch["targets"].to(device)
    target_lens = batch["target_lens"].to(device)
    with torch.set_grad_enabled(is_training):
        log_probs, out_lens = model(feats, feat_lens)
        loss_sum = ctc_loss_sum(log_probs, out_lens, targets, target_lens)
    phones = float(target_lens.sum())
    loss = loss_sum / max(phones, 1.0)
    metrics = MetricsTracker(loss=float(loss_sum.detach()), frames=phones, utterances=feats.size(0))
    if not is_training:
        errors = 0
        for b, hyp in enumerate(greedy_decode(log_probs, out_lens)):
            ref = targets[b, : int(target_lens[b])].tolist()
            errors += edit_counts(ref, hyp).errors
        metrics["per"] = float(errors)
    return loss, metrics
