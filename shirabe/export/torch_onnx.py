"""``torch.onnx.export`` with the settings every Shirabe export uses.

The TorchScript exporter (``dynamo=False``) traces the module in eval mode
with constant folding; the written file is checked with ``onnx.checker``.
The dynamo exporter needs ``onnxscript`` and handles these models' shape
arithmetic differently, so it is not used.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)


def export_onnx(
    module,
    args: tuple,
    path: str | Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = 13,
) -> Path:
    """Trace ``module(*args)`` into ``path``; returns the path."""
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():
        # tracer warnings about Python values derived from shapes are expected and harmless here
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(tmp),
            dynamo=False,
            opset_version=opset,
            do_constant_folding=True,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes or {},
        )
    if not dynamic_axes:
        # Without dynamic axes every shape is fixed; the exporter leaves outputs whose shape
        # depends on data-dependent ops (masks, gathers) symbolic, so pin them to the traced ones.
        with torch.no_grad():
            outputs = module(*args)
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        model = onnx.load(str(tmp))
        set_static_shapes(model, {name: tuple(o.shape) for name, o in zip(output_names, outputs)})
        onnx.save(model, str(tmp))
    onnx.checker.check_model(str(tmp))
    tmp.replace(path)
    return path


def set_static_shapes(model, shapes: dict[str, tuple[int, ...]]) -> None:
    """Write fixed ``shapes`` into the graph outputs named in it."""
    for out in model.graph.output:
        if out.name in shapes:
            dims = out.type.tensor_type.shape.dim
            del dims[:]
            for size in shapes[out.name]:
                dims.add().dim_value = int(size)
