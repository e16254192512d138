"""Training parameters: an attribute-access dict that logs itself as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from shirabe.cli import str2bool  # noqa: F401  (the one definition; imported from here by older code)


class AttributeDict(dict):
    """``params.lr`` is ``params["lr"]``; ``str(params)`` is sorted, indented JSON."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no parameter named '{key}'") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __delattr__(self, key):
        try:
            del self[key]
        except KeyError:
            raise AttributeError(f"no parameter named '{key}'") from None

    def plain(self) -> dict:
        """A copy holding only JSON-able values (paths, dtypes, devices as strings),
        safe to store in a checkpoint that loads with ``weights_only=True``."""
        return json.loads(json.dumps(self, default=_jsonable))

    def __str__(self) -> str:
        return json.dumps(self, indent=2, sort_keys=True, default=_jsonable, ensure_ascii=False)


def _jsonable(obj):
    if isinstance(obj, (Path, torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return repr(obj)
