"""Fixtures of the ZipVoice ONNX tests: the tiny fixture models and their graphs, exported once
per session."""

import shutil

import pytest
from zipvoice_onnx_testlib import MODELS, UNITY_FRAMES, UNITY_TOKENS, VOCOS_TINY, ZIPVOICE_TINY


@pytest.fixture(scope="session")
def torch_models():
    from zipvoice.models import load_model

    return {name: load_model(ZIPVOICE_TINY, ck, name, config_name=cfg) for name, (ck, cfg, _, _) in MODELS.items()}


@pytest.fixture(scope="session")
def tiny_vocos():
    from shirabe.vocoder import load_vocos

    return load_vocos(VOCOS_TINY / "config.yaml", VOCOS_TINY / "pytorch_model.bin")


@pytest.fixture(scope="session")
def onnx_dirs(tmp_path_factory, torch_models, tiny_vocos):
    """Dynamic graphs (+ int8) of both models; the ZipVoice directory also holds vocoder.onnx
    and tokens.txt, as the export binary writes them."""
    from zipvoice.export.exporter import export_zipvoice

    out = {}
    for name, model in torch_models.items():
        d = tmp_path_factory.mktemp(f"onnx_{name}")
        export_zipvoice(model, name, d, int8=True, vocos=tiny_vocos if name == "zipvoice" else None)
        shutil.copyfile(ZIPVOICE_TINY / "tokens.txt", d / "tokens.txt")
        out[name] = d
    return out


@pytest.fixture(scope="session")
def unity_dirs(tmp_path_factory, torch_models, tiny_vocos):
    from zipvoice.export.exporter import export_zipvoice

    out = {}
    for name, model in torch_models.items():
        d = tmp_path_factory.mktemp(f"unity_{name}")
        export_zipvoice(model, name, d, unity_sentis=True, fm_seq_len=UNITY_FRAMES, token_seq_len=UNITY_TOKENS,
                        vocos=tiny_vocos if name == "zipvoice" else None)
        out[name] = d
    return out
