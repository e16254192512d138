"""Fixed-length (Unity Sentis) graphs: audited op set, static shapes, and padded = unpadded."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from zipvoice_onnx_testlib import (
    MODELS,
    TOLERANCE,
    UNITY_FRAMES,
    UNITY_TOKENS,
    VOCOS_TINY,
    npz,
    session,
)

from shirabe.export.audit import (
    FORBIDDEN_OPS,
    UNITY_SENTIS_OPS,
    OpAuditError,
    audit_graph,
    check_graph,
)
from zipvoice.utils.onnx_infer import time_steps

GUIDANCE = {"zipvoice": 1.0, "zipvoice_distill": 3.0}


@pytest.mark.parametrize("name", list(MODELS))
def test_graphs_pass_the_audit(unity_dirs, name):
    files = sorted(unity_dirs[name].glob("*.onnx"))
    assert {f.name for f in files} >= {"text_encoder.onnx", "fm_decoder.onnx"}
    for path in files:
        report = audit_graph(path)
        assert report.ok, report.problems()
        assert not set(report.op_counts) & FORBIDDEN_OPS
        assert not any(op.startswith("Sequence") for op in report.op_counts)
        assert report.opset <= 15
        model = onnx.load(str(path))
        for value in list(model.graph.input) + list(model.graph.output):
            dims = value.type.tensor_type.shape.dim
            assert all(d.HasField("dim_value") and d.dim_value > 0 for d in dims), value.name
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["unity_sentis"] == "1" and meta["fm_seq_len"] == str(UNITY_FRAMES)


def _graph_with(op_type: str) -> onnx.ModelProto:
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["y1"])], "b", [],
                               [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1])])
    if op_type == "If":
        node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
        inputs = [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                  helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    else:
        node = helper.make_node(op_type, ["x"], ["y"])
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T"])]
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_audit_names_what_fails():
    with pytest.raises(OpAuditError, match=r"If ×1"):
        check_graph(_graph_with("If"))
    with pytest.raises(OpAuditError, match=r"NonMaxSuppression.*dim 0 'T'"):
        check_graph(_graph_with("NonMaxSuppression"))


def test_export_fails_naming_a_disallowed_op(unity_dirs):
    path = unity_dirs["zipvoice"] / "fm_decoder.onnx"
    with pytest.raises(OpAuditError, match="Sigmoid"):
        check_graph(path, allowed=UNITY_SENTIS_OPS - {"Sigmoid"})


def _padded(a, frames, rng):
    tail = rng.standard_normal((a.shape[0], frames - a.shape[1]) + a.shape[2:]).astype(np.float32)
    return np.concatenate([a, tail], axis=1)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("speed", [1.0, 1.3])
def test_padded_text_encoder_equals_unpadded(onnx_dirs, unity_dirs, name, speed):
    c = npz(MODELS[name][2])
    prompt, tokens = c["onnx_te_prompt_tokens"][0], c["onnx_te_tokens"][0]
    ids = np.zeros((1, UNITY_TOKENS), dtype=np.int64)  # pad id 0
    ids[0, : len(prompt) + len(tokens)] = np.concatenate([prompt, tokens])
    static, num_frames = session(unity_dirs[name] / "text_encoder.onnx").run(None, {
        "tokens": ids, "prompt_tokens_len": np.array([len(prompt)]), "tokens_len": np.array([len(tokens)]),
        "prompt_features_len": c["onnx_te_prompt_features_len"].reshape(1), "speed": np.array([speed], np.float32),
    })
    dynamic = session(onnx_dirs[name] / "text_encoder.onnx").run(None, {
        "tokens": tokens[None], "prompt_tokens": prompt[None], "prompt_features_len": c["onnx_te_prompt_features_len"],
        "speed": np.array(speed, np.float32),
    })[0]
    n = int(num_frames[0])
    assert static.shape == (1, UNITY_FRAMES, 100) and n == dynamic.shape[1]
    assert np.abs(static[:, :n] - dynamic).max() <= TOLERANCE
    assert not static[:, n:].any()


@pytest.mark.parametrize("name", list(MODELS))
def test_padded_decoder_equals_unpadded(onnx_dirs, unity_dirs, name):
    """29 valid frames padded with noise to 64: the valid frames match the dynamic graph (which
    reproduces upstream's unpadded outputs) and the padded ones are zero."""
    c = npz(MODELS[name][2])
    rng = np.random.default_rng(0)
    num_valid = c["onnx_fm_x"].shape[1]
    mask = (np.arange(UNITY_FRAMES) < num_valid).astype(np.float32)[None]
    static = session(unity_dirs[name] / "fm_decoder.onnx")
    dynamic = session(onnx_dirs[name] / "fm_decoder.onnx")
    inputs = [c["onnx_fm_x"], c["onnx_fm_text_condition"], c["onnx_fm_speech_condition"]]
    for t in (0.3, 0.7):
        w = GUIDANCE[name]
        got = static.run(None, {"t": np.array([t], np.float32), "x": _padded(inputs[0], UNITY_FRAMES, rng),
                                "text_condition": _padded(inputs[1], UNITY_FRAMES, rng),
                                "speech_condition": _padded(inputs[2], UNITY_FRAMES, rng), "mask": mask,
                                "guidance_scale": np.array([w], np.float32)})[0]
        want = dynamic.run(None, {"t": np.array(t, np.float32), "x": inputs[0], "text_condition": inputs[1],
                                  "speech_condition": inputs[2], "guidance_scale": np.array(w, np.float32)})[0]
        assert np.abs(got[:, :num_valid] - want).max() <= TOLERANCE
        assert not got[:, num_valid:].any()


def test_padded_vocoder_equals_unpadded(unity_dirs, tiny_vocos):
    with np.load(VOCOS_TINY / "cases.npz", allow_pickle=False) as f:
        mel = f["mel"][:, :, :40]
    rng = np.random.default_rng(1)
    padded = np.concatenate([mel, rng.normal(-4, 2, (1, 100, UNITY_FRAMES - 40)).astype(np.float32)], axis=2)
    mask = (np.arange(UNITY_FRAMES) < 40).astype(np.float32)[None]
    got = session(unity_dirs["zipvoice"] / "vocoder.onnx").run(None, {"mel": padded, "mask": mask})[0]
    want = tiny_vocos.decode(torch.from_numpy(mel)).numpy()
    assert got.shape == (1, UNITY_FRAMES * 256) and want.shape == (1, 40 * 256)
    assert np.abs(got[:, : want.shape[1]] - want).max() <= TOLERANCE


def test_unity_loop_equals_pytorch_sampling(unity_dirs, torch_models):
    """The loop docs/zipvoice_onnx.md describes for Unity (fixed-length graphs, Euler steps in the
    caller) reproduces the PyTorch model's sampling on the fixture's full-sampling case."""
    c = npz("cases.npz")
    prompt, tokens = c["smp_prompt_tokens"][0], c["smp_tokens"][0]
    prompt_features, x0 = c["smp_prompt_features"][0], c["smp_x0"]
    num_prompt = prompt_features.shape[0]
    ids = np.zeros((1, UNITY_TOKENS), dtype=np.int64)
    ids[0, : len(prompt) + len(tokens)] = np.concatenate([prompt, tokens])
    text, total = session(unity_dirs["zipvoice"] / "text_encoder.onnx").run(None, {
        "tokens": ids, "prompt_tokens_len": np.array([len(prompt)]), "tokens_len": np.array([len(tokens)]),
        "prompt_features_len": np.array([num_prompt]), "speed": np.array([1.0], np.float32),
    })
    n = int(total[0])
    assert n == x0.shape[1]
    mask = (np.arange(UNITY_FRAMES) < n).astype(np.float32)[None]
    speech = np.zeros((1, UNITY_FRAMES, 100), np.float32)
    speech[0, :num_prompt] = prompt_features
    x = np.zeros((1, UNITY_FRAMES, 100), np.float32)
    x[:, :n] = x0
    decoder = session(unity_dirs["zipvoice"] / "fm_decoder.onnx")
    steps = time_steps(4, 0.5)
    for k in range(4):
        v = decoder.run(None, {"t": steps[k : k + 1], "x": x, "text_condition": text, "speech_condition": speech,
                               "mask": mask, "guidance_scale": np.array([1.0], np.float32)})[0]
        x = x + v * (steps[k + 1] - steps[k])
    assert np.abs(x[0, num_prompt:n] - c["smp_out"][0]).max() <= TOLERANCE
