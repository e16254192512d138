"""Strict loading of a released MuQ checkpoint directory (``config.json`` + ``model.safetensors``).

Every tensor of the file must be used and every parameter and buffer of :class:`MuQ` must be
in the file, with the same shape. The only tensors accepted and dropped are the ones the
released checkpoints carry for pre-training, listed in :data:`TRAINING_ONLY_PATTERNS`:

- ``model.linear.{weight,bias}``: the pre-training prediction head;
- ``model.cls_token``;
- ``model.quantizer_<feature>.*``: the random-projection quantiser of the training targets
  (``random_projection``, ``codebook``);
- ``model.conformer.pos_conv_embed.conv.*``: a convolutional position embedding that the
  conformer builds but never calls (rotary positions are used); its weight-norm tensors are
  ``parametrizations.weight.original0/1`` or ``weight_g``/``weight_v`` depending on the
  versions that wrote the file.

Any other difference is an :class:`~shirabe.cli.InputError` of one line naming the file and
the first offending key. The model is built on the meta device and the file's tensors are
assigned to it, so a full-size model is not initialised twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from shirabe.cli import InputError
from shirabe.ssl.conformer import rotary_inv_freq
from shirabe.ssl.muq_config import MuQConfig
from shirabe.ssl.muq_model import MuQ

__all__ = ["CONFIG_FILENAME", "TRAINING_ONLY_PATTERNS", "WEIGHTS_FILENAME", "check_muq_state_dict",
           "is_training_only_key", "load_muq"]

CONFIG_FILENAME = "config.json"
WEIGHTS_FILENAME = "model.safetensors"

#: keys of released checkpoints that inference does not use (see the module docstring)
TRAINING_ONLY_PATTERNS = (
    r"model\.linear\.(weight|bias)",
    r"model\.cls_token",
    r"model\.quantizer_[A-Za-z0-9_]+\.(random_projection|codebook)",
    r"model\.conformer\.pos_conv_embed\.conv\.bias",
    r"model\.conformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original[01]",
    r"model\.conformer\.pos_conv_embed\.conv\.weight_[gv]",
)
_TRAINING_ONLY = re.compile("|".join(f"(?:{p})" for p in TRAINING_ONLY_PATTERNS))


def is_training_only_key(key: str) -> bool:
    """True for a checkpoint key that is accepted and dropped (:data:`TRAINING_ONLY_PATTERNS`)."""
    return _TRAINING_ONLY.fullmatch(key) is not None


def _first(keys: set[str]) -> str:
    ordered = sorted(keys)
    more = f" (and {len(ordered) - 1} more)" if len(ordered) > 1 else ""
    return f"'{ordered[0]}'{more}"


def check_muq_state_dict(model: MuQ, state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` that ``model`` uses; :class:`InputError` on any mismatch."""
    expected = model.state_dict(keep_vars=True)
    used = {k: v for k, v in state.items() if not is_training_only_key(k)}
    unexpected = set(used) - set(expected)
    if unexpected:
        raise InputError(f"{where}: not a MuQ checkpoint of this config: unexpected key {_first(unexpected)}")
    missing = set(expected) - set(used)
    if missing:
        raise InputError(f"{where}: not a MuQ checkpoint of this config: missing key {_first(missing)}")
    for key, target in expected.items():
        if tuple(used[key].shape) != tuple(target.shape):
            raise InputError(f"{where}: key '{key}' has shape {tuple(used[key].shape)}, the config "
                             f"needs {tuple(target.shape)}")
    rotary = model.model.conformer.embed_positions
    key = "model.conformer.embed_positions.inv_freq"
    if not torch.allclose(used[key].float(), rotary_inv_freq(rotary.head_dim, rotary.base), rtol=1e-5, atol=0.0):
        raise InputError(f"{where}: key '{key}' does not match rotary_embedding_base {rotary.base} of the config")
    return used


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None


def load_muq(directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             stft_backend: str = "auto") -> MuQ:
    """A :class:`MuQ` in eval mode from a local checkpoint directory (see the module docstring).

    ``directory`` holds ``config.json`` and ``model.safetensors`` as released (for example a
    download of ``OpenMuQ/MuQ-large-msd-iter``). The weights are cast to ``dtype``; the mel
    front end always runs in float32.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such MuQ checkpoint directory")
    config_path, weights_path = directory / CONFIG_FILENAME, directory / WEIGHTS_FILENAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise InputError(f"{path}: missing from the MuQ checkpoint directory")
    config = MuQConfig.from_json(config_path)
    with torch.device("meta"):
        model = MuQ(config, stft_backend=stft_backend)
    state = check_muq_state_dict(model, _read_safetensors(weights_path), str(weights_path))
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()
