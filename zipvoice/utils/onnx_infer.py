"""ZipVoice inference in onnxruntime alone (no torch import on this path).

:class:`OnnxZipVoice` runs the exported graphs of a directory
(``text_encoder[_int8].onnx``, ``fm_decoder[_int8].onnx`` and, when present,
``vocoder.onnx``): the text encoder once per chunk, the Euler loop in numpy
calling the decoder once per step (the decoder graph applies the guidance
itself), then the vocoder. :func:`generate` is the ONNX twin of
:func:`zipvoice.utils.infer.generate`: the same prompt handling, chunking,
cross-fades and trimming (:mod:`zipvoice.utils.pipeline`), numpy Vocos
features (:mod:`shirabe.audio.mel_numpy`), chunks generated one at a time.

The initial noise comes from ``numpy.random.default_rng(seed)``, or from a
noise array (prompt + generated frames of every chunk, as the PyTorch binary
takes), in which case the result matches the PyTorch model's to float32
rounding.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from shirabe.audio.mel_numpy import vocos_fbank_np
from shirabe.cli import InputError
from zipvoice.utils.pipeline import (
    SAMPLING_RATE,
    GenerationResult,
    SamplingOptions,
    chunk_token_ids,
    clean_vocoder_output,
    finish_audio,
    load_prompt_audio,
    num_total_frames,
    split_noise_array,
)

logger = logging.getLogger(__name__)

TEXT_ENCODER_INPUTS = ("tokens", "prompt_tokens", "prompt_features_len", "speed")
FM_DECODER_INPUTS = ("t", "x", "text_condition", "speech_condition", "guidance_scale")


def time_steps(num_step: int, t_shift: float) -> np.ndarray:
    """``linspace(0, 1, num_step + 1)`` warped by ``s·t / (1 + (s - 1)·t)``, float32."""
    if num_step < 1:
        raise ValueError(f"num_step must be >= 1, got {num_step}")
    t = np.linspace(0.0, 1.0, num_step + 1, dtype=np.float32)
    s = np.float32(t_shift)
    return (s * t / (np.float32(1.0) + (s - np.float32(1.0)) * t)).astype(np.float32)


def session_options(num_thread: int, profile_prefix: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(num_thread)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return opts


def open_session(path: Path, num_thread: int, what: str, profile_prefix: str | None = None):
    import onnxruntime as ort

    if not path.is_file():
        raise InputError(f"{path}: no such {what} graph (export it with python -m zipvoice.bin.onnx_export)")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(num_thread, profile_prefix),
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{path}: cannot load the {what} graph ({str(e).splitlines()[0]})") from e


def _check_inputs(session, path: Path, expected: tuple[str, ...], what: str) -> None:
    if session.get_modelmeta().custom_metadata_map.get("unity_sentis") == "1":
        raise InputError(f"{path}: a fixed-length Unity Sentis graph; this runner needs the dynamic graphs "
                         "(export without --unity-sentis)")
    names = tuple(i.name for i in session.get_inputs())
    if names != expected:
        raise InputError(f"{path}: not a {what} graph with inputs {', '.join(expected)}; has {', '.join(names)}")


class OnnxVocoder:
    """``vocoder.onnx``: log-mel ``(T, n_mels)`` → audio ``(T·hop,)``."""

    def __init__(self, path: Path, num_thread: int = 1):
        self.path = Path(path)
        self.session = open_session(self.path, num_thread, "vocoder")
        _check_inputs(self.session, self.path, ("mel",), "vocoder")

    def decode_np(self, mel: np.ndarray) -> np.ndarray:
        audio = self.session.run(None, {"mel": np.ascontiguousarray(mel.T, dtype=np.float32)[None]})[0]
        return audio[0]


class TorchVocoder:
    """A PyTorch vocoder (Vocos directory or Griffin-Lim) behind the numpy interface; imports torch."""

    def __init__(self, vocoder_path: str | None, trust: bool = False, num_thread: int = 1):
        import torch

        from shirabe.vocoder import load_vocoder

        torch.set_num_threads(num_thread)
        self.torch = torch
        self.vocoder = load_vocoder(vocoder_path, trust=trust)

    def decode_np(self, mel: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32)).unsqueeze(0)
            return self.vocoder.decode(x)[0].float().numpy()


class OnnxZipVoice:
    """The exported graphs of one model directory.

    ``int8`` picks ``*_int8.onnx``; ``num_thread`` sets onnxruntime's intra-op
    threads. A missing graph raises :class:`InputError` naming the file.
    """

    def __init__(self, onnx_dir: str | Path, int8: bool = False, num_thread: int = 1,
                 profile_prefix: str | None = None):
        self.onnx_dir = Path(onnx_dir)
        if not self.onnx_dir.is_dir():
            raise InputError(f"{self.onnx_dir}: no such ONNX model directory")
        suffix = "_int8" if int8 else ""
        self.text_encoder_path = self.onnx_dir / f"text_encoder{suffix}.onnx"
        self.fm_decoder_path = self.onnx_dir / f"fm_decoder{suffix}.onnx"
        self.text_encoder = open_session(self.text_encoder_path, num_thread, "text encoder", profile_prefix)
        self.fm_decoder = open_session(self.fm_decoder_path, num_thread, "flow-matching decoder", profile_prefix)
        _check_inputs(self.text_encoder, self.text_encoder_path, TEXT_ENCODER_INPUTS, "text encoder")
        _check_inputs(self.fm_decoder, self.fm_decoder_path, FM_DECODER_INPUTS, "flow-matching decoder")
        meta = self.fm_decoder.get_modelmeta().custom_metadata_map
        self.feat_dim = int(meta.get("feat_dim", 100))
        self.model_name = meta.get("model_name")

    def text_condition(self, tokens: list[int], prompt_tokens: list[int], prompt_frames: int,
                       speed: float) -> np.ndarray:
        feeds = {
            "tokens": np.asarray([tokens], dtype=np.int64),
            "prompt_tokens": np.asarray([prompt_tokens], dtype=np.int64),
            "prompt_features_len": np.asarray(prompt_frames, dtype=np.int64),
            "speed": np.asarray(speed, dtype=np.float32),
        }
        return self.text_encoder.run(None, feeds)[0]

    def velocity(self, t: float, x, text_condition, speech_condition, guidance_scale: float) -> np.ndarray:
        feeds = {
            "t": np.asarray(t, dtype=np.float32),
            "x": x,
            "text_condition": text_condition,
            "speech_condition": speech_condition,
            "guidance_scale": np.asarray(guidance_scale, dtype=np.float32),
        }
        return self.fm_decoder.run(None, feeds)[0]

    def sample(self, tokens: list[int], prompt_tokens: list[int], prompt_features: np.ndarray,
               opts: SamplingOptions, noise: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """Generated frames ``(T_gen, feat_dim)`` in model scale after ``prompt_features`` ``(P, feat_dim)``
        (model scale). ``noise`` is ``(1, T_total, feat_dim)``; otherwise drawn from ``rng``."""
        num_prompt = prompt_features.shape[0]
        text_condition = self.text_condition(tokens, prompt_tokens, num_prompt, opts.speed)
        num_frames = text_condition.shape[1]
        speech_condition = np.zeros((1, num_frames, self.feat_dim), dtype=np.float32)
        speech_condition[0, :num_prompt] = prompt_features[:num_frames]
        if noise is None:
            rng = rng or np.random.default_rng()
            x = rng.standard_normal((1, num_frames, self.feat_dim), dtype=np.float32)
        else:
            if tuple(noise.shape) != (1, num_frames, self.feat_dim):
                raise InputError(f"noise has shape {tuple(noise.shape)}, expected {(1, num_frames, self.feat_dim)}")
            x = np.ascontiguousarray(noise, dtype=np.float32)
        steps = time_steps(opts.num_step, opts.t_shift)
        for k in range(opts.num_step):
            v = self.velocity(steps[k], x, text_condition, speech_condition, opts.guidance_scale)
            x = x + v * (steps[k + 1] - steps[k])
        return x[0, num_prompt:]


def load_vocoder_np(onnx_dir: str | Path, vocoder_path: str | None = None, trust: bool = False,
                    num_thread: int = 1):
    """The vocoder of an ONNX run: ``vocoder_path`` (an ``.onnx`` file, or a Vocos directory run in
    PyTorch), else ``onnx_dir/vocoder.onnx``, else Griffin-Lim in PyTorch with a warning."""
    if vocoder_path is not None:
        path = Path(vocoder_path)
        if path.suffix == ".onnx":
            return OnnxVocoder(path, num_thread)
        logger.info("vocoder %s runs in PyTorch (export it with --vocoder-path to run it in onnxruntime)", path)
        return TorchVocoder(str(path), trust=trust, num_thread=num_thread)
    default = Path(onnx_dir) / "vocoder.onnx"
    if default.is_file():
        return OnnxVocoder(default, num_thread)
    return TorchVocoder(None, trust=trust, num_thread=num_thread)


def generate(
    runner: OnnxZipVoice,
    vocoder,
    tokenizer,
    prompt_wav,
    prompt_text: str,
    text: str,
    opts: SamplingOptions,
    seed: int = 666,
    noise: np.ndarray | None = None,
) -> GenerationResult:
    """Synthesise ``text`` in the voice of the prompt (chunks one at a time)."""
    t_start = time.perf_counter()
    prompt = load_prompt_audio(prompt_wav, prompt_text, tokenizer, opts)
    prompt_features = vocos_fbank_np(prompt.wav, SAMPLING_RATE) * np.float32(opts.feat_scale)
    chunks = chunk_token_ids(text, tokenizer, prompt.seconds, len(prompt.tokens), opts)
    if noise is not None:
        sizes = [num_total_frames(prompt_features.shape[0], len(prompt.tokens), len(c), opts.speed) for c in chunks]
        noises = split_noise_array(noise, sizes, runner.feat_dim)
    else:
        noises = [None] * len(chunks)
    rng = np.random.default_rng(seed)
    feats = []
    for chunk, chunk_noise in zip(chunks, noises):
        gen = runner.sample(chunk, prompt.tokens, prompt_features, opts, noise=chunk_noise, rng=rng)
        feats.append(gen / np.float32(opts.feat_scale))
    t_model = time.perf_counter()
    wavs = [clean_vocoder_output(vocoder.decode_np(f)) for f in feats]
    wav = finish_audio(wavs, prompt.rms, opts)
    t_end = time.perf_counter()
    timings = {
        "model_seconds": t_model - t_start,
        "vocoder_seconds": t_end - t_model,
        "total_seconds": t_end - t_start,
        "audio_seconds": len(wav) / SAMPLING_RATE,
    }
    return GenerationResult(wav=wav, features=np.concatenate(feats, axis=0), num_chunks=len(chunks),
                            timings=timings)
