"""ONNX export helpers shared by the model packages.

* :mod:`shirabe.export.audit`: op audits of a graph against an allow-list
  (Unity Sentis: no control flow or sequence ops, static shapes, opset ≤ 15);
* :mod:`shirabe.export.metadata`: reading and writing ``metadata_props``;
* :mod:`shirabe.export.quantize`: dynamic int8 quantisation of MatMul weights;
* :mod:`shirabe.export.torch_onnx`: ``torch.onnx.export`` with the TorchScript
  exporter (``dynamo=False``) and a model check.

Only :mod:`~shirabe.export.torch_onnx` imports torch.
"""
