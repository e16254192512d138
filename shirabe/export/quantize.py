"""Dynamic int8 quantisation of an ONNX graph's MatMul weights (onnxruntime).

Weights of ``MatMul`` nodes become int8 (``QInt8``, per tensor); activations are
quantised to uint8 on the fly at run time. Metadata of the source graph is
kept. This is what upstream ZipVoice and sherpa-onnx ship as ``*_int8.onnx``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shirabe.export.metadata import add_metadata, read_metadata

logger = logging.getLogger(__name__)


def quantize_int8(src: str | Path, dst: str | Path, op_types: tuple[str, ...] = ("MatMul",)) -> Path:
    """Write the dynamically quantised copy of ``src`` to ``dst``; returns ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(src), Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantiser logs every skipped tensor on the root logger
    try:
        quantize_dynamic(model_input=str(src), model_output=str(dst), op_types_to_quantize=list(op_types),
                         weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    meta = read_metadata(src)
    if meta:
        add_metadata(dst, meta)
    logger.info("wrote %s (%.1f MB, int8 %s weights)", dst, dst.stat().st_size / 2**20, "/".join(op_types))
    return dst
