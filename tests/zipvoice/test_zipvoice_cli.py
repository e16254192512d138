"""End-to-end runs of ``python -m zipvoice.bin.infer_zipvoice`` on the tiny fixture models."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from zipvoice_testlib import VOCOS_TINY, ZIPVOICE_TINY

from shirabe.cli import run_main
from zipvoice.bin.infer_zipvoice import main

REPO = Path(__file__).resolve().parents[2]
TEXT = "watashiwasakanatabemasu"


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    return e.value.code, err


def base_args(prompt_wav, *extra):
    return ["--model-dir", ZIPVOICE_TINY, "--tokenizer", "simple", "--prompt-wav", prompt_wav,
            "--prompt-text", "sakana", "--num-step", "4", *extra]


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if "error:" in ln]


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_writes_playable_file(tmp_path, prompt_wav, capsys, fmt):
    code, err = run_cli(base_args(prompt_wav, "--text", TEXT, "--vocoder-path", VOCOS_TINY,
                                  "--res-wav-path", tmp_path / "out.wav", "--output-format", fmt), capsys)
    assert code == 0, err
    info = sf.info(tmp_path / f"out.{fmt}")
    assert info.samplerate == 24000 and info.channels == 1 and info.frames > 24000
    assert info.format == {"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}[fmt]


def test_griffin_lim_fallback_and_distill(tmp_path, prompt_wav, capsys):
    out = tmp_path / "gl.flac"
    code, err = run_cli(["--model-dir", ZIPVOICE_TINY, "--model-name", "zipvoice_distill",
                         "--checkpoint-name", "model_distill.pt", "--tokenizer", "simple",
                         "--prompt-wav", prompt_wav, "--prompt-text", "sakana", "--text", TEXT,
                         "--res-wav-path", out], capsys)
    assert code == 0, err
    assert "Griffin-Lim" in err and "8 steps, guidance 3.00" in err
    assert sf.info(out).frames > 0


def test_noise_file_reproduces_and_features_are_saved(tmp_path, prompt_wav, capsys, tiny_model):
    from shirabe.audio.fbank import VocosFbank
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.infer import SamplingOptions, prepare_prompt, text_chunks, total_frames

    tok = get_tokenizer("simple", ZIPVOICE_TINY / "tokens.txt")
    opts = SamplingOptions(num_step=4)
    prompt = prepare_prompt(prompt_wav, "sakana", tok, VocosFbank(), opts)
    (chunk,) = text_chunks(TEXT, tok, prompt, opts)
    n = total_frames(prompt, chunk, 1.0)
    noise = np.random.default_rng(0).standard_normal((n, 100)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)

    feats = []
    for seed in (1, 2):
        args = base_args(prompt_wav, "--text", TEXT, "--noise-file", tmp_path / "noise.npy", "--seed", seed,
                         "--vocoder-path", VOCOS_TINY, "--res-wav-path", tmp_path / f"o{seed}.wav",
                         "--save-features", tmp_path / f"f{seed}.npy")
        code, err = run_cli(args, capsys)
        assert code == 0, err
        feats.append(np.load(tmp_path / f"f{seed}.npy"))
    assert np.array_equal(feats[0], feats[1])
    gen, lens, _, _ = tiny_model.sample([chunk], [prompt.tokens], prompt.features, torch.tensor([prompt.features.shape[1]]),
                                        t_shift=0.5, num_step=4, guidance_scale=1.0,
                                        noise=torch.from_numpy(noise).unsqueeze(0))
    assert feats[0].shape == (int(lens[0]), 100)
    np.testing.assert_allclose(feats[0], gen[0].numpy() / 0.1, atol=1e-4)

    np.save(tmp_path / "bad.npy", noise[:-1])
    code, err = run_cli(base_args(prompt_wav, "--text", TEXT, "--noise-file", tmp_path / "bad.npy",
                                  "--res-wav-path", tmp_path / "x.wav"), capsys)
    assert code == 2
    (line,) = error_lines(err)
    assert f"need ({n}, 100)" in line


def test_long_text_is_chunked(tmp_path, prompt_wav, capsys):
    text = "sakanatabemasu." * 12 + "aiueo" * 10
    args = base_args(prompt_wav, "--text", text, "--vocoder-path", VOCOS_TINY, "--max-duration", "20",
                     "--res-wav-path", tmp_path / "long.wav", "--save-features", tmp_path / "f.npy")
    args[args.index("--num-step") + 1] = "1"
    code, err = run_cli(args, capsys)
    assert code == 0, err
    assert "3 chunk(s)" in err
    frames = np.load(tmp_path / "f.npy").shape[0]
    # three chunks joined by 100 ms cross-fades (before edge trimming)
    assert sf.info(tmp_path / "long.wav").frames <= frames * 256


def test_test_list_mode(tmp_path, prompt_wav, capsys):
    shutil.copy(prompt_wav, tmp_path / "p.wav")
    tsv = tmp_path / "list.tsv"
    tsv.write_text(f"u1\tsakana\tp.wav\t{TEXT}\nu2\tsakana\t{prompt_wav}\taiueo\n", encoding="utf-8")
    code, err = run_cli(["--model-dir", ZIPVOICE_TINY, "--tokenizer", "simple", "--num-step", "2",
                         "--test-list", tsv, "--res-dir", tmp_path / "res", "--output-format", "flac",
                         "--vocoder-path", VOCOS_TINY, "--save-features", tmp_path / "feats"], capsys)
    assert code == 0, err
    for utt in ("u1", "u2"):
        assert sf.info(tmp_path / "res" / f"{utt}.flac").frames > 0
        assert np.load(tmp_path / "feats" / f"{utt}.npy").shape[1] == 100
    tsv.write_text("u1\tsakana\tp.wav\n", encoding="utf-8")
    code, err = run_cli(["--model-dir", ZIPVOICE_TINY, "--test-list", tsv], capsys)
    assert code == 2 and "list.tsv:1: expected 4 tab-separated fields" in error_lines(err)[0]


def _pickle_dir(tmp_path):
    d = tmp_path / "pickled"
    d.mkdir()
    for name in ("model.json", "tokens.txt"):
        shutil.copy(ZIPVOICE_TINY / name, d / name)
    ckpt = torch.load(ZIPVOICE_TINY / "model.pt", weights_only=True)
    ckpt["params"] = Path("exp")  # a Python object: needs pickle
    torch.save(ckpt, d / "model.pt")
    return d


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing_wav", "nope.wav: no such audio file"),
        ("empty_text", "--text is empty"),
        ("missing_tokens", "none.txt: no such token file"),
        ("wrong_tokens", "does not match the model config"),
        ("bad_table", "tokens.txt:1: expected 'token<TAB>id'"),
        ("corrupt_ckpt", "model.pt: not a readable checkpoint"),
        ("pickle_ckpt", "need pickle to load; pass --trust-checkpoint"),
        ("no_tokens", "gives no tokens"),
        ("no_model_dir", "nowhere: no such model directory"),
        ("bad_tokenizer", "invalid choice: 'klingon'"),
        ("bad_device", "invalid device 'gpu'"),
        ("absent_device", "--device cuda:99: "),
        ("bad_bool", "expected a boolean (true/false, 1/0), got 'maybe'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, prompt_wav, capsys, case, message):
    args = base_args(prompt_wav, "--text", TEXT, "--res-wav-path", tmp_path / "o.wav")
    if case == "missing_wav":
        args[args.index(prompt_wav)] = tmp_path / "nope.wav"
    elif case == "empty_text":
        args[args.index(TEXT)] = "   "
    elif case == "missing_tokens":
        args += ["--token-file", tmp_path / "none.txt"]
    elif case == "wrong_tokens":
        (tmp_path / "t.txt").write_text("_\t0\na\t1\n", encoding="utf-8")
        args += ["--token-file", tmp_path / "t.txt"]
    elif case == "bad_table":
        (tmp_path / "tokens.txt").write_text("garbage\n", encoding="utf-8")
        args += ["--token-file", tmp_path / "tokens.txt"]
    elif case == "corrupt_ckpt":
        d = tmp_path / "corrupt"
        shutil.copytree(ZIPVOICE_TINY, d)
        (d / "model.pt").write_bytes((ZIPVOICE_TINY / "model.pt").read_bytes()[:50000])
        args[args.index(ZIPVOICE_TINY)] = d
    elif case == "pickle_ckpt":
        args[args.index(ZIPVOICE_TINY)] = _pickle_dir(tmp_path)
    elif case == "no_tokens":
        args[args.index(TEXT)] = "xx!"
    elif case == "no_model_dir":
        args[args.index(ZIPVOICE_TINY)] = tmp_path / "nowhere"
    elif case == "bad_tokenizer":
        args[args.index("simple")] = "klingon"
    elif case == "bad_device":
        args += ["--device", "gpu"]
    elif case == "absent_device":
        args += ["--device", "cuda:99"]
    elif case == "bad_bool":
        args += ["--trust-checkpoint", "maybe"]
    code, err = run_cli(args, capsys)
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "o.wav").exists()


def test_trusted_pickle_checkpoint_runs(tmp_path, prompt_wav, capsys):
    d = _pickle_dir(tmp_path)
    code, err = run_cli(["--model-dir", d, "--tokenizer", "simple", "--prompt-wav", prompt_wav, "--prompt-text",
                         "sakana", "--text", "aiueo", "--num-step", "2", "--vocoder-path", VOCOS_TINY,
                         "--trust-checkpoint", "true", "--res-wav-path", tmp_path / "o.wav"], capsys)
    assert code == 0, err


def test_japanese_tokenizer(tmp_path, prompt_wav, capsys):
    pytest.importorskip("zipvoice.tokenizer.japanese")
    code, err = run_cli(["--model-dir", ZIPVOICE_TINY, "--tokenizer", "japanese", "--prompt-wav", prompt_wav,
                         "--prompt-text", "こんにちは。", "--text", "今日はいい天気ですね。明日も晴れるでしょう。",
                         "--num-step", "2", "--vocoder-path", VOCOS_TINY, "--res-wav-path", tmp_path / "ja.wav"],
                        capsys)
    assert code == 0, err
    assert sf.info(tmp_path / "ja.wav").frames > 0


def test_module_entry_point(tmp_path, prompt_wav):
    """The real ``python -m`` invocation: help, and a bad input → exit 2 with one stderr line."""
    cmd = [sys.executable, "-m", "zipvoice.bin.infer_zipvoice"]
    out = subprocess.run([*cmd, "--help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for flag in ("--guidance-scale", "--noise-file", "--save-features", "--trust-checkpoint", "(default: 666)"):
        assert flag in out
    res = subprocess.run([*cmd, "--model-dir", str(ZIPVOICE_TINY), "--tokenizer", "simple", "--prompt-wav",
                          str(tmp_path / "missing.wav"), "--prompt-text", "a", "--text", "b"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2
    assert [ln for ln in res.stderr.splitlines() if "error" in ln] == [
        f"infer_zipvoice.py: error: {tmp_path / 'missing.wav'}: no such audio file"
    ]
