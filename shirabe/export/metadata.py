"""Key/value metadata of ONNX files (``metadata_props``), as runtimes such as sherpa-onnx read it."""

from __future__ import annotations

from pathlib import Path

import onnx


def add_metadata(path: str | Path, metadata: dict[str, object]) -> None:
    """Set ``metadata`` (values stored as strings) on the model at ``path``, in place."""
    model = onnx.load(str(path))
    set_metadata(model, metadata)
    onnx.save(model, str(path))


def set_metadata(model: onnx.ModelProto, metadata: dict[str, object]) -> None:
    """Set ``metadata`` on a loaded model (existing keys are replaced)."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update({str(k): str(v) for k, v in metadata.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path_or_model: str | Path | onnx.ModelProto) -> dict[str, str]:
    model = path_or_model if isinstance(path_or_model, onnx.ModelProto) else onnx.load(str(path_or_model),
                                                                                      load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
