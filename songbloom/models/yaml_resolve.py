"""Reading SongBloom's YAML configs: the ``${...}`` interpolations of its schema, without OmegaConf.

The released configs use three kinds of interpolation:

* ``${dynamic_path:???/name}``: a path; ``???`` stands for the folder the checkpoint files sit in
  (the yaml's own folder unless another ``local_dir`` is given);
* ``${load_yaml:PATH}``: the content of another YAML file (the lyric vocabulary list); a relative
  PATH is taken from ``local_dir``;
* ``${model.dim}``, ``${sr}``: the value of another field, by its dotted path from the top.

An interpolation that is the whole value keeps the referenced value's type (``${model.dim}`` is an
int, ``${load_yaml:...}`` a list); inside a longer string it is formatted into the string.
Interpolations nest (``${load_yaml:${dynamic_path:???/vocab_g2p.yaml}}``). A value that is exactly
``???`` is a missing value. Errors are one-line :class:`~shirabe.cli.InputError` naming the file
and the dotted field.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shirabe.cli import InputError

MISSING = "???"


class _Resolver:
    def __init__(self, root: dict, source: str, local_dir: Path):
        self.root = root
        self.source = source
        self.local_dir = local_dir
        self.functions: dict[str, Callable[[str, str], Any]] = {
            "dynamic_path": self._dynamic_path,
            "load_yaml": self._load_yaml,
        }
        self.active: list[str] = []

    def fail(self, field: str, message: str) -> InputError:
        return InputError(f"{self.source}: field '{field}' {message}")

    # -- resolver functions -------------------------------------------------

    def _dynamic_path(self, arg: str, field: str) -> str:
        return arg.replace(MISSING, str(self.local_dir))

    def _load_yaml(self, arg: str, field: str) -> Any:
        path = Path(arg)
        if not path.is_absolute():
            path = self.local_dir / path
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise self.fail(field, f"loads {path}, which cannot be read ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise self.fail(field, f"loads {path}, which is not YAML ({str(e).splitlines()[0]})") from None

    # -- the walk -------------------------------------------------------------

    def lookup(self, dotted: str, field: str) -> Any:
        node: Any = self.root
        walked = []
        for part in dotted.split("."):
            walked.append(part)
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise self.fail(field, f"refers to '{dotted}', which does not exist")
        if dotted in self.active:
            raise self.fail(field, f"refers to '{dotted}' in a cycle ({' -> '.join(self.active + [dotted])})")
        self.active.append(dotted)
        try:
            return self.value(node, dotted)
        finally:
            self.active.pop()

    def value(self, node: Any, field: str) -> Any:
        if isinstance(node, dict):
            return {k: self.value(v, f"{field}.{k}" if field else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v, f"{field}.{i}") for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return self.string(node, field)
        return node

    def string(self, text: str, field: str) -> Any:
        parts: list[Any] = []
        i = 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                parts.append(text[i:])
                break
            parts.append(text[i:start])
            end = self._matching_brace(text, start, field)
            parts.append(self.interpolation(text[start + 2:end], field))
            i = end + 1
        parts = [p for p in parts if not (isinstance(p, str) and p == "")]
        if len(parts) == 1:
            return parts[0]
        return "".join(str(p) for p in parts)

    def _matching_brace(self, text: str, start: int, field: str) -> int:
        depth, i = 0, start
        while i < len(text):
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise self.fail(field, f"has an unclosed interpolation: {text!r}")

    def interpolation(self, body: str, field: str) -> Any:
        colon = body.find(":")
        nested = body.find("${")
        if colon >= 0 and (nested < 0 or colon < nested):
            name, arg = body[:colon].strip(), body[colon + 1:]
            if name not in self.functions:
                known = ", ".join(sorted(self.functions))
                raise self.fail(field, f"uses the unknown resolver '{name}' (known: {known})")
            arg_value = self.string(arg, field) if "${" in arg else arg
            return self.functions[name](str(arg_value), field)
        dotted = body.strip()
        if not dotted or "${" in dotted:
            raise self.fail(field, f"has an interpolation this reader does not support: '${{{body}}}'")
        return self.lookup(dotted, field)


def resolve_config(data: Any, source: str = "config", local_dir: str | Path = ".") -> dict:
    """A copy of ``data`` (a parsed YAML mapping) with every ``${...}`` interpolation resolved."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a YAML mapping at the top level, found {type(data).__name__}")
    data = copy.deepcopy(data)
    return _Resolver(data, source, Path(local_dir)).value(data, "")


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable or malformed files are a one-line :class:`InputError`."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the config ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not a YAML file ({str(e).splitlines()[0]})") from None
