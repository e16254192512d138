"""``python -m acestep.bin.generate`` on a tiny checkpoint: 48 kHz files of the right length in wav,
flac and mp3, the parameter sidecar, seeds, the audio tasks, LoRA merging and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from acestep_testlib import make_tiny_checkpoint

from acestep.bin import generate
from shirabe.cli import InputError

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("acestep_ckpt"))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """1.2 s of stereo tones at 44.1 kHz."""
    t = np.arange(int(1.2 * 44100)) / 44100
    wav = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    path = tmp_path_factory.mktemp("src") / "song.wav"
    sf.write(path, wav, 44100)
    return path


def run(ckpt: Path, output: Path, *extra: str, duration: str = "1.5", seed: str = "7") -> list[str]:
    argv = ["--checkpoint-dir", str(ckpt), "--prompt", "pop, piano", "--lyrics", "[verse]\\nla la la",
            "--duration", duration, "--output", str(output), "--seed", seed, "--infer-step", "4",
            "--device", "cpu", *extra]
    assert generate.main(argv) == 0
    return argv


def samples_48k(frames: int) -> int:
    """frames·4096 samples at 44.1 kHz resampled to 48 kHz, rounded up."""
    return -(-frames * 4096 * 160 // 147)


def test_wav_of_the_right_length_and_a_sidecar_with_every_argument(ckpt, tmp_path):
    out = tmp_path / "song.wav"
    run(ckpt, out, "--guidance-interval", "1.0", "--retake-seed", "9")
    wav, sr = sf.read(out)
    assert sr == 48000
    # 1.5 s -> int(1.5 * 44100 / 4096) = 16 frames -> 65536 samples at 44.1 kHz -> 71332 at 48 kHz (< 72000)
    assert wav.shape == (samples_48k(16), 2) == (71332, 2)
    assert np.abs(wav).max() > 0
    params = json.loads((tmp_path / "song_input_params.json").read_text(encoding="utf-8"))
    dests = {a.dest for a in generate.get_parser()._actions if a.dest != "help"}
    assert set(params["arguments"]) == dests
    assert params["arguments"]["guidance_interval"] == 1.0 and params["arguments"]["seed"] == 7
    assert params["prompt"] == "pop, piano" and params["lyrics"] == "[verse]\nla la la"
    assert params["actual_seeds"] == [7] and params["retake_seeds"] == [9]
    assert params["guidance_scale"] == 15.0 and params["cfg_type"] == "apg" and params["omega_scale"] == 10.0
    assert params["min_guidance_scale"] == 3.0 and params["use_erg_diffusion"] is True
    assert params["task"] == "text2music" and params["latent_frames"] == 16
    assert params["device"] == "cpu" and params["dtype"] == "fp32" and params["version"]
    assert set(params["timecosts"]) == {"load", "preprocess", "diffusion", "latent2audio"}
    assert params["lora_name_or_path"] is None and params["lora_weight"] == 1.0


def test_same_seed_same_samples_other_seed_other_samples(ckpt, tmp_path):
    run(ckpt, tmp_path / "a.wav", duration="1.0")
    run(ckpt, tmp_path / "b.wav", duration="1.0")
    run(ckpt, tmp_path / "c.wav", duration="1.0", seed="8")
    a, b, c = (sf.read(tmp_path / f"{n}.wav", dtype="int16")[0] for n in "abc")
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)


@pytest.mark.parametrize("ext", ["flac", "mp3"])
def test_flac_and_mp3(ckpt, tmp_path, ext):
    out = tmp_path / f"song.{ext}"
    run(ckpt, out, duration="1.0")
    info = sf.info(out)
    assert info.samplerate == 48000 and info.channels == 2
    # 1.0 s -> 10 frames -> 44582 samples at 48 kHz (mp3 adds encoder padding)
    assert abs(info.frames - samples_48k(10)) < (2 if ext == "flac" else 3000)
    assert (tmp_path / "song_input_params.json").is_file()


def test_audio2audio_takes_the_reference_length(ckpt, tmp_path, song):
    run(ckpt, tmp_path / "a2a.wav", "--task", "audio2audio", "--ref-audio", str(song),
        "--ref-audio-strength", "0.5")
    wav, sr = sf.read(tmp_path / "a2a.wav")
    # the reference's 1.2 s (13 padded latent frames decode to 57958 samples, cut to 57600), not --duration 1.5
    assert sr == 48000 and wav.shape[0] == round(1.2 * 48000) < samples_48k(13)
    params = json.loads((tmp_path / "a2a_input_params.json").read_text())
    assert params["num_denoising_steps"] == 2  # int(0.5 * 4)


def test_repaint_and_extend(ckpt, tmp_path, song):
    run(ckpt, tmp_path / "rp.wav", "--task", "repaint", "--src-audio", str(song), "--repaint-start", "0.3",
        "--repaint-end", "0.8")
    assert sf.info(tmp_path / "rp.wav").frames == round(1.2 * 48000)
    run(ckpt, tmp_path / "ext.wav", "--task", "extend", "--src-audio", str(song), "--extend-right", "0.6",
        "--retake-variance", "1.0")
    # source latents: 1.2 s padded to 13 frames, + int(0.6 * 10.77) = 6 frames -> 19 frames, which decode
    # to 84707 samples at 48 kHz, shorter than the 1.8 s target (so nothing is cut)
    assert sf.info(tmp_path / "ext.wav").frames == samples_48k(19) == 84707 < round(1.8 * 48000)
    params = json.loads((tmp_path / "ext_input_params.json").read_text())
    assert params["latent_frames"] == 19


def test_lora_is_merged_into_the_transformer(ckpt, tmp_path):
    from acestep.models import load_transformer
    from acestep.models.lora import save_lora
    from acestep.pipeline import ACEStepPipeline

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 64, generator=g), torch.randn(64, 2, generator=g)
    lora = save_lora(tmp_path / "lora", {"transformer_blocks.0.attn.to_q": (a, b)})
    base = load_transformer(ckpt / "ace_step_transformer").transformer_blocks[0].attn.to_q.weight
    pipe = ACEStepPipeline.from_checkpoint_dir(ckpt, lora_path=lora, lora_weight=0.5)
    merged = pipe.transformer.transformer_blocks[0].attn.to_q.weight
    torch.testing.assert_close(merged, base + 0.5 * b @ a)


# ---- errors ------------------------------------------------------------------------------------

def test_non_audio_reference_is_a_one_line_error(ckpt, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n", encoding="utf-8")
    with pytest.raises(InputError, match="notes.wav"):
        run(ckpt, tmp_path / "o.wav", "--task", "audio2audio", "--ref-audio", str(bad))
    with pytest.raises(InputError, match="notes.wav"):
        run(ckpt, tmp_path / "o.wav", "--task", "repaint", "--src-audio", str(bad), "--repaint-end", "0.5")


def test_repaint_range_outside_the_source(ckpt, tmp_path, song):
    with pytest.raises(InputError, match=r"song\.wav: repaint range 0\.5–3\.0 s is outside"):
        run(ckpt, tmp_path / "o.wav", "--task", "repaint", "--src-audio", str(song), "--repaint-start", "0.5",
            "--repaint-end", "3.0")


def test_missing_checkpoint_subfolder(ckpt, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(ckpt / "ace_step_transformer", partial / "ace_step_transformer")
    with pytest.raises(InputError, match="music_dcae_f8c8: folder not found"):
        run(partial, tmp_path / "o.wav")


def test_unsupported_language_and_format(ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(ckpt, tmp_path / "o.wav", "--lyrics-language", "xx")
    assert exc.value.code == 2 and "--lyrics-language" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"o\.ogg: unsupported output format"):
        run(ckpt, tmp_path / "o.ogg")


def test_empty_lyrics_file_exits_2_with_one_line(ckpt, tmp_path):
    empty = tmp_path / "lyrics.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "acestep.bin.generate", "--checkpoint-dir", str(ckpt),
                           "--prompt", "pop", "--lyrics-file", str(empty), "--output", str(tmp_path / "o.wav")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lyrics.txt: lyrics file is empty" in lines[0]
    assert not (tmp_path / "o.wav").exists()


def test_conditions_erg_tag_null_text_and_instrumental_mask(ckpt):
    from acestep.pipeline import ACEStepPipeline, GenerationRequest
    from acestep.sampling.loop import GuidanceSettings

    pipe = ACEStepPipeline.from_checkpoint_dir(ckpt)
    erg_on = pipe.conditions(GenerationRequest("pop, piano", lyrics="[verse]\nla la",
                                               guidance=GuidanceSettings(erg_text_blocks=(0, 1))))
    assert erg_on.text_null.shape == erg_on.text.shape
    assert (erg_on.text_null - erg_on.text).abs().max() > 1e-3
    assert erg_on.lyric_ids[0, 0].item() == 261 and erg_on.lyric_mask.min().item() == 1
    erg_off = pipe.conditions(GenerationRequest("pop, piano", lyrics="",
                                                guidance=GuidanceSettings(use_erg_tag=False)))
    assert erg_off.text_null is None
    assert erg_off.lyric_ids.tolist() == [[0]] and erg_off.lyric_mask.tolist() == [[0]]
    assert torch.equal(erg_off.text, erg_on.text)
