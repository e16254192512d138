"""End-to-end runs of ``zipvoice.bin.onnx_export`` and ``zipvoice.bin.infer_zipvoice_onnx``."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from zipvoice_onnx_testlib import TOLERANCE, VOCOS_TINY, ZIPVOICE_TINY

from shirabe.cli import run_main
from zipvoice.bin import infer_zipvoice_onnx, onnx_export

REPO = Path(__file__).resolve().parents[2]
TEXT = "watashiwasakanatabemasu"


@pytest.fixture(autouse=True)
def _reset_logging():
    """The binaries point the root logger at the captured stderr; detach it after each test."""
    yield
    logging.getLogger().handlers.clear()


def run_cli(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(main, [str(a) for a in argv])
    return e.value.code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def prompt_wav(tmp_path_factory) -> Path:
    """1.2 s of a voiced-like tone over a faint full-band noise floor, 24 kHz float.

    The noise floor keeps every mel band well above float32 FFT rounding, where the numpy and
    torch front ends would otherwise differ by their rounding noise (an empty band's log-mel is
    that noise)."""
    sr = 24000
    t = np.arange(int(1.2 * sr)) / sr
    tone = 0.05 * np.sin(2 * np.pi * (140 + 40 * t) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    tone += 0.002 * np.random.default_rng(5).standard_normal(tone.shape)
    wav = np.concatenate([np.zeros(sr // 10), tone, np.zeros(sr // 5)]).astype(np.float32)
    path = tmp_path_factory.mktemp("prompt") / "prompt.wav"
    sf.write(path, wav, sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_export") / "onnx"
    with pytest.raises(SystemExit) as e:
        run_main(onnx_export.main, ["--model-dir", str(ZIPVOICE_TINY), "--onnx-model-dir", str(out),
                                    "--int8", "1", "--vocoder-path", str(VOCOS_TINY)])
    assert e.value.code == 0
    return out


def test_export_writes_graphs_tokens_and_config(exported):
    names = {p.name for p in exported.iterdir()}
    assert names == {"text_encoder.onnx", "fm_decoder.onnx", "text_encoder_int8.onnx", "fm_decoder_int8.onnx",
                     "vocoder.onnx", "tokens.txt", "model.json"}
    assert (exported / "tokens.txt").read_bytes() == (ZIPVOICE_TINY / "tokens.txt").read_bytes()
    assert json.loads((exported / "model.json").read_text()) == json.loads((ZIPVOICE_TINY / "model.json").read_text())


def infer_args(onnx_dir, prompt_wav, out, *extra):
    return ["--onnx-model-dir", onnx_dir, "--tokenizer", "simple", "--prompt-wav", prompt_wav,
            "--prompt-text", "sakana", "--text", TEXT, "--num-step", "4", "--res-wav-path", out, *extra]


@pytest.mark.parametrize("int8", ["0", "1"])
def test_infer_writes_audio(exported, prompt_wav, tmp_path, capsys, int8):
    out = tmp_path / "out.flac"
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(exported, prompt_wav, out, "--onnx-int8", int8,
                                                             "--num-threads", "2"), capsys)
    assert code == 0, err
    info = sf.info(out)
    assert info.samplerate == 24000 and info.format == "FLAC" and info.frames > 24000
    wav, _ = sf.read(out)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 1e-3


def test_noise_file_reproduces_the_pytorch_model(exported, prompt_wav, tmp_path, capsys):
    from shirabe.audio.fbank import VocosFbank
    from zipvoice.models import load_model
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.infer import SamplingOptions, prepare_prompt, text_chunks, total_frames

    tok = get_tokenizer("simple", ZIPVOICE_TINY / "tokens.txt")
    opts = SamplingOptions(num_step=4, speed=1.2)
    prompt = prepare_prompt(prompt_wav, "sakana", tok, VocosFbank(), opts)
    (chunk,) = text_chunks(TEXT, tok, prompt, opts)
    noise = np.random.default_rng(0).standard_normal((total_frames(prompt, chunk, 1.2), 100)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(
        exported, prompt_wav, tmp_path / "o.wav", "--noise-file", tmp_path / "noise.npy", "--speed", "1.2",
        "--save-features", tmp_path / "f.npy"), capsys)
    assert code == 0, err
    model = load_model(ZIPVOICE_TINY, "model.pt", "zipvoice")
    gen, lens, _, _ = model.sample([chunk], [prompt.tokens], prompt.features, torch.tensor([prompt.features.shape[1]]),
                                   speed=1.2, t_shift=0.5, num_step=4, guidance_scale=1.0,
                                   noise=torch.from_numpy(noise).unsqueeze(0))
    feats = np.load(tmp_path / "f.npy")
    assert feats.shape == (int(lens[0]), 100)
    assert np.abs(feats - gen[0].numpy() / 0.1).max() <= 10 * TOLERANCE  # log-mel = model scale / 0.1
    assert np.abs(feats * 0.1 - gen[0].numpy()).max() <= TOLERANCE

    np.save(tmp_path / "bad.npy", noise[:-1])
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(
        exported, prompt_wav, tmp_path / "x.wav", "--noise-file", tmp_path / "bad.npy", "--speed", "1.2"), capsys)
    assert code == 2
    assert f"need ({noise.shape[0]}, 100)" in one_error_line(err)


def test_onnx_path_never_imports_torch(exported, prompt_wav, tmp_path):
    code = (
        "import sys\n"
        "from shirabe.cli import run_main\n"
        "from zipvoice.bin.infer_zipvoice_onnx import main\n"
        "try:\n"
        f"    run_main(main, {[str(a) for a in infer_args(exported, prompt_wav, tmp_path / 'o.wav', '--test-list', tmp_path / 'l.tsv', '--res-dir', tmp_path / 'res')]!r}[:0] + sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH')\n"
    )
    shutil.copy(prompt_wav, tmp_path / "p.wav")
    (tmp_path / "l.tsv").write_text(f"u1\tsakana\tp.wav\t{TEXT}\nu2\tsakana\tp.wav\taiueo. sakana!\n", encoding="utf-8")
    argv = ["--onnx-model-dir", exported, "--tokenizer", "simple", "--num-step", "2", "--test-list",
            tmp_path / "l.tsv", "--res-dir", tmp_path / "res", "--save-features", tmp_path / "feats"]
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "NO_TORCH"
    for utt in ("u1", "u2"):
        assert sf.info(tmp_path / "res" / f"{utt}.wav").frames > 0
        assert np.load(tmp_path / "feats" / f"{utt}.npy").shape[1] == 100


def test_missing_graphs_give_one_line(exported, prompt_wav, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(empty, prompt_wav, tmp_path / "o.wav"), capsys)
    assert code == 2
    assert "text_encoder.onnx: no such text encoder graph" in one_error_line(err)
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("text_encoder.onnx", "fm_decoder.onnx", "tokens.txt"):
        shutil.copy(exported / name, partial / name)
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(partial, prompt_wav, tmp_path / "o.wav",
                                                             "--onnx-int8", "1"), capsys)
    assert code == 2
    assert "text_encoder_int8.onnx: no such" in one_error_line(err)
    (partial / "fm_decoder.onnx").unlink()
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(partial, prompt_wav, tmp_path / "o.wav"), capsys)
    assert code == 2
    assert "fm_decoder.onnx: no such flow-matching decoder graph" in one_error_line(err)


def test_fixed_length_graphs_are_refused(unity_dirs, prompt_wav, tmp_path, capsys):
    shutil.copy(ZIPVOICE_TINY / "tokens.txt", unity_dirs["zipvoice"] / "tokens.txt")
    code, err = run_cli(infer_zipvoice_onnx.main, infer_args(unity_dirs["zipvoice"], prompt_wav, tmp_path / "o.wav"),
                        capsys)
    assert code == 2
    assert "Unity" in one_error_line(err)


@pytest.mark.parametrize("extra, message", [
    (["--unity-sentis", "1"], "--fm-seq-len"),
    (["--unity-sentis", "1", "--fm-seq-len", "256", "--int8", "1"], "--int8"),
    (["--fm-seq-len", "256"], "--unity-sentis"),
    (["--vocoder-path", "/nonexistent/vocos"], "/nonexistent/vocos"),
])
def test_export_argument_errors(tmp_path, capsys, extra, message):
    code, err = run_cli(onnx_export.main, ["--model-dir", ZIPVOICE_TINY, "--onnx-model-dir", tmp_path / "o", *extra],
                        capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_export_cli_writes_unity_sentis_graphs(unity_dirs, tmp_path):
    """``--unity-sentis 1`` from the command line: audited fixed-shape graphs equal to the library export's."""
    import onnx
    import onnxruntime as ort
    from zipvoice_onnx_testlib import UNITY_FRAMES, UNITY_TOKENS

    from shirabe.export.audit import audit_graph

    out = tmp_path / "unity"
    with pytest.raises(SystemExit) as e:
        run_main(onnx_export.main, ["--model-dir", str(ZIPVOICE_TINY), "--onnx-model-dir", str(out),
                                    "--unity-sentis", "1", "--fm-seq-len", str(UNITY_FRAMES),
                                    "--token-seq-len", str(UNITY_TOKENS), "--vocoder-path", str(VOCOS_TINY)])
    assert e.value.code == 0
    rng = np.random.default_rng(0)
    for name in ("text_encoder.onnx", "fm_decoder.onnx", "vocoder.onnx"):
        path = out / name
        report = audit_graph(path)
        assert report.ok, report.problems()
        assert "If" not in report.op_counts
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["unity_sentis"] == "1" and meta["fm_seq_len"] == str(UNITY_FRAMES)
        ours = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ref = ort.InferenceSession(str(unity_dirs["zipvoice"] / name), providers=["CPUExecutionProvider"])
        feeds = {}
        for inp in ours.get_inputs():
            assert all(isinstance(d, int) and d > 0 for d in inp.shape), (name, inp.name, inp.shape)
            if "int64" in inp.type:
                feeds[inp.name] = rng.integers(0, 2, size=inp.shape).astype(np.int64)
            elif "bool" in inp.type:
                feeds[inp.name] = np.ones(inp.shape, dtype=bool)
            else:
                feeds[inp.name] = rng.standard_normal(inp.shape).astype(np.float32)
        for a, b in zip(ours.run(None, feeds), ref.run(None, feeds), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)
