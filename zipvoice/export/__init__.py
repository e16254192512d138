"""ONNX export of ZipVoice models: export-friendly module versions, the traced graph
wrappers and the exporter (``python -m zipvoice.bin.onnx_export``).

* :mod:`zipvoice.export.modules`: :func:`convert_for_export` (same weights, ONNX-friendly ops);
* :mod:`zipvoice.export.graphs`: the text encoder / decoder / vocoder graphs, dynamic
  (upstream's interface) and fixed-length (Unity Sentis);
* :mod:`zipvoice.export.exporter`: writing the files with names, metadata, int8 copies
  and the Unity op audit.

Running the graphs needs none of this (and no torch): see :mod:`zipvoice.utils.onnx_infer`.
"""
