"""Writing the ZipVoice ONNX graphs: names, shapes, metadata, int8 copies and audits.

Dynamic graphs keep upstream's interface (input/output names, dim names, opset
13 and metadata keys), so sherpa-onnx and upstream's ONNX runner load them:

============================  =====================================================
``text_encoder.onnx``         tokens, prompt_tokens (N, T) int64; prompt_features_len
                              int64 scalar; speed float scalar → text_condition
``fm_decoder.onnx``           t float scalar; x, text_condition, speech_condition
                              (N, T, 100); guidance_scale float scalar → v
``vocoder.onnx``              mel (N, 100, T) → audio (N, T·256)
============================  =====================================================

Fixed-length graphs (``static=True``, for Unity Sentis) are written under the
same names with the interface of :mod:`zipvoice.export.graphs`' ``Static*``
classes, opset 15, and must pass :func:`shirabe.export.audit.check_graph`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from shirabe.export.audit import UNITY_SENTIS_MAX_OPSET, check_graph
from shirabe.export.metadata import add_metadata
from shirabe.export.quantize import quantize_int8
from shirabe.export.torch_onnx import export_onnx
from zipvoice.export.graphs import (
    FmDecoderGraph,
    StaticFmDecoderGraph,
    StaticTextEncoderGraph,
    StaticVocoderGraph,
    TextEncoderGraph,
    VocoderGraph,
)

logger = logging.getLogger(__name__)

DYNAMIC_OPSET = 13
STATIC_OPSET = UNITY_SENTIS_MAX_OPSET
GRAPH_FILES = {"text_encoder": "text_encoder.onnx", "fm_decoder": "fm_decoder.onnx", "vocoder": "vocoder.onnx"}


def text_encoder_metadata(model, model_name: str, speed_rule: str, extra: dict | None = None) -> dict:
    meta = {
        "version": "1",
        "model_author": "k2-fsa",
        "comment": "ZipVoice text encoder",
        "use_espeak": "1",
        "use_pinyin": "1",
        "model_name": model_name,
        "pad_id": int(model.pad_id),
        "vocab_size": int(model.vocab_size),
        "speed_rule": speed_rule,
    }
    meta.update(extra or {})
    return meta


def fm_decoder_metadata(model, model_name: str, extra: dict | None = None) -> dict:
    meta = {
        "version": "1",
        "model_author": "k2-fsa",
        "comment": "ZipVoice flow-matching decoder",
        "feat_dim": int(model.feat_dim),
        "sample_rate": 24000,
        "n_fft": 1024,
        "hop_length": 256,
        "window_length": 1024,
        "num_mels": 100,
        "model_name": model_name,
        "guidance_in_graph": "cfg" if model_name == "zipvoice" else "embedding",
    }
    meta.update(extra or {})
    return meta


def vocoder_metadata(vocos, extra: dict | None = None) -> dict:
    meta = {
        "version": "1",
        "comment": "Vocos mel vocoder, ISTFT as a transposed convolution",
        "sample_rate": int(vocos.sample_rate),
        "hop_length": int(vocos.hop_length),
        "num_mels": int(vocos.n_mels),
    }
    meta.update(extra or {})
    return meta


def _example_text(model, n_prompt: int = 5, n_text: int = 6):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, max(2, model.vocab_size), (1, n_text), generator=g)
    prompt_tokens = torch.randint(1, max(2, model.vocab_size), (1, n_prompt), generator=g)
    return tokens, prompt_tokens


def export_text_encoder(model, path, model_name: str, speed_rule: str = "torch") -> Path:
    tokens, prompt_tokens = _example_text(model)
    args = (tokens, prompt_tokens, torch.tensor(23, dtype=torch.int64), torch.tensor(1.0))
    export_onnx(
        TextEncoderGraph(model, speed_rule), args, path,
        input_names=["tokens", "prompt_tokens", "prompt_features_len", "speed"],
        output_names=["text_condition"],
        dynamic_axes={"tokens": {0: "N", 1: "T"}, "prompt_tokens": {0: "N", 1: "T_prompt"},
                      "text_condition": {0: "N", 1: "T"}},
        opset=DYNAMIC_OPSET,
    )
    add_metadata(path, text_encoder_metadata(model, model_name, speed_rule))
    return Path(path)


def export_fm_decoder(model, path, model_name: str) -> Path:
    feat = model.feat_dim
    x = torch.randn(1, 29, feat, generator=torch.Generator().manual_seed(1))
    args = (torch.tensor(0.3), x, x.clone(), x.clone(), torch.tensor(1.0))
    seq = {0: "N", 1: "T"}
    export_onnx(
        FmDecoderGraph(model, distill=model_name == "zipvoice_distill"), args, path,
        input_names=["t", "x", "text_condition", "speech_condition", "guidance_scale"],
        output_names=["v"],
        dynamic_axes={"x": seq, "text_condition": seq, "speech_condition": seq, "v": seq},
        opset=DYNAMIC_OPSET,
    )
    add_metadata(path, fm_decoder_metadata(model, model_name))
    return Path(path)


def export_vocoder(vocos, path) -> Path:
    mel = torch.randn(1, vocos.n_mels, 40, generator=torch.Generator().manual_seed(2)) - 4.0
    export_onnx(
        VocoderGraph(vocos), (mel,), path, input_names=["mel"], output_names=["audio"],
        dynamic_axes={"mel": {0: "N", 2: "T"}, "audio": {0: "N", 1: "S"}}, opset=DYNAMIC_OPSET,
    )
    add_metadata(path, vocoder_metadata(vocos))
    return Path(path)


def export_static_text_encoder(model, path, model_name: str, num_frames: int, token_len: int,
                               speed_rule: str = "torch") -> Path:
    tokens = torch.full((1, token_len), int(model.pad_id), dtype=torch.int64)
    ids, prompt_ids = _example_text(model)
    n = min(token_len - 1, ids.shape[1] + prompt_ids.shape[1])
    tokens[0, :n] = torch.cat([prompt_ids[0], ids[0]])[:n]
    args = (tokens, torch.tensor([5]), torch.tensor([6]), torch.tensor([23]), torch.tensor([1.0]))
    export_onnx(
        StaticTextEncoderGraph(model, num_frames, speed_rule), args, path,
        input_names=["tokens", "prompt_tokens_len", "tokens_len", "prompt_features_len", "speed"],
        output_names=["text_condition", "num_frames"], opset=STATIC_OPSET,
    )
    add_metadata(path, text_encoder_metadata(
        model, model_name, speed_rule,
        {"unity_sentis": 1, "fm_seq_len": num_frames, "token_seq_len": token_len}))
    return Path(path)


def export_static_fm_decoder(model, path, model_name: str, num_frames: int) -> Path:
    x = torch.randn(1, num_frames, model.feat_dim, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, num_frames)
    args = (torch.tensor([0.3]), x, x.clone(), x.clone(), mask, torch.tensor([1.0]))
    export_onnx(
        StaticFmDecoderGraph(model, distill=model_name == "zipvoice_distill"), args, path,
        input_names=["t", "x", "text_condition", "speech_condition", "mask", "guidance_scale"],
        output_names=["v"], opset=STATIC_OPSET,
    )
    add_metadata(path, fm_decoder_metadata(model, model_name, {"unity_sentis": 1, "fm_seq_len": num_frames}))
    return Path(path)


def export_static_vocoder(vocos, path, num_frames: int) -> Path:
    mel = torch.randn(1, vocos.n_mels, num_frames, generator=torch.Generator().manual_seed(2)) - 4.0
    export_onnx(
        StaticVocoderGraph(vocos), (mel, torch.ones(1, num_frames)), path,
        input_names=["mel", "mask"], output_names=["audio"], opset=STATIC_OPSET,
    )
    add_metadata(path, vocoder_metadata(vocos, {"unity_sentis": 1, "fm_seq_len": num_frames}))
    return Path(path)


def export_zipvoice(
    model,
    model_name: str,
    out_dir: str | Path,
    int8: bool = False,
    vocos=None,
    unity_sentis: bool = False,
    fm_seq_len: int = 0,
    token_seq_len: int = 0,
    speed_rule: str = "torch",
) -> list[Path]:
    """Write the graphs of ``model`` (and ``vocos``) into ``out_dir``; returns the files written.

    ``unity_sentis`` writes the fixed-length graphs (``fm_seq_len`` frames,
    ``token_seq_len`` tokens) and audits them; an audit failure raises
    :class:`shirabe.export.audit.OpAuditError` and removes the failing file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    te, fm, voc = (out_dir / GRAPH_FILES[k] for k in ("text_encoder", "fm_decoder", "vocoder"))
    written: list[Path] = []
    if unity_sentis:
        jobs = [lambda: export_static_text_encoder(model, te, model_name, fm_seq_len, token_seq_len, speed_rule),
                lambda: export_static_fm_decoder(model, fm, model_name, fm_seq_len)]
        if vocos is not None:
            jobs.append(lambda: export_static_vocoder(vocos, voc, fm_seq_len))
        for job in jobs:
            path = job()
            try:
                report = check_graph(path)
            except Exception:
                path.unlink(missing_ok=True)
                raise
            logger.info("%s: Unity Sentis audit passed (%d nodes, %d op types, opset %d, static shapes)",
                        path.name, sum(report.op_counts.values()), len(report.op_counts), report.opset)
            written.append(path)
    else:
        written.append(export_text_encoder(model, te, model_name, speed_rule))
        written.append(export_fm_decoder(model, fm, model_name))
        if vocos is not None:
            written.append(export_vocoder(vocos, voc))
    for path in list(written):
        logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 2**20)
    if int8:
        for path in (te, fm):
            written.append(quantize_int8(path, path.with_name(path.stem + "_int8.onnx")))
    return written
