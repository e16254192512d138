"""Paths and helpers shared by the ZipVoice ONNX tests."""

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ZIPVOICE_TINY = FIXTURES / "zipvoice_tiny"
VOCOS_TINY = FIXTURES / "vocos_tiny"
UNITY_FRAMES = 64
UNITY_TOKENS = 16
TOLERANCE = 1e-4

MODELS = {
    "zipvoice": ("model.pt", "model.json", "onnx_cases.npz", "onnx_io.json"),
    "zipvoice_distill": ("model_distill.pt", "model_distill.json", "onnx_cases_distill.npz", "onnx_io_distill.json"),
}


def npz(name: str) -> dict[str, np.ndarray]:
    with np.load(ZIPVOICE_TINY / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
