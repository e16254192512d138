"""The exported graphs compute what the PyTorch model and upstream's graphs compute.

Reference values: our PyTorch model on the fixture weights, upstream's PyTorch
outputs (``cases*.npz``) and upstream's ONNX outputs (``onnx_cases*.npz``).
"""

import json

import numpy as np
import onnx
import pytest
import torch
from zipvoice_onnx_testlib import MODELS, TOLERANCE, ZIPVOICE_TINY, npz, session

GUIDANCE = {"zipvoice": 1.0, "zipvoice_distill": 3.0}
CASES = {"zipvoice": "cases.npz", "zipvoice_distill": "cases_distill.npz"}


def test_export_swoosh_is_exact_and_stable():
    from zipvoice.export.modules import swoosh_l_export, swoosh_r_export
    from zipvoice.models.scaling import swoosh_l, swoosh_r

    x = torch.cat([torch.linspace(-300.0, 300.0, 2001), torch.tensor([-1e4, 1e4, 0.0, 1.0, 4.0])])
    for export, ref in ((swoosh_l_export, swoosh_l), (swoosh_r_export, swoosh_r)):
        got, want = export(x), ref(x)
        assert torch.isfinite(got).all()
        assert ((got - want).abs() <= 1e-5 * (1 + want.abs())).all()


def unpad(row):
    return [int(v) for v in row if v != -1]


def run_text_encoder(sess, tokens, prompt_tokens, prompt_frames, speed):
    return sess.run(None, {
        "tokens": np.asarray([tokens], dtype=np.int64),
        "prompt_tokens": np.asarray([prompt_tokens], dtype=np.int64),
        "prompt_features_len": np.asarray(prompt_frames, dtype=np.int64),
        "speed": np.asarray(speed, dtype=np.float32),
    })[0]


def run_decoder(sess, t, x, text, speech, w):
    return sess.run(None, {"t": np.asarray(t, np.float32), "x": x, "text_condition": text,
                           "speech_condition": speech, "guidance_scale": np.asarray(w, np.float32)})[0]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("speed", [1.0, 1.3, 0.7])
def test_text_encoder_matches_pytorch(onnx_dirs, torch_models, name, speed):
    model = torch_models[name]
    sess = session(onnx_dirs[name] / "text_encoder.onnx")
    cases = npz(CASES[name])
    for i in range(2):
        prompt = unpad(cases["tc_prompt_tokens"][i])
        tokens = unpad(cases["tc_tokens"][i])
        p = int(cases["tc_prompt_features_lens"][i])
        got = run_text_encoder(sess, tokens, prompt, p, speed)
        with torch.no_grad():
            want, mask = model.forward_text_inference_ratio_duration([tokens], [prompt], torch.tensor([p]), speed)
        assert got.shape == tuple(want.shape)
        assert np.abs(got - want.numpy()).max() <= TOLERANCE
        key = {1.0: "tc_s10", 1.3: "tc_s13"}.get(speed)
        if key is not None:  # upstream's PyTorch output (item i of a padded batch, valid frames)
            valid = int((~cases[f"{key}_padding_mask"][i]).sum())
            assert got.shape[1] == valid
            assert np.abs(got[0] - cases[f"{key}_text_condition"][i, :valid]).max() <= TOLERANCE


@pytest.mark.parametrize("name", list(MODELS))
def test_text_encoder_matches_upstream_graph_at_speed_1(onnx_dirs, name):
    c = npz(MODELS[name][2])
    got = run_text_encoder(session(onnx_dirs[name] / "text_encoder.onnx"), c["onnx_te_tokens"][0],
                           c["onnx_te_prompt_tokens"][0], c["onnx_te_prompt_features_len"], 1.0)
    assert got.shape == c["onnx_te_s10_text_condition"].shape
    assert np.abs(got - c["onnx_te_s10_text_condition"]).max() <= TOLERANCE


@pytest.fixture(scope="module")
def upstream_rule_encoder(tmp_path_factory, torch_models):
    from zipvoice.export.exporter import export_text_encoder

    path = tmp_path_factory.mktemp("upstream_rule") / "text_encoder.onnx"
    export_text_encoder(torch_models["zipvoice"], path, "zipvoice", speed_rule="upstream")
    return session(path)


def test_speed_rules_follow_the_frame_count_grid(onnx_dirs, upstream_rule_encoder):
    """Default rule = the PyTorch model's frame count; 'upstream' = upstream's graph's, on every row."""
    c = npz("cases.npz")
    ours = session(onnx_dirs["zipvoice"] / "text_encoder.onnx")
    for p, n_prompt, n_text, speed, want_torch, want_onnx in zip(
        c["dur_prompt_features_len"], c["dur_n_prompt_tokens"], c["dur_n_tokens"], c["dur_speed"],
        c["dur_T_total_torch"], c["dur_T_total_onnx"],
    ):
        prompt, tokens = [1 + i % 45 for i in range(n_prompt)], [1 + (i + 7) % 45 for i in range(n_text)]
        assert run_text_encoder(ours, tokens, prompt, p, speed).shape[1] == want_torch
        assert run_text_encoder(upstream_rule_encoder, tokens, prompt, p, speed).shape[1] == want_onnx


def test_upstream_rule_reproduces_upstream_graph_at_speed_1_3(upstream_rule_encoder):
    c = npz("onnx_cases.npz")
    got = run_text_encoder(upstream_rule_encoder, c["onnx_te_tokens"][0], c["onnx_te_prompt_tokens"][0],
                           c["onnx_te_prompt_features_len"], 1.3)
    assert got.shape == c["onnx_te_s13_text_condition"].shape == (1, 39, 100)
    assert np.abs(got - c["onnx_te_s13_text_condition"]).max() <= TOLERANCE


@pytest.mark.parametrize("name", list(MODELS))
def test_fm_decoder_matches_upstream_graph(onnx_dirs, name):
    c = npz(MODELS[name][2])
    sess = session(onnx_dirs[name] / "fm_decoder.onnx")
    keys = [k for k in c if k.startswith("onnx_fm_v_")]
    assert len(keys) >= 2
    for key in keys:  # onnx_fm_v_t03_w10 -> t 0.3, w 1.0
        t, w = (int(part[1:]) / 10 for part in key.split("_")[-2:])
        got = run_decoder(sess, t, c["onnx_fm_x"], c["onnx_fm_text_condition"], c["onnx_fm_speech_condition"], w)
        assert np.abs(got - c[key]).max() <= TOLERANCE, key


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("num_frames", [37, 40])
def test_fm_decoder_matches_pytorch_guided_velocity(onnx_dirs, torch_models, name, num_frames):
    model = torch_models[name]
    sess = session(onnx_dirs[name] / "fm_decoder.onnx")
    rng = np.random.default_rng(num_frames)
    x, text, speech = (rng.standard_normal((1, num_frames, 100)).astype(np.float32) for _ in range(3))
    speech[:, num_frames // 2 :] = 0.0
    for t in (0.0, 0.3, 0.5, 0.7):
        for w in (GUIDANCE[name], 0.5):
            got = run_decoder(sess, t, x, text, speech, w)
            with torch.no_grad():
                want = model.solver.model(t=torch.tensor(t), x=torch.from_numpy(x), text_condition=torch.from_numpy(text),
                                          speech_condition=torch.from_numpy(speech), padding_mask=None, guidance_scale=w)
            assert np.abs(got - want.numpy()).max() <= TOLERANCE, (t, w)


def _relative_errors(ref, got):
    rms = float(np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref**2)))
    return rms, float(np.abs(got - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_graphs_stay_close_to_float(onnx_dirs, name):
    """Dynamic int8 MatMul weights: relative RMS error and max error (relative to the largest
    value) both within 5 % of the float32 graphs' outputs."""
    c = npz(MODELS[name][2])
    d = onnx_dirs[name]
    te_args = (c["onnx_te_tokens"][0], c["onnx_te_prompt_tokens"][0], c["onnx_te_prompt_features_len"], 1.0)
    ref = run_text_encoder(session(d / "text_encoder.onnx"), *te_args)
    got = run_text_encoder(session(d / "text_encoder_int8.onnx"), *te_args)
    assert max(_relative_errors(ref, got)) <= 0.05
    fm, fm8 = session(d / "fm_decoder.onnx"), session(d / "fm_decoder_int8.onnx")
    for t in (0.3, 0.7):
        args = (t, c["onnx_fm_x"], c["onnx_fm_text_condition"], c["onnx_fm_speech_condition"], GUIDANCE[name])
        ref, got = run_decoder(fm, *args), run_decoder(fm8, *args)
        assert max(_relative_errors(ref, got)) <= 0.05
        assert not np.array_equal(ref, got)  # the int8 graph really is a different computation
    ops = {n.op_type for n in onnx.load(str(d / "fm_decoder_int8.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops


def _dims(value_info):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_interface_matches_upstream(onnx_dirs, name):
    """Input/output names, element types, ranks and static dims, metadata and opset of upstream's
    export (onnx_io*.json). Symbolic dim names may differ (prompt_tokens' length is 'T_prompt')."""
    io = json.loads((ZIPVOICE_TINY / MODELS[name][3]).read_text())
    for graph, spec in io.items():
        model = onnx.load(str(onnx_dirs[name] / f"{graph}.onnx"))
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == spec["opset"]
        inputs = list(model.graph.input)
        assert [i.name for i in inputs] == [s[0] for s in spec["inputs"]]
        for value, (_, dims, dtype) in zip(inputs, spec["inputs"]):
            assert onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type) == dtype
            got = _dims(value)
            assert len(got) == len(dims)
            assert [g for g, d in zip(got, dims) if isinstance(d, int)] == [d for d in dims if isinstance(d, int)]
        outputs = list(model.graph.output)
        assert [o.name for o in outputs] == [s[0] for s in spec["outputs"]]
        assert len(_dims(outputs[0])) == len(spec["outputs"][0][1])
        meta = {p.key: p.value for p in model.metadata_props}
        assert {k: meta.get(k) for k in spec["metadata"]} == spec["metadata"]
        assert meta["model_name"] == name
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"If", "Loop", "Scan"}
