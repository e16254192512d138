"""Vocal → accompaniment inference on a tiny checkpoint: the image2image start, ControlNet residuals in
both guidance branches, output length, the loudness-matched mix, blending, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from acestep_testlib import make_tiny_checkpoint

from acestep.accompaniment.bundle import save_bundle
from acestep.accompaniment.controlnet import ControlEncoder
from acestep.accompaniment.inference import BlendSettings, apply_bundle, generate_accompaniment
from acestep.bin import generate_accompaniment as cli
from acestep.config import TrainingConfig
from acestep.sampling.loop import GuidanceSettings
from shirabe.cli import InputError

pytestmark = pytest.mark.usefixtures("single_torch_thread")

N = 50000  # vocal samples at 48 kHz: 44.1 kHz length 45938 -> 12 latent frames
GUIDED = GuidanceSettings(guidance_scale=3.0, guidance_interval=1.0, cfg_type="cfg")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("acestep_ckpt"))


@pytest.fixture(scope="module")
def base(ckpt):
    from acestep.pipeline import ACEStepPipeline

    return ACEStepPipeline.from_checkpoint_dir(ckpt)


def fresh(base, ckpt):
    """A pipeline with its own (unmerged) transformer, sharing the DCAE and text encoder."""
    from acestep.models import load_transformer
    from acestep.pipeline import ACEStepPipeline

    return ACEStepPipeline(load_transformer(ckpt / "ace_step_transformer"), base.dcae, base.text_encoder)


@pytest.fixture(scope="module")
def vocal_file(tmp_path_factory) -> Path:
    t = np.arange(N) / 48000
    wav = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    path = tmp_path_factory.mktemp("vocal") / "song1_vocal.wav"
    sf.write(path, wav, 48000, subtype="FLOAT")
    return path


def vocal_tensor(vocal_file) -> torch.Tensor:
    wav, _ = sf.read(vocal_file, dtype="float32")
    return torch.from_numpy(wav.T.copy())


def spy_decode(model):
    """Record (hidden_states, timestep, block_residuals) of every decode call."""
    calls, original = [], model.decode

    def decode(hidden_states, attention_mask, context, context_mask, timestep, *a, **k):
        calls.append((hidden_states.clone(), timestep.clone(), k.get("block_residuals")))
        return original(hidden_states, attention_mask, context, context_mask, timestep, *a, **k)

    model.decode = decode
    return calls


def controlnet_bundle(folder: Path, width: int, injections: bool, output_type="accompaniment") -> Path:
    config = TrainingConfig.model_validate({"accompaniment": {
        "mode": "controlnet", "control_encoder_dim": 32, "control_encoder_depth": 1, "injection_layers": [0, 1],
        "controlnet_scale": 1.0, "output_type": output_type}})
    torch.manual_seed(0)
    enc = ControlEncoder(width, [0, 1], dim=32, depth=1, heads=4)
    if injections:
        for layer in enc.injections.values():
            torch.nn.init.normal_(layer.weight, std=0.2)
    return save_bundle(folder, config, control_encoder=enc)


def image2image_bundle(folder: Path, strength: float = 0.7, output_type="accompaniment", lora=None) -> Path:
    config = TrainingConfig.model_validate({"lora": {"r": 2, "lora_alpha": 2, "use_rslora": False},
                                            "accompaniment": {"reference_strength": strength,
                                                              "output_type": output_type}})
    return save_bundle(folder, config, adapter=lora)


def test_image2image_starts_at_the_flow_source_at_sigma_1(base, ckpt, vocal_file, tmp_path):
    from acestep.accompaniment.bundle import load_bundle
    from acestep.sampling.tasks import draw_noise

    pipe = fresh(base, ckpt)
    bundle = load_bundle(image2image_bundle(tmp_path / "b", 0.7))
    apply_bundle(pipe, bundle)
    calls = spy_decode(pipe.transformer)
    vocal = vocal_tensor(vocal_file)
    latents, _ = base.dcae.encode(vocal[None], sr=48000)
    noise = draw_noise(5, latents.shape[-1])
    for strength, expected_s in ((None, 0.7), (0.2, 0.2)):
        calls.clear()
        result = generate_accompaniment(pipe, vocal, bundle, "pop, piano", infer_steps=3, seed=5,
                                        guidance=GuidanceSettings(guidance_scale=1.0), ref_strength=strength)
        assert result.strength == expected_s and result.num_steps == 3 and len(calls) == 3
        first, timestep, residuals = calls[0]
        assert residuals is None and float(timestep[0]) == 1000.0
        torch.testing.assert_close(first, expected_s * latents + (1 - expected_s) * noise, rtol=0, atol=1e-6)
        assert result.audio.shape == (2, N)


def test_zero_injections_give_exactly_the_plain_output_in_both_guidance_branches(base, ckpt, vocal_file, tmp_path):
    from acestep.accompaniment.bundle import load_bundle
    from acestep.pipeline import GenerationRequest
    from acestep.sampling.loop import denoise
    from acestep.sampling.tasks import draw_noise, text2music_start

    vocal = vocal_tensor(vocal_file)
    width = base.transformer.config.inner_dim
    plain_pipe = fresh(base, ckpt)
    cond = plain_pipe.conditions(GenerationRequest(prompt="pop, piano", guidance=GUIDED))
    plain = denoise(plain_pipe.transformer, text2music_start(draw_noise(3, 12), 3), cond, GUIDED, False)

    outputs = {}
    for name, injections, scale in (("zero", False, None), ("trained", True, None), ("scale0", True, 0.0)):
        pipe = fresh(base, ckpt)
        bundle = load_bundle(controlnet_bundle(tmp_path / name, width, injections))
        apply_bundle(pipe, bundle)
        calls = spy_decode(pipe.transformer)
        result = generate_accompaniment(pipe, vocal, bundle, "pop, piano", infer_steps=3, seed=3, guidance=GUIDED,
                                        controlnet_scale=scale)
        assert len(calls) == 6  # conditional + unconditional pass at each of 3 steps
        assert all(set(r) == {0, 1} for _, _, r in calls)  # residuals reach both branches
        assert [float(t[0]) for _, t, _ in calls[:1]] == [1000.0]
        outputs[name] = result.latents
    assert torch.equal(outputs["zero"], plain)
    assert torch.equal(outputs["scale0"], plain)
    assert (outputs["trained"] - plain).abs().max() > 1e-3


def test_blending_in_inference_copies_the_reference_rows(base, ckpt, vocal_file):
    pipe = fresh(base, ckpt)
    vocal = vocal_tensor(vocal_file)
    reference = torch.randn(1, 8, 16, 12, generator=torch.Generator().manual_seed(1))
    plain = generate_accompaniment(pipe, vocal, None, "pop", infer_steps=2, seed=1, ref_strength=0.4)
    blended = generate_accompaniment(pipe, vocal, None, "pop", infer_steps=2, seed=1, ref_strength=0.4,
                                     blend=BlendSettings(reference, 1.0, [0, 1, 2]))
    assert torch.equal(blended.latents[:, :, :3], reference[:, :, :3])
    assert torch.equal(blended.latents[:, :, 3:], plain.latents[:, :, 3:])


def run_cli(ckpt, out, *extra):
    argv = ["--checkpoint-dir", str(ckpt), "--prompt", "pop, piano", "--output-dir", str(out),
            "--infer-step", "3", "--seed", "7", "--device", "cpu", *extra]
    assert cli.main(argv) == 0
    return argv


def lufs(wav):
    import pyloudnorm

    return pyloudnorm.Meter(48000).integrated_loudness(np.asarray(wav, np.float64))


def test_cli_writes_accompaniment_and_loudness_matched_mix_of_the_vocal_length(ckpt, vocal_file, tmp_path):
    run_cli(ckpt, tmp_path, "--vocal", str(vocal_file), "--guidance-scale", "1")
    acc, sr = sf.read(tmp_path / "song1_accompaniment.wav")
    mix, sr2 = sf.read(tmp_path / "song1_mix.wav")
    vocal, _ = sf.read(vocal_file)
    assert sr == sr2 == 48000 and acc.shape == mix.shape == (N, 2)
    params = json.loads((tmp_path / "song1_input_params.json").read_text())
    assert params["mode"] == "image2image" and params["ref_strength"] == 0.5 and params["bundle"] is None
    assert params["actual_seeds"] == [7] and params["arguments"]["vocal"] == [str(vocal_file)]
    # mix = a * vocal + b * accompaniment (least squares over both channels; 16-bit files)
    design = np.stack([vocal.ravel(), acc.ravel()], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, mix.ravel(), rcond=None)
    assert np.abs(design @ [a, b] - mix.ravel()).max() < 2e-4
    assert lufs(b * acc) == pytest.approx(lufs(a * vocal) - 3.0, abs=0.1)
    if params["mix_gain"] == 1.0:  # the vocal sits at -14 LUFS unless the peak forced the mix down
        assert lufs(a * vocal) == pytest.approx(-14.0, abs=0.1)
    else:
        assert np.abs(mix).max() == pytest.approx(0.98, abs=1e-3)


def test_cli_bundles_output_types_blending_and_baseline(ckpt, base, vocal_file, tmp_path):
    lora = {"transformer_blocks.0.attn.to_q": (torch.ones(2, 64) * 0.01, torch.ones(64, 2) * 0.01)}
    bundle = image2image_bundle(tmp_path / "i2i", 0.6, lora=lora)
    run_cli(ckpt, tmp_path / "o1", "--vocal", str(vocal_file), "--lora-path", str(bundle), "--output-type", "mix",
            "--blend-reference", str(vocal_file), "--blend-ratio", "1", "--blend-bands", "40-250Hz", "--format", "flac")
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["song1_input_params.json", "song1_mix.flac"]
    params = json.loads((tmp_path / "o1" / "song1_input_params.json").read_text())
    assert params["ref_strength"] == 0.6 and params["blend_rows"] == [0] and params["output_type"] == "mix"
    assert sf.info(tmp_path / "o1" / "song1_mix.flac").frames == N

    mix_bundle = controlnet_bundle(tmp_path / "cn", base.transformer.config.inner_dim, True, output_type="mix")
    run_cli(ckpt, tmp_path / "o2", "--vocal", str(vocal_file), "--lora-path", str(mix_bundle),
            "--controlnet-scale", "0.5", "--loudness", "none")
    params = json.loads((tmp_path / "o2" / "song1_input_params.json").read_text())
    assert params["mode"] == "controlnet" and params["controlnet_scale"] == 0.5 and params["vocal_gain"] == 1.0
    assert sorted(params["audio_paths"]) == ["mix"]

    run_cli(ckpt, tmp_path / "o3", "--vocal", str(vocal_file), "--baseline", "a2a", "--infer-step", "4")
    params = json.loads((tmp_path / "o3" / "song1_input_params.json").read_text())
    assert params["mode"] == "a2a" and params["num_denoising_steps"] == 2  # int((1 - 0.5) * 4)


def test_bad_input_is_a_one_line_error(ckpt, base, vocal_file, tmp_path):
    text = tmp_path / "notes_vocal.wav"
    text.write_text("not audio")
    i2i = image2image_bundle(tmp_path / "i2i")
    mix = image2image_bundle(tmp_path / "mixb", output_type="mix")
    empty = tmp_path / "empty_bundle"
    empty.mkdir()
    cases = [
        (["--vocal", str(text)], "notes_vocal.wav: cannot read audio"),
        (["--vocal", str(vocal_file), "--lora-path", str(empty)], "accompaniment_config.json: not found"),
        (["--vocal", str(vocal_file), "--lora-path", str(i2i), "--controlnet-scale", "1"], "needs a controlnet"),
        (["--vocal", str(vocal_file), "--lora-path", str(mix), "--output-type", "accompaniment"], "full mixes"),
        (["--vocal", str(vocal_file), "--lora-path", str(i2i), "--baseline", "a2a"], "base model only"),
        (["--vocal", str(vocal_file), "--ref-strength", "1.0"], "[0, 1)"),
        (["--vocal", str(vocal_file), "--blend-reference", str(vocal_file), "--blend-bands", "9-3"], "--blend-bands"),
        (["--vocal", str(vocal_file), "--vocal", str(vocal_file)], "sample key 'song1'"),
    ]
    for extra, words in cases:
        with pytest.raises(InputError) as exc:
            run_cli(ckpt, tmp_path / "o", *extra)
        assert words in str(exc.value) and "\n" not in str(exc.value), (extra, str(exc.value))


def test_help_documents_every_option_and_exits_2_on_bad_input(tmp_path):
    help_text = " ".join(cli.get_parser().format_help().split())
    for option in ("--vocal", "--lora-path", "--lora-weight", "--ref-strength", "--controlnet-scale",
                   "--guidance-scale", "--infer-step", "--output-type", "--output-dir", "--format", "--loudness",
                   "--blend-reference", "--blend-ratio", "--blend-bands", "--baseline", "--mix-offset"):
        assert option in help_text
    assert "(default: -14.0)" in help_text and "(default: 0.3)" in help_text
    r = subprocess.run([sys.executable, "-m", "acestep.bin.generate_accompaniment", "--checkpoint-dir",
                        str(tmp_path), "--vocal", str(tmp_path / "missing.wav"), "--prompt", "pop",
                        "--output-dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith("missing.wav: vocal file not found")
    assert len(r.stderr.strip().splitlines()) == 1
