"""vocoder.onnx (transposed-convolution ISTFT) equals the PyTorch Vocos and the vocos package."""

import numpy as np
import onnx
import torch
from zipvoice_onnx_testlib import TOLERANCE, VOCOS_TINY, session


def test_vocoder_graph_matches_pytorch_and_fixture(onnx_dirs, tiny_vocos):
    path = onnx_dirs["zipvoice"] / "vocoder.onnx"
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["mel"] and [o.name for o in model.graph.output] == ["audio"]
    ops = {n.op_type for n in model.graph.node}
    assert "ConvTranspose" in ops and not ops & {"DFT", "STFT", "If", "Loop"}
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta["sample_rate"], meta["hop_length"], meta["num_mels"]) == ("24000", "256", "100")
    sess = session(path)
    with np.load(VOCOS_TINY / "cases.npz", allow_pickle=False) as f:
        mel, audio = f["mel"], f["audio"]
    got = sess.run(None, {"mel": mel})[0]
    assert got.shape == audio.shape == (1, 94 * 256)
    assert np.abs(got - audio).max() <= TOLERANCE  # the vocos package's own output
    other = np.random.default_rng(3).normal(-4.0, 2.0, (2, 100, 57)).astype(np.float32)
    got = sess.run(None, {"mel": other})[0]
    want = tiny_vocos.decode(torch.from_numpy(other)).numpy()
    assert got.shape == want.shape == (2, 57 * 256)
    assert np.abs(got - want).max() <= TOLERANCE
