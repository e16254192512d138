"""Small phone recognizers for the tests of the evaluation code that reports PER.

- :func:`fitted_recognizer`: a ~80 k-parameter model trained until it fits the six
  training utterances of the shared mini speech corpus (``mini_speech`` in
  tests/conftest.py), about 10 s on one CPU thread; built once per test session and
  shared by every directory that asks for it.
- :func:`blank_recognizer`: a hand-set model whose output layer always prefers the CTC
  blank, so it recognizes no phone in any audio: its PER is exactly 100 %.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

#: fits 6 utterances in 80 epochs (about 4 % PER on them; the seed fixes the weights)
FIT_OPTIONS = ["--seed", "7", "--conv-channels", "32", "--hidden-size", "48", "--num-layers", "1",
               "--batch-size", "3", "--num-epochs", "80", "--lr", "0.01", "--warmup-epochs", "0",
               "--spec-augment", "false", "--dropout", "0", "--tensorboard", "false", "--num-threads", "1",
               "--device", "cpu"]


def fitted_recognizer(basetemp: Path, mini_speech: Path) -> Path:
    """Model directory of a recognizer trained on (and validated on) ``mini_speech/train.tsv``."""
    exp = basetemp / "fitted_phone_recognizer"
    if (exp / "model.pt").is_file():
        return exp
    corpus = basetemp / "fitted_phone_recognizer_corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    train = (mini_speech / "train.tsv").read_text(encoding="utf-8")
    for split in ("train", "dev"):
        (corpus / f"{split}.tsv").write_text(train, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "shirabe.bin.train_phone_recognizer", "--corpus-dir", str(corpus),
                        "--exp-dir", str(exp), *FIT_OPTIONS], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return exp


def blank_recognizer(out_dir: Path, phones: list[str] | None = None) -> Path:
    """A recognizer (the full phone table, or ``phones``) that outputs only the blank."""
    from shirabe.asr.model import ModelConfig, PhoneCTCModel
    from shirabe.asr.phones import phone_table
    from shirabe.asr.recognizer import save_recognizer

    table = phone_table(phones)
    model = PhoneCTCModel(ModelConfig(num_classes=len(table), conv_channels=8, hidden_size=8, num_layers=1))
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.zero_()
        model.output.bias[0] = 10.0  # the blank, id 0
    save_recognizer(model, table, out_dir)
    return out_dir
