"""Loading a LeLM checkpoint folder: ``CKPT_DIR/config.yaml`` + ``CKPT_DIR/model.pt``.

``model.pt`` is a plain dict of tensors (16-bit in the releases) whose LM keys start with
``audiolm.``; it is read with ``weights_only=True`` and loaded **strictly**: a missing,
unexpected (including any key outside ``audiolm.*``) or mis-shaped tensor is a one-line
:class:`~shirabe.cli.InputError` naming the file. The model is built on the meta device and the
tensors are assigned (cast to ``dtype``), so no random initialisation is spent on it. The version
comes from the config (see :mod:`songgeneration.models.config`).

The Qwen2 tokenizer is attached from ``tokenizer_dir`` when given, else from the config's
``token_path`` when that folder exists (absolute, or relative to the checkpoint folder or the
working directory); without it the model still runs on token ids.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from shirabe.cli import InputError, get_logger
from shirabe.train.checkpoint import load_state_dict_file
from songgeneration.models.config import LeLMConfig, load_config
from songgeneration.models.lelm import LeLM

logger = get_logger(__name__)

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.pt"
PREFIX = "audiolm."
V2_DESC_ROWS_HINT = "type_info"


def _some(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def build_lelm(config: LeLMConfig, device: str | torch.device = "cpu") -> LeLM:
    with torch.device(device):
        return LeLM(config)


def check_lelm_state(model: LeLM, state: dict[str, torch.Tensor], source: str) -> None:
    expected = {PREFIX + k: v for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(v.shape)})"
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_some(unexpected)}")
    if wrong:
        problems.append(f"shape mismatch: {_some(wrong, 2)}")
        desc = PREFIX + f"condition_provider.conditioners.{model.config.description.name}.output_proj.weight"
        if desc in state and state[desc].shape[0] != expected[desc].shape[0]:
            problems.append(f"the description table's row count says another model version than "
                            f"'{model.config.version}': set 'version' in {model.config.source}")
    if problems:
        raise InputError(f"{source}: does not match the model of {model.config.source}; " + "; ".join(problems))


def _tokenizer_dir(config: LeLMConfig, ckpt_dir: Path, tokenizer_dir) -> Path | None:
    if tokenizer_dir is not None:
        return Path(tokenizer_dir)
    token_path = Path(config.lyric.token_path)
    for cand in ([token_path] if token_path.is_absolute() else [ckpt_dir / token_path, Path.cwd() / token_path]):
        if cand.is_dir():
            return cand
    return None


def attach_tokenizer(model: LeLM, folder: str | Path) -> None:
    import copy

    from songgeneration.models.text_tokenizer import load_text_tokenizer

    cp = model.condition_provider
    tok = load_text_tokenizer(folder)
    cp.lyric.attach_tokenizer(folder, copy.deepcopy(tok))
    cp.description.attach_tokenizer(folder, tok)


def load_lelm(ckpt_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              tokenizer_dir: str | Path | None = None) -> LeLM:
    """The LeLM of a checkpoint folder, loaded strictly, in eval mode."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise InputError(f"{ckpt_dir}: checkpoint folder not found")
    config = load_config(ckpt_dir / CONFIG_NAME)
    weights = ckpt_dir / WEIGHTS_NAME
    state = load_state_dict_file(weights, map_location="cpu", key=None)
    model = build_lelm(config, "meta")
    check_lelm_state(model, state, str(weights))
    model.load_state_dict({k[len(PREFIX):]: (v.to(dtype) if v.is_floating_point() else v)
                           for k, v in state.items()}, strict=True, assign=True)
    model = model.to(device).eval()
    folder = _tokenizer_dir(config, ckpt_dir, tokenizer_dir)
    if folder is not None:
        attach_tokenizer(model, folder)
    elif tokenizer_dir is None:
        logger.info("%s: no tokenizer folder at token_path '%s'; the model takes token ids only",
                    config.source, config.lyric.token_path)
    return model


def save_lelm(model: LeLM, ckpt_dir: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write ``model.pt`` (``audiolm.*`` keys, ``dtype``) atomically; the config is the caller's."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    state = {PREFIX + k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items()}
    tmp = ckpt_dir / (WEIGHTS_NAME + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, ckpt_dir / WEIGHTS_NAME)
    return ckpt_dir / WEIGHTS_NAME
